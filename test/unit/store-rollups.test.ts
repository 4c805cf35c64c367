// Migration 0004: the rollups are summed by the store per insert batch (src/store/rollups.ts) instead of by
// 0003's trigger per inserted row. The reference is 0003's trigger itself: a database at 0000–0003 fed the
// very rows the store wrote (same rowids, in the same order) with plain INSERTs must hold the same hour,
// day and model_answers rows.
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { toEventRow } from "../../src/store/columns.ts";
import { openStore, StoreError } from "../../src/store/index.ts";
import { applyMigrations } from "../../src/store/migrate.ts";
import { migrations } from "../../src/store/migrations/index.ts";
import { aiExchange, PROCESSES, type FixtureEvent } from "../support/event-fixtures.ts";

const HOUR = 3_600_000;
const T0 = Date.UTC(2025, 5, 14, 22, 30); // the calls below span a UTC day boundary
const UP_TO_0003 = migrations.slice(0, migrations.findIndex((m) => m.tag === "0003_call_model") + 1);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function dbPath(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-store-rollups-"));
  dirs.push(d);
  return path.join(d, "oisp.db");
}

/** Calls from several processes, keys, providers and models, with errors, tool calls, an alias answered by a snapshot. */
function traffic(startMs: number, calls: number): FixtureEvent[] {
  const procs = [PROCESSES.python, PROCESSES.node, PROCESSES.cursor, PROCESSES.bash];
  const out: FixtureEvent[] = [];
  for (let i = 0; i < calls; i++) {
    out.push(
      ...aiExchange({
        tsMs: startMs + i * 11 * 60_000,
        provider: i % 3 === 2 ? "anthropic" : "openai",
        model: i % 3 === 2 ? "claude-sonnet-4-5" : i % 2 ? "gpt-4o-mini" : "gpt-4o",
        ...(i % 4 === 1 && { responseModel: "gpt-4o-mini-2024-07-18" }),
        process: procs[i % procs.length],
        success: i % 5 !== 4,
        keyPrefix: i % 2 ? "sk-proj-" : "sk-live0",
        keyHash: `hash-${i % 3}`,
        inputTokens: 100 + 7 * i,
        outputTokens: 10 + i,
        costUsd: 0.000123 * (i + 1) + 1e-7 / 3,
        toolCalls: i % 6 === 1 ? [{ name: "read_file", arguments: '{"path":"a.py"}' }] : [],
      }),
    );
  }
  const [lateReq, earlyResp] = aiExchange({ tsMs: startMs + 2 * HOUR, keyPrefix: "sk-late-" });
  const [, orphanResp] = aiExchange({ tsMs: startMs + 3 * HOUR, keyPrefix: "sk-orph-", model: "gpt-4o", responseModel: "gpt-4o-2024-11-20" });
  const [noPidReq] = aiExchange({ tsMs: startMs + 4 * HOUR });
  delete (noPidReq as Record<string, unknown>).process;
  const network: FixtureEvent = { event_id: `net-${startMs}`, event_type: "network.connect", ts: new Date(startMs).toISOString(), process: { pid: 1 } };
  // Before 1970: SQLite's integer division truncates toward zero, so this lands in bucket 0.
  const early: FixtureEvent = { event_id: `old-${startMs}`, event_type: "network.connect", ts: "1969-12-31T23:30:00Z" };
  out.push(earlyResp!, lateReq!, orphanResp!, noPidReq!, network, early);
  return out;
}

const KEY = "bucket_ms, event_type, provider, model, process_name, pid, key_prefix, key_hash, auth_type";
/** 0003's columns (first_ms came with 0006). */
const ROLLUP = `${KEY}, events, errors, input_tokens, output_tokens, cost_usd, last_ms, last_rowid`;
function tables(db: Database) {
  // Costs are summed per batch now, per event before: equal up to the last float bits.
  const round = (rows: Array<Record<string, unknown>>) => rows.map((r) => ({ ...r, cost_usd: Number((r.cost_usd as number).toPrecision(12)) }));
  return {
    hour: round(db.query(`SELECT ${ROLLUP} FROM event_rollup_hour ORDER BY ${KEY}`).all() as Array<Record<string, unknown>>),
    day: round(db.query(`SELECT ${ROLLUP} FROM event_rollup_day ORDER BY ${KEY}`).all() as Array<Record<string, unknown>>),
    // Per hour since 0005: summed, they are 0003's rows.
    answers: db
      .query("SELECT provider, model, response_model, sum(responses) AS responses, max(last_ms) AS last_ms FROM model_answers GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
      .all(),
  };
}

/** 0003's trigger fed the rows the store wrote, rowid for rowid. */
function referenceFor(file: string): Database {
  const stored = new Database(file, { readonly: true });
  const rows = stored.query("SELECT rowid AS rid, * FROM events ORDER BY rowid").all() as Array<Record<string, unknown>>;
  stored.close();
  const ref = new Database(":memory:");
  applyMigrations(ref, UP_TO_0003);
  expect(ref.query("SELECT name FROM sqlite_master WHERE type = 'trigger'").all()).toEqual([{ name: "events_rollup_insert" }]);
  const columns = Object.keys(rows[0]!).filter((c) => c !== "rid");
  const insert = ref.prepare(`INSERT INTO events (rowid, ${columns.join(", ")}) VALUES (?, ${columns.map(() => "?").join(", ")})`);
  ref.transaction(() => {
    for (const r of rows) insert.run(r.rid as number, ...columns.map((c) => r[c] as string | number | null));
  })();
  insert.finalize();
  return ref;
}

describe("rollups summed per batch", () => {
  test("are the rows 0003's trigger wrote: batches, replays, a response before its request, a failed batch", () => {
    const file = dbPath();
    const store = openStore(file);
    const events = traffic(T0, 60);
    // Uneven batches, so keys are spread over several commits and several keys share one.
    for (let i = 0, size = 1; i < events.length; i += size, size = (size % 9) + 1) store.insertEvents(events.slice(i, i + size));
    // A replay stores nothing and counts nothing.
    expect(store.insertEvents(events.slice(10, 40)).inserted).toBe(0);

    // A batch that fails half-way leaves no trace in the rollups (its transaction rolls back, and so does the sum).
    const more = traffic(T0 + 30 * HOUR, 8);
    const saboteur = new Database(file);
    saboteur.run(`CREATE TRIGGER fail_once AFTER INSERT ON events WHEN NEW.event_id = '${more[9]!.event_id}' BEGIN SELECT RAISE(ABORT, 'boom'); END`);
    expect(() => store.insertEvents(more)).toThrow(StoreError);
    saboteur.run("DROP TRIGGER fail_once");
    saboteur.close();
    store.insertEvents(more);
    // Several events of one key in one batch: summed, newest rowid and time kept.
    store.insertEvents([0, 1, 2, 3].flatMap((i) => aiExchange({ tsMs: T0 + 40 * HOUR + i * 1000, inputTokens: i, costUsd: 0.1 * i })));
    store.close();

    const db = new Database(file, { readonly: true });
    const got = tables(db);
    db.close();
    const ref = referenceFor(file);
    const want = tables(ref);
    ref.close();
    expect(got.hour.length).toBeGreaterThan(40);
    expect(got.answers.length).toBe(2);
    expect(got).toEqual(want);
  });

  test("keep counting into the rows 0003's trigger wrote before the upgrade", () => {
    const file = dbPath();
    const old = new Database(file);
    applyMigrations(old, UP_TO_0003);
    const call = (tsMs: number, inputTokens: number, outputTokens: number, costUsd: number) =>
      aiExchange({ tsMs, model: "gpt-4o", inputTokens, outputTokens, costUsd, keyPrefix: "sk-live0", keyHash: "h" }).slice(0, 2);
    // What the store wrote under 0003, credential and call model included; the trigger counts it.
    const insert = old.prepare(`INSERT INTO events (${OLD_COLUMNS.join(", ")}) VALUES (${OLD_COLUMNS.map(() => "?").join(", ")})`);
    for (const e of call(T0, 5, 1, 0.5)) {
      const r = toEventRow(e)!;
      insert.run(r.eventId, r.ts, r.tsMs, r.eventType, r.provider!, r.model!, r.pid!, r.processName!, r.requestId!, r.inputTokens ?? null, r.outputTokens ?? null,
        r.costUsd ?? null, r.json, "sk-live0", "h", "api_key", "gpt-4o");
    }
    insert.finalize();
    old.close();

    const store = openStore(file); // applies 0004
    store.insertEvents(call(T0 + 60_000, 7, 2, 0.25));
    store.close();
    const db = new Database(file, { readonly: true });
    const rows = db.query("SELECT event_type, events, input_tokens, output_tokens, cost_usd, key_prefix FROM event_rollup_hour ORDER BY event_type").all();
    db.close();
    expect(rows).toEqual([
      { event_type: "ai.request", events: 2, input_tokens: 0, output_tokens: 0, cost_usd: 0, key_prefix: "sk-live0" },
      { event_type: "ai.response", events: 2, input_tokens: 12, output_tokens: 3, cost_usd: 0.75, key_prefix: "sk-live0" },
    ]);
  });
});

const OLD_COLUMNS = ["event_id", "ts", "ts_ms", "event_type", "provider", "model", "pid", "process_name", "request_id", "input_tokens", "output_tokens",
  "cost_usd", "json", "key_prefix", "key_hash", "auth_type", "call_model"] as const;
