// Realistic calls for the store's benches: a few processes, keys and models, full capture (~2 KB of JSON an
// event), some errors; the i-th call is always the same, so `from` continues a series without repeats.
import { aiExchange, PROCESSES, type FixtureEvent } from "../../test/support/event-fixtures.ts";

const procs = Object.values(PROCESSES);

/** n events (an ai.request and its ai.response per call), from call number `from` on. */
export function storeTraffic(n: number, from = 0): FixtureEvent[] {
  const out: FixtureEvent[] = [];
  const start = Date.parse("2026-01-01T00:00:00Z");
  for (let i = from; out.length < n; i++) {
    out.push(
      ...aiExchange({
        tsMs: start + i * 1500,
        provider: i % 3 === 2 ? "anthropic" : "openai",
        process: procs[i % procs.length],
        success: i % 17 !== 0,
        inputTokens: 200 + ((i * 131) % 5000),
        outputTokens: 20 + ((i * 71) % 900),
        prompt: "Summarise the repository and list the risky changes in the last commits, file by file. ".repeat(8 + (i % 6)),
        answer: "The riskiest change is the migration; the rest are small refactors with tests. ".repeat(5 + (i % 5)),
        keyHash: `sha256:${(i % 7).toString(16).padStart(16, "0")}`,
      }).slice(0, 2),
    );
  }
  return out.slice(0, n);
}
