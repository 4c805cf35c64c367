// `oisp analyze` on a mixed capture built with the event fixtures: golden JSON and CSV (exact), the
// table's rows, the same figures from a sensor database, time ranges, malformed lines, chunking and bounds.
// The golden files are checked against figures worked out by hand below, so they are not just snapshots.
// Regenerate them (after checking the diff by hand) with UPDATE_GOLDEN=1.
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Analyzer, analyzeFile, formatReport, parseTimeBound, type Report } from "../../src/analyze/index.ts";
import { scanJsonl } from "../../src/analyze/jsonl.ts";
import { Reservoir } from "../../src/analyze/reservoir.ts";
import { openStore } from "../../src/store/index.ts";
import { aiExchange, PROCESSES, type FixtureEvent } from "../support/event-fixtures.ts";

const T = Date.parse("2026-03-01T10:00:00Z");
const MIN = 60_000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-analyze-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Data = Record<string, any>;
const responseOf = (events: FixtureEvent[]) => events.find((e) => e.event_type === "ai.response")!.data as Data;

/** Eight calls: three providers' worth of models, three apps, two OpenAI keys, a 429, a 500, an unpriced model. */
function mixedCapture(): FixtureEvent[] {
  const teamKey = { keyPrefix: "sk-svcac", keyHash: "sha256:7eam000000000000" };
  const calls: FixtureEvent[][] = [
    // (1) 1000 × $0.15/M + 200 × $0.60/M = 150 + 120 = 270 µ$
    aiExchange({ tsMs: T, model: "gpt-4o-mini", process: PROCESSES.python, inputTokens: 1000, outputTokens: 200, latencyMs: 800, ttftMs: 200, toolCalls: [{ name: "read_file", arguments: '{"path":"a.py"}' }] }),
    // (2) 2000 × 0.15 + 100 × 0.60 = 300 + 60 = 360 µ$
    aiExchange({
      tsMs: T + 1 * MIN,
      model: "gpt-4o-mini",
      process: PROCESSES.python,
      inputTokens: 2000,
      outputTokens: 100,
      latencyMs: 1200,
      ttftMs: 300,
      prompt: "Résumé ✓ – naïve UTF-8 split across chunks",
      toolCalls: [
        { name: "read_file", arguments: '{"path":"b.py"}' },
        { name: "write_file", arguments: '{"path":"c.py"}' },
      ],
    }),
    // (3) gpt-4o: 500 × $2.50/M + 50 × $10/M = 1250 + 500 = 1750 µ$
    aiExchange({ tsMs: T + 2 * MIN, model: "gpt-4o", process: PROCESSES.node, inputTokens: 500, outputTokens: 50, costUsd: 0.00175, latencyMs: 400, ttftMs: 100 }),
    // (4) claude-sonnet-4-5, 1000 more read from cache: 3000 × $3/M + 1000 × $0.30/M + 300 × $15/M = 9000 + 300 + 4500 = 13800 µ$
    aiExchange({ tsMs: T + 3 * MIN, provider: "anthropic", model: "claude-sonnet-4-5", process: PROCESSES.cursor, inputTokens: 3000, outputTokens: 300, costUsd: 0.0138, latencyMs: 2000, ttftMs: 600 }),
    // (5) rate limited: no usage, latency 840 (fixture default), no TTFT
    aiExchange({ tsMs: T + 4 * MIN, model: "gpt-4o-mini", process: PROCESSES.node, success: false, statusCode: 429 }),
    // (6) server error
    aiExchange({ tsMs: T + 5 * MIN, model: "gpt-4o", process: PROCESSES.cursor, success: false, statusCode: 500 }),
    // (7) a fine-tuned model no price list knows: tokens counted, cost unknown
    aiExchange({ tsMs: T + 6 * MIN, model: "ft:gpt-4o-mini:acme::abc123", process: PROCESSES.node, inputTokens: 800, outputTokens: 80, latencyMs: 900, ttftMs: 250 }),
    // (8) o3-mini on the team key, 300 reasoning tokens inside the 500 output: 1000 × $1.10/M + 500 × $4.40/M = 1100 + 2200 = 3300 µ$
    aiExchange({ tsMs: T + 7 * MIN, model: "o3-mini", process: PROCESSES.python, inputTokens: 1000, outputTokens: 500, costUsd: 0.0033, latencyMs: 5000, ttftMs: 3000, ...teamKey }),
  ];
  responseOf(calls[3]!).usage.cached_tokens = 1000; // Anthropic: beside the 3000 input tokens, not inside
  calls[3]!.find((e) => e.event_type === "ai.response")!.attrs = { conn_id: "c-anthropic", api_format: "anthropic" };
  responseOf(calls[5]!).error = { type: "server_error", message: "The server had an error", code: "internal_error" };
  delete responseOf(calls[6]!).usage.total_cost_usd;
  responseOf(calls[7]!).usage.reasoning_tokens = 300;
  return calls.flat();
}

const MALFORMED_TAIL = ["{oops", "", "42", '{"event_type":"ai.request"}', '{"ts":"2026-03-01T10:00:00Z"}'];

function writeJsonl(name: string, lines: string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

const events = mixedCapture();
const captureFile = writeJsonl("capture.jsonl", [...events.map((e) => JSON.stringify(e)), ...MALFORMED_TAIL]);

/**
 * The golden files must not depend on where the test wrote its temp file, nor on its exact size (the
 * fixtures number connections and calls process-wide, so ids grow when other test files ran first).
 * Both are checked in "figures worked out by hand" instead.
 */
function portable(r: Report): Report {
  return { ...r, source: { ...r.source!, path: "capture.jsonl", bytes: 0 } };
}

function golden(name: string, actual: string): void {
  const file = path.join(import.meta.dir, name);
  if (process.env.UPDATE_GOLDEN) fs.writeFileSync(file, actual);
  expect(actual).toBe(fs.readFileSync(file, "utf8"));
}

describe("mixed capture", async () => {
  const raw = await analyzeFile(captureFile);
  const report = portable(raw);

  test("figures worked out by hand", () => {
    expect(raw.source).toEqual({ path: captureFile, kind: "jsonl", bytes: fs.statSync(captureFile).size, lines: events.length + MALFORMED_TAIL.length });
    const s = report.summary;
    expect(s.events).toBe(events.length);
    expect(s.by_type).toEqual({ "agent.tool_call": 3, "ai.request": 8, "ai.response": 8 });
    expect([s.requests, s.responses, s.errors, s.rate_limited, s.tool_calls]).toEqual([8, 8, 2, 1, 3]);
    // 1000 + 2000 + 500 + (3000 + 1000 cached, Anthropic counts them apart) + 800 + 1000 = 9300 in;
    // 200 + 100 + 50 + 300 + 80 + 500 = 1230 out
    expect([s.input_tokens, s.output_tokens, s.cached_tokens, s.reasoning_tokens]).toEqual([9300, 1230, 1000, 300]);
    expect(report.models.find((m) => m.model === "claude-sonnet-4-5")).toMatchObject({ input_tokens: 4000, cached_tokens: 1000 });
    // 270 + 360 + 1750 + 13800 + 3300 µ$ = 19480 µ$; the fine-tuned model is unpriced, not $0
    expect(s.cost_usd).toBe(0.01948);
    expect([s.priced_responses, s.unpriced_responses]).toEqual([5, 1]);
    expect(report.unknown_price_models).toEqual([{ provider: "openai", model: "ft:gpt-4o-mini:acme::abc123", responses: 1 }]);

    const mini = report.models.find((m) => m.model === "gpt-4o-mini")!;
    expect([mini.requests, mini.responses, mini.errors, mini.input_tokens, mini.output_tokens, mini.cost_usd]).toEqual([3, 3, 1, 3000, 300, 0.00063]);

    // Accounts: the default OpenAI key made 6 calls, the team key 1, the Anthropic key 1.
    const byHash = Object.fromEntries(report.accounts.map((a) => [a.key_hash, a]));
    expect(byHash["sha256:7eam000000000000"]).toMatchObject({ key_prefix: "sk-svcac", requests: 1, responses: 1, input_tokens: 1000, cost_usd: 0.0033 });
    expect(report.accounts.find((a) => a.provider === "openai" && a.key_prefix === "sk-proj-")).toMatchObject({ requests: 6, responses: 6, input_tokens: 4300 });

    expect(report.errors).toEqual([
      { provider: "openai", model: "gpt-4o-mini", status_code: 429, error_type: "rate_limit_error", rate_limit: true, count: 1 },
      { provider: "openai", model: "gpt-4o", status_code: 500, error_type: "server_error", rate_limit: false, count: 1 },
    ]);
    // latency: 400 800 840 840 900 1200 2000 5000 → nearest rank p50 = 4th = 840, p90 = ceil(7.2) = 8th = 5000
    expect(report.latency_ms.overall).toEqual({ count: 8, min: 400, p50: 840, p90: 5000, p95: 5000, p99: 5000, max: 5000, exact: true });
    // TTFT: 100 200 250 300 600 3000 → p50 = 3rd = 250, p90 = ceil(5.4) = 6th = 3000
    expect(report.ttft_ms.overall).toMatchObject({ count: 6, min: 100, p50: 250, p90: 3000, max: 3000 });
    expect(report.tools).toEqual([
      { name: "read_file", calls: 2 },
      { name: "write_file", calls: 1 },
    ]);
    expect(report.apps.map((a) => [a.app, a.requests])).toEqual([
      ["node", 3],
      ["python3", 3],
      ["cursor", 2],
    ]);
    // Malformed: the 5 bad lines after the events (the blank one is not malformed), with their line numbers.
    const first = events.length + 1;
    expect(report.malformed).toEqual({
      count: 4,
      first: [
        { line: first, reason: expect.stringContaining("invalid JSON") },
        { line: first + 2, reason: "not a JSON object" },
        { line: first + 3, reason: "no valid ts" },
        { line: first + 4, reason: "no event_type" },
      ],
    });
  });

  test("golden JSON", () => {
    // The JSON parse error text comes from the runtime: pin it so the golden does not depend on it.
    const r = structuredClone(report);
    r.malformed.first[0]!.reason = "invalid JSON";
    golden("analyze-golden.json", formatReport(r, "json"));
  });

  test("golden CSV", () => {
    const r = structuredClone(report);
    r.malformed.first[0]!.reason = "invalid JSON";
    golden("analyze-golden.csv", formatReport(r, "csv"));
  });

  test("table has the expected rows", () => {
    const table = formatReport(report, "table");
    const lines = table.split("\n");
    const row = (re: RegExp) => expect(lines.some((l) => re.test(l))).toBe(true);
    row(/^cost_usd\s+\$0\.019480$/);
    row(/^openai\s+gpt-4o-mini\s+3\s+3\s+1\s+3,000\s+300\s+0\s+0\s+\$0\.000630\s+0$/);
    // the fine-tuned model: tokens, but cost "unknown", never $0
    row(/^openai\s+ft:gpt-4o-mini:acme::abc123\s+1\s+1\s+0\s+800\s+80\s+0\s+0\s+unknown\s+1$/);
    row(/^anthropic\s+claude-sonnet-4-5\s+1\s+1\s+0\s+4,000\s+300\s+1,000\s+0\s+\$0\.013800\s+0$/);
    row(/^openai\s+gpt-4o-mini\s+429\s+rate_limit_error\s+yes\s+1$/);
    row(/^latency_ms\s+\(all\)\s+8\s+400\s+840\s+5,000\s+5,000\s+5,000\s+5,000\s+yes$/);
    row(/^read_file\s+2$/);
    expect(table).toContain("Models with unknown prices");
  });

  test("a sensor database gives the same report", async () => {
    const dbFile = path.join(dir, "oisp.db");
    const store = openStore(dbFile);
    expect(store.insertEvents(events as never).inserted).toBe(events.length);
    store.close();
    const fromDb = await analyzeFile(dbFile);
    expect(fromDb.source?.kind).toBe("db");
    const { source: _a, malformed: _b, ...dbRest } = fromDb;
    const { source: _c, malformed: _d, ...fileRest } = report;
    expect(dbRest).toEqual(fileRest);
    expect(fromDb.malformed.count).toBe(0);
  });

  test("--since / --until keep [since, until)", async () => {
    // Calls 3..5 start at T+2m, T+3m, T+4m; their responses follow within 2 s.
    const r = await analyzeFile(captureFile, { sinceMs: T + 2 * MIN, untilMs: T + 5 * MIN });
    expect([r.summary.requests, r.summary.responses]).toEqual([3, 3]);
    expect(r.summary.out_of_range).toBe(events.length - r.summary.events);
    expect(r.models.map((m) => m.model).sort()).toEqual(["claude-sonnet-4-5", "gpt-4o", "gpt-4o-mini"]);
    const db = await analyzeFile(path.join(dir, "oisp.db"), { sinceMs: T + 2 * MIN, untilMs: T + 5 * MIN });
    expect(db.summary.requests).toBe(3);
  });
});

describe("streaming", () => {
  test("the same report whatever the read size (lines and UTF-8 characters split across chunks)", async () => {
    const reference = new Analyzer();
    await scanJsonl(captureFile, reference);
    for (const chunkBytes of [1, 7, 64, 4096]) {
      const a = new Analyzer();
      const res = await scanJsonl(captureFile, a, { chunkBytes });
      expect(res.bytes).toBe(fs.statSync(captureFile).size);
      expect(a.report()).toEqual(reference.report());
    }
  });

  test("malformed lines: all counted, the first 20 listed by number, never fatal", async () => {
    const good = JSON.stringify(events[0]);
    const lines: string[] = [];
    for (let i = 1; i <= 100; i++) lines.push(i % 3 === 0 ? `{"broken": ${i}` : good.replace(/"event_id":"[^"]+"/, `"event_id":"e${i}"`));
    const file = writeJsonl("malformed.jsonl", lines);
    const r = await analyzeFile(file);
    expect(r.malformed.count).toBe(33);
    expect(r.malformed.first.map((m) => m.line)).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 3));
    expect(r.summary.events).toBe(67);
  });

  test("an over-long line is skipped to its end, not buffered", async () => {
    const ok = [JSON.stringify(events[0]), JSON.stringify(events[1])];
    const max = Math.max(...ok.map((l) => l.length)) + 100;
    const big = `{"x":"${"a".repeat(max * 3)}"}`;
    const file = writeJsonl("long.jsonl", [ok[0]!, big, ok[1]!, big.slice(0, max + 50)]);
    const a = new Analyzer();
    const res = await scanJsonl(file, a, { maxLineChars: max, chunkBytes: 256 });
    const r = a.report();
    expect(res.lines).toBe(4);
    expect(r.summary.events).toBe(2);
    expect(r.malformed.first).toEqual([
      { line: 2, reason: `line longer than ${max} characters` },
      { line: 4, reason: `line longer than ${max} characters` },
    ]);
  });

  test("a file without a trailing newline, CRLF line ends, and an empty file", async () => {
    const crlf = path.join(dir, "crlf.jsonl");
    fs.writeFileSync(crlf, `${JSON.stringify(events[0])}\r\n${JSON.stringify(events[1])}`);
    expect((await analyzeFile(crlf)).summary.events).toBe(2);
    const empty = path.join(dir, "empty.jsonl");
    fs.writeFileSync(empty, "");
    expect((await analyzeFile(empty)).summary.events).toBe(0);
  });
});

describe("CSV safety", () => {
  test("captured names that a spreadsheet would run as formulas are written as text", () => {
    const a = new Analyzer();
    const evil = { pid: 6666, ppid: 1, name: '=HYPERLINK("http://attacker.example","x")', exe: "/tmp/evil" };
    for (const e of aiExchange({ tsMs: T, model: "@SUM(1+1)", process: evil, inputTokens: 10, outputTokens: 1 })) a.add(e);
    const csv = formatReport(a.report(), "csv");
    expect(csv).toContain(`"'=HYPERLINK(""http://attacker.example"",""x"")"`);
    expect(csv).toContain("'@SUM(1+1)");
    // No field anywhere starts with a formula character.
    for (const line of csv.split("\n")) for (const field of line.split(",")) expect(field).not.toMatch(/^"?[=+@]/);
  });
});

describe("bounds", () => {
  test("key tables stop at maxKeys and merge the rest into (other)", () => {
    const a = new Analyzer({}, { maxKeys: 5 });
    for (let i = 0; i < 20; i++) for (const e of aiExchange({ tsMs: T + i, model: `m-${String(i).padStart(2, "0")}` })) a.add(e);
    const r = a.report();
    expect(r.models).toHaveLength(6);
    expect(r.models.find((m) => m.model === "(other)")?.responses).toBe(15);
    expect(r.bounds.keys_merged_into_other).toBe(15);
    expect(r.summary.responses).toBe(20);
  });

  test("reservoir percentiles: exact up to capacity, within ±2% of rank beyond it", () => {
    const small = new Reservoir(100);
    for (let v = 100; v >= 1; v--) small.add(v);
    expect(small.percentiles()).toEqual({ count: 100, min: 1, p50: 50, p90: 90, p95: 95, p99: 99, max: 100, exact: true });
    const big = new Reservoir(8192);
    for (let i = 0; i < 200_000; i++) big.add((i * 7919) % 200_000); // a permutation of 0..199999
    const p = big.percentiles()!;
    expect(p.exact).toBe(false);
    expect([p.min, p.max]).toEqual([0, 199_999]);
    expect(Math.abs(p.p50 - 100_000)).toBeLessThan(4000);
    expect(Math.abs(p.p99 - 198_000)).toBeLessThan(4000);
  });

  test("responses whose request is never seen are counted, not attributed to a wrong account", () => {
    const a = new Analyzer({}, { maxPendingJoins: 2 });
    const calls = [0, 1, 2, 3].map((i) => aiExchange({ tsMs: T + i * MIN }));
    for (const c of calls) a.add(c[1]); // responses only
    const r = a.report();
    expect(r.bounds.responses_without_account).toBe(4);
    expect(r.accounts).toEqual([]);
  });
});

test("time bounds: dates, times, epoch ms and durations back from now", () => {
  const now = Date.parse("2026-03-02T00:00:00Z");
  expect(parseTimeBound("2026-03-01", now)).toBe(Date.parse("2026-03-01T00:00:00Z"));
  expect(parseTimeBound("2026-03-01T10:00:00", now)).toBe(T);
  expect(parseTimeBound("2026-03-01T11:00:00+01:00", now)).toBe(T);
  expect(parseTimeBound(String(T), now)).toBe(T);
  expect(parseTimeBound("24h", now)).toBe(now - 86_400_000);
  expect(parseTimeBound("90m", now)).toBe(now - 5_400_000);
  expect(parseTimeBound("yesterday", now)).toBeUndefined();
});

describe("one call, one model row", () => {
  // Three calls to the alias gpt-4o-mini: two answered by the dated snapshot (one of them a 429), one by
  // the alias itself; and a gpt-4o call answered by its own snapshot whose response comes first.
  const SNAP = "gpt-4o-mini-2024-07-18";
  const calls = [
    aiExchange({ tsMs: T, model: "gpt-4o-mini", responseModel: SNAP, inputTokens: 1000, outputTokens: 100, costUsd: 0.0002 }),
    aiExchange({ tsMs: T + MIN, model: "gpt-4o-mini", responseModel: SNAP, success: false, statusCode: 429 }),
    aiExchange({ tsMs: T + 2 * MIN, model: "gpt-4o-mini", inputTokens: 500, outputTokens: 50, costUsd: 0.0001 }),
  ];
  const [req4, resp4] = aiExchange({ tsMs: T + 3 * MIN, model: "gpt-4o", responseModel: "gpt-4o-2024-08-06", inputTokens: 10, outputTokens: 1, costUsd: 0.00003 });
  const ordered = [...calls.flat(), resp4!, req4!]; // the last response before its request (a newest-first export)

  const check = (r: Report, gpt4o: [string, string[]]) => {
    expect(r.models.map((m) => [m.model, m.answered_by, m.requests, m.responses, m.errors, m.input_tokens, m.output_tokens, m.cost_usd])).toEqual([
      ["gpt-4o-mini", [SNAP], 3, 3, 1, 1500, 150, 0.0003],
      [...gpt4o, 1, 1, 0, 10, 1, 0.00003],
    ]);
    expect(r.errors).toEqual([{ provider: "openai", model: "gpt-4o-mini", status_code: 429, error_type: "rate_limit_error", rate_limit: true, count: 1 }]);
  };

  test("JSONL: requests, responses, tokens, cost and errors of one call on one row, the answering model beside", async () => {
    const file = writeJsonl("alias.jsonl", ordered.map((e) => JSON.stringify(e)));
    const r = await analyzeFile(file);
    // The gpt-4o response came first: counted under its own model, and its request joins that row.
    check(r, ["gpt-4o-2024-08-06", []]);
    const table = formatReport(r, "table");
    expect(table).toMatch(/openai\s+gpt-4o-mini\s+gpt-4o-mini-2024-07-18\s+3\s+3\s+1/);
    expect(table).not.toMatch(/openai\s+gpt-4o-mini-2024-07-18\s/);
  });

  test("a sensor database: the same rows (read in time order, so the gpt-4o call is under its request's model)", async () => {
    const dbFile = path.join(dir, "alias.db");
    const store = openStore(dbFile);
    store.insertEvents(ordered);
    store.close();
    check(await analyzeFile(dbFile), ["gpt-4o", ["gpt-4o-2024-08-06"]]);
  });
});
