// The filtered reads without indexes on type, provider, model and process (migration 0005): a filtered
// timeline, the process view's activity and a filtered export find the filter's days, then hours, in the
// rollups and read those spans through the ts_ms index (queries.ts filterSpans). A mistake there silently
// hides events from a filtered view, so this checks it against the plain answer: random event sets (spread
// over days, clustered in busy hours, at hour and day edges, sharing milliseconds, rare and common values,
// snapshots answering an alias, ok / error / unknown status, some before 1970), stored through the sensor's
// path (Store.insertEvents, shuffled, in batches, by one or two writers), then for random filters and page
// sizes every page in turn, until the end, against SELECT ... WHERE ... ORDER BY ts_ms DESC, event_id DESC.
// The same on a database filled before migration 0005 (read as it is, then migrated and written on).
import { Database, type SQLQueryBindings } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import fc from "fast-check";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { toEventRow, type StorableEvent } from "../../src/store/columns.ts";
import { openStore } from "../../src/store/index.ts";
import { applyMigrations } from "../../src/store/migrate.ts";
import { migrations } from "../../src/store/migrations/index.ts";
import { openWebQueries, PROCESS_ACTIVITY_TYPES, type DistinctColumn, type WebFilter, type WebQueries } from "../../src/store/queries.ts";
import { fuzzParams } from "../fault/fuzz-lib.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 2, 1);
const DAYS = 9;
const BUSY_HOURS = [T0 + 2 * DAY + 14 * HOUR, T0 + 5 * DAY + 23 * HOUR, T0 + 6 * DAY];
const SHARED_MS = [T0 + 3 * DAY + 7 * HOUR + 123, T0 + 6 * DAY, BUSY_HOURS[0]! + 999];

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function dbPath(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-fuzz-filtered-"));
  dirs.push(d);
  return path.join(d, "oisp.db");
}

const weighted = <T>(...pairs: Array<[T, number]>): fc.Arbitrary<T> => fc.oneof(...pairs.map(([v, weight]) => ({ arbitrary: fc.constant(v), weight })));

/** Event times: mostly spread over DAYS days (some over months) or packed into a few busy hours; some on an hour's or day's edge, some sharing a millisecond, a few around 1970 (the rollups' bucket 0 spans two hours / days). */
const tsArb: fc.Arbitrary<number> = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: DAYS * DAY - 1 }).map((o) => T0 + o), weight: 5 },
  // Spread over months: more matching days than one bucket query reads (4, then 32, then 256 at a time).
  { arbitrary: fc.integer({ min: -90 * DAY, max: 0 }).map((o) => T0 + o), weight: 3 },
  { arbitrary: fc.tuple(fc.constantFrom(...BUSY_HOURS), fc.integer({ min: 0, max: HOUR - 1 })).map(([h, o]) => h + o), weight: 5 },
  { arbitrary: fc.tuple(fc.integer({ min: 0, max: DAYS * 24 }), fc.constantFrom(-1, 0, 1)).map(([h, d]) => T0 + h * HOUR + d), weight: 2 },
  { arbitrary: fc.constantFrom(...SHARED_MS), weight: 1 },
  { arbitrary: fc.oneof(fc.integer({ min: -2 * DAY, max: 2 * DAY }), fc.constantFrom(-DAY, -HOUR, -1, 0, 1, HOUR, DAY)), weight: 1 },
);

const providerArb = weighted<string | undefined>(["openai", 6], ["anthropic", 3], ["mistral", 1], [undefined, 1]);
const processArb = weighted<string | undefined>(["node", 5], ["python3", 3], ["rare-tool", 1], [undefined, 1]);
const modelArb = weighted<string | undefined>(["gpt-4o-mini", 5], ["gpt-4o", 3], ["claude-sonnet-4-5", 2], ["rare-model", 1], [undefined, 1]);
/** What answered a call: mostly its own model, else a dated snapshot, or another model that is also called by name. */
const answerArb = weighted<"same" | "snapshot" | "other">(["same", 5], ["snapshot", 2], ["other", 1]);

interface CallSpec {
  kind: "call";
  tsMs: number;
  latencyMs: number;
  provider?: string;
  process?: string;
  model?: string;
  answer: "same" | "snapshot" | "other";
  success?: boolean;
  text: boolean;
  /** Only the response is stored (its request was lost): the store counts it under its own model. */
  orphan: boolean;
}
interface OtherSpec {
  kind: "other";
  tsMs: number;
  type: string;
  process?: string;
  model?: string;
  text: boolean;
}
type Spec = CallSpec | OtherSpec;

const callArb: fc.Arbitrary<CallSpec> = fc.record({
  kind: fc.constant("call" as const),
  tsMs: tsArb,
  latencyMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 0, max: 2 * HOUR })),
  provider: providerArb,
  process: processArb,
  model: modelArb,
  answer: answerArb,
  success: weighted<boolean | undefined>([true, 5], [false, 2], [undefined, 1]),
  text: fc.boolean(),
  orphan: weighted([false, 9], [true, 1]),
});
const otherArb: fc.Arbitrary<OtherSpec> = fc.record({
  kind: fc.constant("other" as const),
  tsMs: tsArb,
  type: fc.constantFrom("process.exec", "file.write", "agent.tool_call", "network.connect"),
  process: processArb,
  model: weighted<string | undefined>([undefined, 5], ["rare-model", 1]),
  text: fc.boolean(),
});

const ID_CHARS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** A ULID-like id whose order is unrelated to time or insertion (ties on ts_ms are broken by it). */
const idOf = (r: number, i: number) => `${ID_CHARS[r % 32]}${ID_CHARS[(r >> 5) % 32]}${String(i).padStart(5, "0")}`;

/** The OISP events of the specs, each with a distinct id. */
function eventsOf(specs: Spec[], idBits: number[]): StorableEvent[] {
  const out: StorableEvent[] = [];
  const next = () => idOf(idBits[out.length % idBits.length]! + out.length, out.length);
  const ev = (type: string, tsMs: number, proc: string | undefined, text: boolean, data: Record<string, unknown>): StorableEvent => ({
    event_id: next(),
    event_type: type,
    ts: new Date(tsMs).toISOString(),
    ...(proc ? { process: { pid: proc.length * 100, name: proc } } : {}),
    confidence: { completeness: text ? "full" : "redacted" },
    data: { ...data, note: text ? "a needle in the prompt" : "hay" },
  });
  specs.forEach((s, n) => {
    if (s.kind === "other") {
      out.push(ev(s.type, s.tsMs, s.process, s.text, s.model ? { model: { id: s.model } } : {}));
      return;
    }
    const requestId = `req_${n}`;
    const provider = s.provider ? { name: s.provider } : undefined;
    if (!s.orphan) out.push(ev("ai.request", s.tsMs, s.process, s.text, { request_id: requestId, provider, ...(s.model ? { model: { id: s.model } } : {}) }));
    const answered = s.answer === "same" || !s.model ? s.model : s.answer === "snapshot" ? `${s.model}-2024-07-18` : s.model === "gpt-4o" ? "gpt-4o-mini" : "gpt-4o";
    out.push(
      ev("ai.response", s.tsMs + s.latencyMs, s.process, s.text, {
        request_id: requestId,
        provider,
        ...(answered ? { model: { id: answered } } : {}),
        ...(s.success === undefined ? {} : { success: s.success }),
      }),
    );
  });
  return out;
}

const storeArb = fc.record({
  specs: fc.array(fc.oneof({ arbitrary: callArb, weight: 3 }, { arbitrary: otherArb, weight: 1 }), { minLength: 20, maxLength: 250, size: "max" }),
  idBits: fc.array(fc.integer({ min: 0, max: 1023 }), { minLength: 1, maxLength: 16 }),
  /** Insertion order (a sort key per event) and batch sizes: out of time order, a response maybe before its request. */
  order: fc.array(fc.nat(), { minLength: 1, maxLength: 64 }),
  batches: fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 8 }),
  writers: fc.constantFrom(1, 2),
});

const boundArb = fc.oneof(tsArb, fc.constantFrom(T0, T0 + DAY, BUSY_HOURS[0]!, BUSY_HOURS[0]! + HOUR), tsArb.map((t) => t + 1));
/** A filter key present now and then (undefined keys are dropped: a WebFilter holds only what the user set). */
const sometimes = <T>(arb: fc.Arbitrary<T>, weight = 1): fc.Arbitrary<T | undefined> => fc.oneof({ arbitrary: fc.constant(undefined), weight: 6 }, { arbitrary: arb, weight });
const filterArb: fc.Arbitrary<WebFilter> = fc
  .record({
    provider: sometimes(fc.constantFrom("openai", "openai", "anthropic", "mistral", "nobody"), 2),
    model: sometimes(fc.constantFrom("gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "rare-model", "gpt-4o-mini-2024-07-18", "rare-model-2024-07-18", "nobody"), 2),
    process: sometimes(fc.constantFrom("node", "node", "python3", "rare-tool", "nobody"), 2),
    type: sometimes(fc.constantFrom("ai.request", "ai.response", "process.exec", "file.write", "agent.tool_call"), 2),
    status: sometimes(fc.constantFrom("ok" as const, "error" as const)),
    sinceMs: sometimes(boundArb),
    untilMs: sometimes(boundArb),
    text: fc.oneof({ arbitrary: fc.constant(undefined), weight: 12 }, { arbitrary: fc.constantFrom("needle", "NEEDLE in", "nothing-like-it"), weight: 1 }),
  })
  .map((f) => Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)) as WebFilter)
  // Most filters have an equality column (the rollup path); a few do not (a plain read by time).
  .filter((f) => Object.keys(f).length > 0);

const queryArb = fc.record({
  filter: filterArb,
  limit: fc.constantFrom(1, 2, 3, 7, 50, 500),
  // Windows smaller than the events sharing one millisecond too (the dashboard's is 100 000 events).
  textScanRows: fc.constantFrom(1, 5, 60, 100_000),
  chunk: fc.constantFrom(1, 4, 500),
  perType: fc.constantFrom(1, 3, 200),
});

type Query = typeof queryArb extends fc.Arbitrary<infer Q> ? Q : never;

/** Inserts the events shuffled, in batches, through one or two stores on the file (as sensors after a restart). */
function fill(file: string, events: StorableEvent[], s: { order: number[]; batches: number[]; writers: number }): void {
  const shuffled = events.map((e, i) => ({ e, k: s.order[i % s.order.length]! * 1000 + ((i * 7919) % 1000) })).sort((a, b) => a.k - b.k);
  const stores = Array.from({ length: s.writers }, () => openStore(file));
  let at = 0;
  for (let b = 0; at < shuffled.length; b++) {
    const size = s.batches[b % s.batches.length]!;
    const r = stores[b % stores.length]!.insertEvents(shuffled.slice(at, at + size).map((x) => x.e));
    expect(r.invalid + r.duplicates).toBe(0);
    at += size;
  }
  for (const st of stores) st.close();
}

/** The same events written raw into a database at migration 0003 (its trigger keeps the rollups), as the store then did. */
function fillBefore0005(file: string, events: StorableEvent[]): void {
  const old = new Database(file);
  applyMigrations(old, migrations.slice(0, migrations.findIndex((m) => m.tag === "0004_rollups_in_store")));
  const cols = ["event_id", "ts", "ts_ms", "event_type", "provider", "model", "pid", "process_name", "request_id", "success", "completeness", "json", "call_model"];
  const stmt = old.prepare(`INSERT INTO events (${cols.join(", ")}) VALUES (${cols.map(() => "?").join(", ")})`);
  const requestModel = new Map<string, string | null>();
  for (const e of events) {
    const r = toEventRow(e)!;
    if (r.eventType === "ai.request" && r.requestId) requestModel.set(r.requestId, r.model ?? null);
    const callModel = r.eventType === "ai.response" ? ((r.requestId ? requestModel.get(r.requestId) : null) ?? r.model ?? null) : (r.callModel ?? null);
    stmt.run(r.eventId, r.ts, r.tsMs, r.eventType, r.provider ?? null, r.model ?? null, r.pid ?? null, r.processName ?? null, r.requestId ?? null, r.success ?? null, r.completeness ?? null, r.json, callModel);
  }
  stmt.finalize();
  old.close();
}

/** The plain answer: the filter as a WHERE over the events table, newest first (ties: event_id descending). */
function reference(db: Database, f: WebFilter): string[] {
  const conds: string[] = [];
  const params: SQLQueryBindings[] = [];
  const eq = (column: string, v: string | undefined) => {
    if (v) conds.push(`${column} = ?`), params.push(v);
  };
  eq("provider", f.provider);
  eq("model", f.model);
  eq("process_name", f.process);
  eq("event_type", f.type);
  if (f.status) conds.push(`success = ${f.status === "ok" ? 1 : 0}`);
  if (f.sinceMs !== undefined) conds.push("ts_ms >= ?"), params.push(f.sinceMs);
  if (f.untilMs !== undefined) conds.push("ts_ms < ?"), params.push(f.untilMs);
  if (f.text) conds.push("completeness = 'full' AND json LIKE ?"), params.push(`%${f.text}%`);
  const where = conds.length ? `WHERE ${conds.join(" AND ")}` : "";
  return db.query<{ id: string }, SQLQueryBindings[]>(`SELECT event_id AS id FROM events ${where} ORDER BY ts_ms DESC, event_id DESC`).all(...params).map((r) => r.id);
}

/** Every timeline page in turn until there is no next one; each full page but the last holds `limit` rows. */
function allPages(q: WebQueries, f: WebFilter, limit: number, textScanRows: number): string[] {
  const seen: string[] = [];
  let page = q.timeline(f, { limit, textScanRows });
  for (let n = 0; ; n++) {
    expect(n).toBeLessThan(10_000);
    expect(page.rows.length).toBeLessThanOrEqual(limit);
    if (!f.text && page.next) expect(page.rows.length).toBe(limit);
    seen.push(...page.rows.map((r) => r.event_id));
    if (!page.next) return seen;
    page = q.timeline(f, { limit, textScanRows, before: page.next });
  }
}

const COLUMNS: DistinctColumn[] = ["provider", "model", "process_name", "event_type"];

/** Every read the filter reaches, against the reference, on the database at `file`. */
function checkReads(file: string, queries: Query[], where: string, q: WebQueries): void {
  const raw = new Database(file, { readonly: true });
  try {
    for (const column of COLUMNS) {
      const plain = raw.query<{ v: string }, []>(`SELECT DISTINCT ${column} AS v FROM events WHERE ${column} IS NOT NULL ORDER BY v LIMIT 300`).all().map((r) => r.v);
      expect({ where, column, values: q.distinct(column) }).toEqual({ where, column, values: plain });
    }
    for (const { filter, limit, textScanRows, chunk, perType } of queries) {
      const want = reference(raw, filter);
      const ctx = { where, filter, limit, textScanRows, chunk };
      expect({ ...ctx, got: allPages(q, filter, limit, textScanRows) }).toEqual({ ...ctx, got: want });
      expect({ ...ctx, exported: [...q.exportChunks(filter, chunk)].flat().map((r) => r.event_id) }).toEqual({ ...ctx, exported: [...want].reverse() });
      // The process view: the newest `perType` of each activity type, for the filter's process and time range.
      const activity = { process: filter.process, sinceMs: filter.sinceMs, untilMs: filter.untilMs };
      const wantActivity = PROCESS_ACTIVITY_TYPES.flatMap((type) => reference(raw, { ...activity, type }).slice(0, perType));
      const byId = new Map(raw.query<{ id: string; ts: number }, []>("SELECT event_id AS id, ts_ms AS ts FROM events").all().map((r) => [r.id, r.ts]));
      wantActivity.sort((a, b) => byId.get(b)! - byId.get(a)!);
      expect({ ...ctx, perType, activity: q.processActivity(activity, perType).map((r) => r.event_id) }).toEqual({ ...ctx, perType, activity: wantActivity });
    }
  } finally {
    raw.close();
  }
}

// Each property builds and reads dozens of real stores: 3-6 s on a quiet 2-core machine, 26 s seen with benches
// beside it. Their own limit, so the suite's --timeout does not decide whether they pass under load.
const CPU_BOUND_MS = 120_000;

describe("fuzz: filtered reads through the rollups return what a plain query returns", () => {
  test("timeline pages, export and process activity on a store written by the sensor's path", () => {
    fc.assert(
      fc.property(storeArb, fc.array(queryArb, { minLength: 1, maxLength: 10 }), (s, queries) => {
        const events = eventsOf(s.specs, s.idBits);
        const file = dbPath();
        fill(file, events, s);
        const raw = new Database(file, { readonly: true });
        expect(raw.query("SELECT count(*) AS n FROM events").get()).toEqual({ n: events.length });
        raw.close();
        const q = openWebQueries(file);
        checkReads(file, queries, "new database", q);
        q.close();
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
      }),
      fuzzParams(60),
    );
  }, CPU_BOUND_MS);

  test("a database filled before migration 0005: read as it is, then migrated and written on", () => {
    fc.assert(
      fc.property(storeArb, fc.integer({ min: 0, max: 100 }), fc.array(queryArb, { minLength: 1, maxLength: 6 }), (s, cutPercent, queries) => {
        const events = eventsOf(s.specs, s.idBits);
        const cut = Math.floor((events.length * cutPercent) / 100);
        const file = dbPath();
        fillBefore0005(file, events.slice(0, cut));
        // A dashboard opened read-only before the sensor migrates it: old indexes, per-pair model_answers.
        const before = openWebQueries(file);
        checkReads(file, queries, "before 0005", before);
        // The sensor opens it (0004-0006 run), then stores the rest: hours holding rows counted before
        // 0006 (first_ms unknown) and after it. Read by a new dashboard, and by the one still open.
        fill(file, events.slice(cut), s);
        const q = openWebQueries(file);
        checkReads(file, queries, "migrated", q);
        checkReads(file, queries, "migrated, dashboard opened before", before);
        q.close();
        before.close();
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
      }),
      fuzzParams(30),
    );
  }, CPU_BOUND_MS);
});
