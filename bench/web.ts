// Dashboard benchmark (not a test): seeds N events (default 1,000,000) into a temp store through the real
// store API in batches, starts the real web server on it, and measures time to first byte of each page and
// of filtered queries. Target: under 200 ms each.
//
//   bun bench/web.ts [--events N] [--db FILE (reuse a seeded database)] [--keep]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { openStore } from "../src/store/index.ts";
import { openWebQueries } from "../src/store/queries.ts";
import { startWebServer } from "../src/web/server.ts";
import { aiExchange, type CaptureMode, type FixtureEvent } from "../test/support/event-fixtures.ts";
import { MODELS, PROCS } from "./lib/machine-mix.ts";

const TARGET_MS = 200;
const DAY = 86_400_000;

const { values } = parseArgs({
  options: { events: { type: "string" }, db: { type: "string" }, keep: { type: "boolean" }, runs: { type: "string" } },
});
const total = Number(values.events ?? 1_000_000);
const runs = Number(values.runs ?? 5);
const dir = values.db ? path.dirname(values.db) : fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-"));
const dbPath = values.db ?? path.join(dir, "oisp.db");


function seed(): number {
  const store = openStore(dbPath);
  const existing = store.count();
  if (existing >= total) {
    store.close();
    return existing;
  }
  const end = Date.now();
  const span = 90 * DAY;
  const started = performance.now();
  let n = existing;
  let i = existing;
  let batch: FixtureEvent[] = [];
  while (n < total) {
    const [provider, model] = MODELS[i % MODELS.length]!;
    const modeRoll = i % 20;
    const mode: CaptureMode = modeRoll < 15 ? "redacted" : modeRoll < 19 ? "full" : "metadata_only";
    const exchange = aiExchange({
      // Spread evenly over 90 days, newest last, with a little jitter.
      tsMs: end - span + Math.floor((i / (total / 2.2)) * span) + (i % 997),
      provider,
      model,
      process: PROCS[(i * 7) % PROCS.length]!,
      mode,
      success: i % 23 !== 0,
      inputTokens: 200 + (i % 5000),
      outputTokens: 20 + (i % 900),
      prompt: `Request number ${i}: summarise the module and list risky calls.`,
      toolCalls: i % 10 === 0 ? [{ name: "read_file", arguments: `{"path":"src/file${i % 100}.ts"}` }] : undefined,
    });
    batch.push(...exchange);
    n += exchange.length;
    i++;
    if (batch.length >= 20_000) {
      store.insertEvents(batch);
      batch = [];
      if ((i & 0x3fff) < 10) process.stdout.write(`\r  seeded ${n.toLocaleString("en-US")} events`);
    }
  }
  if (batch.length) store.insertEvents(batch);
  const count = store.count();
  store.close();
  console.log(`\r  seeded ${count.toLocaleString("en-US")} events in ${((performance.now() - started) / 1000).toFixed(1)} s (${(fs.statSync(dbPath).size / 1e9).toFixed(2)} GB)`);
  return count;
}

/** Milliseconds from sending the request to the first body byte. */
async function ttfb(url: string): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  const res = await fetch(url);
  const reader = res.body!.getReader();
  await reader.read();
  const ms = performance.now() - t0;
  await reader.cancel();
  return { ms, status: res.status };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

console.log(`OISP dashboard benchmark: ${total.toLocaleString("en-US")} events, ${dbPath}`);
const count = seed();
const server = await startWebServer({ host: "127.0.0.1", port: 0, dbPath, dataDir: dir });
try {
  // Ids and cursors to ask for, read from the data itself.
  const probe = openStore(dbPath, { readonly: true });
  const middle = probe.list({ limit: 1, beforeTsMs: Date.now() - 45 * DAY })[0]!;
  const deep = probe.list({ limit: 1, beforeTsMs: Date.now() - 85 * DAY })[0]!;
  probe.close();
  const cursor = (r: { tsMs: number; eventId: string }) => `${r.tsMs}-${r.eventId}`;
  const pages: Array<[string, string]> = [
    ["timeline (first page)", "/"],
    ["timeline, page 45 days back", `/?before=${cursor(middle)}`],
    ["timeline, page 85 days back", `/?before=${cursor(deep)}`],
    ["event detail", `/event/${encodeURIComponent(middle.eventId)}`],
    ["inventory (30 days)", "/inventory"],
    ["inventory (all time)", "/inventory?range=all"],
    ["processes (30 days)", "/processes"],
    ["usage (7 days, hourly)", "/usage"],
    ["usage (90 days, daily, by model)", "/usage?range=90d&bucket=day&by=model&metric=cost"],
    ["control", "/control"],
    ["filter: provider", "/?provider=anthropic"],
    ["filter: model + errors", "/?model=gpt-4.1&status=error"],
    ["filter: process (rare)", `/?process=${encodeURIComponent(PROCS[29]!.name)}`],
    ["filter: type + last hour", "/?type=ai.response&range=1h"],
    ["filter: provider + process + 7 days", `/?provider=openai&process=${encodeURIComponent(PROCS[3]!.name)}&range=7d`],
    ["filter: free text (full capture)", "/?q=risky%20calls"],
    ["filter: free text, no match", "/?q=zz-no-such-text-zz"],
    ["live rows after cursor", "/timeline/rows?after=0&provider=openai"],
    ["export CSV, filtered", `/export/events.csv?process=${encodeURIComponent(PROCS[29]!.name)}`],
  ];
  console.log(`\n  ${"page".padEnd(38)} ${"median".padStart(9)} ${"worst".padStart(9)}   (${runs} runs after 1 warm-up; target ${TARGET_MS} ms)`);
  const slow: string[] = [];
  for (const [name, url] of pages) {
    await ttfb(`${server.url}${url}`);
    const times: number[] = [];
    let status = 0;
    for (let r = 0; r < runs; r++) {
      const t = await ttfb(`${server.url}${url}`);
      times.push(t.ms);
      status = t.status;
    }
    const med = median(times);
    const ok = med < TARGET_MS;
    if (!ok) slow.push(name);
    console.log(`  ${name.padEnd(38)} ${med.toFixed(1).padStart(6)} ms ${Math.max(...times).toFixed(1).padStart(6)} ms   ${status === 200 ? (ok ? "ok" : "SLOW") : `HTTP ${status}`}`);
  }
  // The terminal view's main screen (oisp watch) reads the store directly: its panes and activity list per window.
  const q = openWebQueries(dbPath);
  for (const [name, ms] of [["5 min", 5 * 60_000], ["1 h", 3_600_000], ["24 h", DAY], ["all", undefined]] as const) {
    const run = () => {
      const since = ms === undefined ? undefined : Date.now() - ms;
      q.windowSummary(since);
      q.timeline(since === undefined ? {} : { sinceMs: since }, { limit: 200 });
    };
    run();
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      run();
      times.push(performance.now() - t0);
    }
    const med = median(times);
    if (med >= TARGET_MS) slow.push(`tui ${name}`);
    console.log(`  ${`tui main screen (${name})`.padEnd(38)} ${med.toFixed(1).padStart(6)} ms ${Math.max(...times).toFixed(1).padStart(6)} ms   ${med < TARGET_MS ? "ok" : "SLOW"}`);
  }
  q.close();
  console.log(`\n  ${count.toLocaleString("en-US")} events; ${pages.length + 4 - slow.length}/${pages.length + 4} under ${TARGET_MS} ms${slow.length ? `; over: ${slow.join(", ")}` : ""}`);
} finally {
  await server.close();
  if (!values.keep && !values.db) fs.rmSync(dir, { recursive: true, force: true });
  else console.log(`  database kept: ${dbPath}`);
}
