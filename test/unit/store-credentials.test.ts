// Migration 0002: the rollups' credential (key prefix, key hash, auth type) is stored on each events row
// by the store instead of being json_extract-ed by the trigger. The reference for "same as before" is a
// database at 0000+0001 only, fed the same events with plain INSERTs, so 0001's trigger counts them.
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { NO_CREDENTIAL, toEventRow } from "../../src/store/columns.ts";
import { RequestCredentials } from "../../src/store/credentials.ts";
import { openStore } from "../../src/store/index.ts";
import { applyMigrations } from "../../src/store/migrate.ts";
import { migrations } from "../../src/store/migrations/index.ts";
import { aiExchange, PROCESSES, type FixtureEvent } from "../support/event-fixtures.ts";

const HOUR = 3_600_000;
const T0 = Date.UTC(2025, 5, 14, 22, 30); // the calls below span a UTC day boundary
const BEFORE_0002 = migrations.filter((m) => m.tag === "0000_init" || m.tag === "0001_rollup");

const dirs: string[] = [];
const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function dbPath(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-store-cred-"));
  dirs.push(d);
  return path.join(d, "oisp.db");
}
function rawDb(file: string): Database {
  const db = new Database(file);
  closers.push(() => db.close());
  return db;
}
function open(file: string) {
  const store = openStore(file);
  closers.push(() => store.close());
  return store;
}

/** A database with 0001's trigger (json_extract on every insert), as shipped before 0002. */
function oldDatabase(file = ":memory:"): Database {
  const db = rawDb(file);
  applyMigrations(db, BEFORE_0002);
  return db;
}

const OLD_COLUMNS = ["event_id", "ts", "ts_ms", "event_type", "provider", "model", "pid", "process_name", "request_id", "conn_id", "success",
  "input_tokens", "output_tokens", "cost_usd", "completeness", "json"] as const;

/** What the store inserted before 0002: the same columns, no credential. */
function insertOld(db: Database, events: readonly FixtureEvent[]): void {
  const stmt = db.prepare(`INSERT INTO events (${OLD_COLUMNS.join(", ")}) VALUES (${OLD_COLUMNS.map(() => "?").join(", ")}) ON CONFLICT (event_id) DO NOTHING`);
  db.transaction(() => {
    for (const event of events) {
      const row = toEventRow(event)!;
      stmt.run(row.eventId, row.ts, row.tsMs, row.eventType, row.provider ?? null, row.model ?? null, row.pid ?? null, row.processName ?? null,
        row.requestId ?? null, row.connId ?? null, row.success ?? null, row.inputTokens ?? null, row.outputTokens ?? null, row.costUsd ?? null,
        row.completeness ?? null, row.json);
    }
  })();
  stmt.finalize();
}

const KEY = "bucket_ms, event_type, provider, model, process_name, pid, key_prefix, key_hash, auth_type";
function rollups(db: Database, grain: "hour" | "day"): unknown[] {
  // 0001's columns (first_ms came with 0006).
  const columns = `${KEY}, events, errors, input_tokens, output_tokens, cost_usd, last_ms, last_rowid`;
  return db.query(`SELECT ${columns} FROM event_rollup_${grain} ORDER BY ${KEY}`).all();
}

/** The rollups recomputed from the events table and its credential columns, with the trigger's "" / -1. */
function rollupsFromEvents(db: Database, grain: "hour" | "day"): unknown[] {
  const ms = grain === "hour" ? HOUR : 24 * HOUR;
  return db
    .query(
      `SELECT (ts_ms / ${ms}) * ${ms} AS bucket_ms, event_type, coalesce(provider, '') AS provider, coalesce(model, '') AS model,
         coalesce(process_name, '') AS process_name, coalesce(pid, -1) AS pid, coalesce(key_prefix, '') AS key_prefix,
         coalesce(key_hash, '') AS key_hash, coalesce(auth_type, '') AS auth_type, count(*) AS events, sum(coalesce(success = 0, 0)) AS errors,
         sum(coalesce(input_tokens, 0)) AS input_tokens, sum(coalesce(output_tokens, 0)) AS output_tokens, sum(coalesce(cost_usd, 0)) AS cost_usd,
         max(ts_ms) AS last_ms, max(rowid) AS last_rowid
       FROM events GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 ORDER BY ${KEY}`,
    )
    .all();
}

/** Sums of reals depend on the order they were added in: compare costs to the nano-dollar. */
function rounded(rows: unknown[]): unknown[] {
  return rows.map((r) => ({ ...(r as object), cost_usd: Math.round((r as { cost_usd: number }).cost_usd * 1e9) }));
}

function credentialsOf(db: Database, eventId: string): unknown {
  return db.query("SELECT key_prefix, key_hash, auth_type FROM events WHERE event_id = ?").get(eventId);
}

/**
 * A varied stream: calls from several keys, processes, providers and hours (and a day boundary), errors,
 * tool calls (request_id but not a response), a request without auth, a response before its request, a
 * response with no request at all, a second request reusing a request_id, a network event and a replay.
 */
function trafficWithOddities(startMs: number, calls: number): FixtureEvent[] {
  const out: FixtureEvent[] = [];
  const procs = [PROCESSES.python, PROCESSES.node, PROCESSES.cursor];
  for (let i = 0; i < calls; i++) {
    out.push(
      ...aiExchange({
        tsMs: startMs + i * 7 * 60_000,
        provider: i % 3 === 2 ? "anthropic" : "openai",
        process: procs[i % procs.length],
        mode: i % 4 === 3 ? "redacted" : "full",
        success: i % 5 !== 4,
        keyPrefix: i % 2 ? "sk-proj-" : "sk-live0",
        keyHash: `hash-${i % 3}`,
        inputTokens: 100 + i,
        outputTokens: 10 + i,
        costUsd: 0.001 * (i + 1),
        toolCalls: i % 6 === 1 ? [{ name: "read_file", arguments: '{"path":"a.py"}' }] : [],
      }),
    );
  }
  const [noAuthReq, noAuthResp] = aiExchange({ tsMs: startMs + HOUR, process: PROCESSES.bash });
  delete (noAuthReq!.data as Record<string, unknown>).auth;
  const [lateReq, earlyResp] = aiExchange({ tsMs: startMs + 2 * HOUR, keyPrefix: "sk-late-" });
  const [, orphanResp] = aiExchange({ tsMs: startMs + 3 * HOUR, keyPrefix: "sk-orph-" });
  const [firstReq, firstResp] = aiExchange({ tsMs: startMs + 4 * HOUR, keyPrefix: "sk-first", keyHash: "first" });
  const [againReq] = aiExchange({ tsMs: startMs + 4 * HOUR + 10, keyPrefix: "sk-again", keyHash: "again" });
  (againReq!.data as Record<string, unknown>).request_id = (firstReq!.data as Record<string, unknown>).request_id;
  const network: FixtureEvent = { event_id: `net-${startMs}`, event_type: "network.connect", ts: new Date(startMs).toISOString(), process: { pid: 1 } };
  out.push(noAuthReq!, noAuthResp!, earlyResp!, lateReq!, orphanResp!, firstReq!, againReq!, firstResp!, network, out[0]!);
  return out;
}

describe("migration 0002 on a database written by 0001's trigger", () => {
  test("keeps the rollups, backfills the credential columns, and later inserts roll up as 0001's trigger would", () => {
    const file = dbPath();
    const old = oldDatabase(file);
    const reference = oldDatabase(); // 0001's trigger all along, fed the same events
    const before = trafficWithOddities(T0, 40);
    insertOld(old, before);
    insertOld(reference, before);
    const hourBefore = rollups(old, "hour");
    const dayBefore = rollups(old, "day");
    expect(hourBefore.length).toBeGreaterThan(20);
    old.close();

    // A read-only store (analyze, status) can still read a database the sensor has not migrated yet.
    const readonly = openStore(file, { readonly: true });
    expect(readonly.list({ limit: 1000 }).length).toBe(before.length - 1);
    readonly.close();

    let store = open(file); // applies 0002
    expect(fs.statSync(`${file}-wal`).size).toBe(0); // the backfill's WAL was checkpointed away
    const raw = rawDb(file);
    expect(raw.query("SELECT tag FROM __oisp_migrations ORDER BY tag").all().map((r) => (r as { tag: string }).tag)).toEqual(
      migrations.map((m) => m.tag),
    );
    // 0004 leaves the rollups to the store (src/store/rollups.ts): no trigger is left.
    expect(raw.query("SELECT name FROM sqlite_master WHERE type = 'trigger'").all()).toEqual([]);
    // 0003 recounts the rollups from the events (same rows; a day's float cost may be summed in another order).
    expect(rounded(rollups(raw, "hour"))).toEqual(rounded(hourBefore));
    expect(rounded(rollups(raw, "day"))).toEqual(rounded(dayBefore));
    // The backfilled columns say exactly what the rollups counted.
    expect(rounded(rollupsFromEvents(raw, "hour"))).toEqual(rounded(hourBefore));
    expect(rounded(rollupsFromEvents(raw, "day"))).toEqual(rounded(dayBefore));

    const id = (e: FixtureEvent | undefined) => e!.event_id;
    const [req0, resp0, , tool] = [before[0], before[1], before[2], before.find((e) => e.event_type === "agent.tool_call")];
    expect(credentialsOf(raw, id(req0))).toEqual({ key_prefix: "sk-live0", key_hash: "hash-0", auth_type: "api_key" });
    expect(credentialsOf(raw, id(resp0))).toEqual({ key_prefix: "sk-live0", key_hash: "hash-0", auth_type: "api_key" });
    expect(credentialsOf(raw, id(tool))).toEqual({ key_prefix: null, key_hash: null, auth_type: null });
    const byPrefix = (p: string, type: string) => before.find((e) => e.event_type === type && JSON.stringify(e).includes(`"key_prefix":"${p}"`));
    expect(credentialsOf(raw, id(byPrefix("sk-first", "ai.request")))).toMatchObject({ key_prefix: "sk-first" });
    expect(credentialsOf(raw, id(byPrefix("sk-again", "ai.request")))).toMatchObject({ key_prefix: "sk-again" });
    // Stored before its request / with no request at all: counted without a credential, as the trigger did.
    const early = before.find((e) => e.event_type === "ai.response" && (e.data as { request_id: string }).request_id ===
      (byPrefix("sk-late-", "ai.request")!.data as { request_id: string }).request_id);
    expect(credentialsOf(raw, id(early))).toEqual({ key_prefix: null, key_hash: null, auth_type: null });
    // A response after two requests sharing its request_id: the first one's.
    const firstResp = before.find((e) => e.event_type === "ai.response" && (e.data as { request_id: string }).request_id ===
      (byPrefix("sk-first", "ai.request")!.data as { request_id: string }).request_id && e !== early);
    expect(credentialsOf(raw, id(firstResp))).toMatchObject({ key_prefix: "sk-first", key_hash: "first" });

    // New events through the store: a request, then its response in a later batch; a pair in one batch.
    const later = trafficWithOddities(T0 + 6 * HOUR, 12);
    const [lreq, lresp, ...rest] = later;
    store.insertEvents([lreq!]);
    store.insertEvents([lresp!]);
    store.insertEvents(rest);
    insertOld(reference, later);
    // After a restart the store remembers no request: responses to requests stored before it (some
    // backfilled by 0002, some inserted by the previous store) find them through the table.
    store.close();
    store = open(file);
    const answers = (events: FixtureEvent[]) =>
      events.filter((e) => e.event_type === "ai.request").map((req) => {
        // Same provider and model as the request: 0001's trigger counted a response under its own model,
        // the store (since 0003) under its request's; here both agree (test/unit/store-call-model.test.ts).
        const d = req.data as { provider: { name: "openai" | "anthropic" }; model: { id: string } };
        const resp = aiExchange({ tsMs: Date.parse(req.ts) + 1000, provider: d.provider.name, model: d.model.id })[1]!;
        (resp.data as Record<string, unknown>).request_id = (req.data as Record<string, unknown>).request_id;
        return resp;
      });
    const afterRestart = [...answers(before.slice(0, 12)), ...answers(later.slice(0, 12))];
    expect(store.insertEvents(afterRestart).inserted).toBe(afterRestart.length);
    insertOld(reference, afterRestart);

    expect(rounded(rollups(raw, "hour"))).toEqual(rounded(rollups(reference, "hour")));
    expect(rounded(rollups(raw, "day"))).toEqual(rounded(rollups(reference, "day")));
    expect(rounded(rollupsFromEvents(raw, "day"))).toEqual(rounded(rollups(raw, "day")));
    expect(credentialsOf(raw, id(afterRestart[0]))).toEqual({ key_prefix: "sk-live0", key_hash: "hash-0", auth_type: "api_key" });
  });
});

describe("rollups kept by the credential columns", () => {
  test("a mixed batch: rollup totals equal a GROUP BY over events, and what 0001's trigger gives", () => {
    const file = dbPath();
    const store = open(file);
    const reference = oldDatabase();
    const batch = trafficWithOddities(T0, 60);
    // Shuffle deterministically so some responses come before their requests within the batch.
    const mixed = batch.map((e, i) => ({ e, k: (i * 7919) % batch.length })).sort((a, b) => a.k - b.k).map((x) => x.e);
    expect(store.insertEvents(mixed)).toEqual({ inserted: mixed.length - 1, duplicates: 1, invalid: 0 });
    insertOld(reference, mixed);
    // A replayed batch counts nothing twice.
    expect(store.insertEvents(mixed.slice(0, 20)).inserted).toBe(0);

    const raw = rawDb(file);
    for (const grain of ["hour", "day"] as const) {
      expect(rounded(rollups(raw, grain))).toEqual(rounded(rollupsFromEvents(raw, grain)));
      expect(rollups(raw, grain)).toEqual(rollups(reference, grain));
    }
    const credentialed = raw.query("SELECT count(*) AS n FROM events WHERE event_type = 'ai.response' AND key_hash IS NOT NULL").get();
    expect((credentialed as { n: number }).n).toBeGreaterThan(20);
  });

  test("an ai.request's credential comes from its own data.auth; odd auth shapes count as unknown", () => {
    const row = (auth: unknown, type = "ai.request") =>
      toEventRow({ event_id: "e", event_type: type, ts: "2025-01-01T00:00:00Z", data: { request_id: "r", auth } })!;
    expect(row({ type: "oauth", key_prefix: "sk-abc", key_hash: "h" })).toMatchObject({ keyPrefix: "sk-abc", keyHash: "h", authType: "oauth" });
    expect(row({ type: "none" })).toMatchObject({ keyPrefix: null, keyHash: null, authType: "none" });
    expect(row("sk-secret")).toMatchObject(NO_CREDENTIAL);
    expect(row([{ key_prefix: "x" }])).toMatchObject(NO_CREDENTIAL);
    expect(row({ key_prefix: 5 })).toMatchObject(NO_CREDENTIAL);
    // A response's own auth (not in OISP) is ignored: it takes its request's.
    expect(row({ key_prefix: "sk-resp" }, "ai.response")).toMatchObject(NO_CREDENTIAL);
  });
});

describe("RequestCredentials", () => {
  const cred = (p: string) => ({ keyPrefix: p, keyHash: `h-${p}`, authType: "api_key", callModel: `m-${p}` });
  /** A migrated in-memory store, a statement storing requests in it, and credentials remembering `bound`. */
  const overTable = (bound: number, insertSql: string) => {
    const db = rawDb(":memory:");
    applyMigrations(db, migrations);
    const credentials = new RequestCredentials(db, bound);
    closers.push(() => credentials.close());
    return { db, stored: db.prepare(insertSql), credentials };
  };

  test("remembers committed requests up to its bound, then reads the table; a rolled-back batch is forgotten", () => {
    const { db, stored, credentials } = overTable(2, "INSERT INTO events (event_id, ts, ts_ms, event_type, request_id, json, key_prefix, key_hash, auth_type, call_model) VALUES (?, 't', 0, 'ai.request', ?, '{}', ?, ?, ?, ?)");
    for (const id of ["a", "b", "c"]) {
      stored.run(`e-${id}`, id, `p-${id}`, `h-p-${id}`, "api_key", `m-p-${id}`);
      credentials.stored(id, cred(`p-${id}`));
    }
    // Before the commit the batch's own requests are found (a response later in the same batch).
    expect(credentials.forResponse("c")).toEqual(cred("p-c"));
    credentials.commit();
    // "a" was forgotten (bound 2): found through the table, same answer.
    db.run("UPDATE events SET key_prefix = 'from-table' WHERE request_id = 'a'");
    expect(credentials.forResponse("a")).toMatchObject({ keyPrefix: "from-table" });
    expect(credentials.forResponse("b")).toEqual(cred("p-b"));
    expect(credentials.forResponse("none")).toEqual({ ...NO_CREDENTIAL, callModel: null });

    credentials.stored("d", cred("p-d")); // its batch failed: never stored
    credentials.rollback();
    expect(credentials.forResponse("d")).toEqual({ ...NO_CREDENTIAL, callModel: null });
    // The first request with an id wins, as the trigger's lookup found the first.
    credentials.stored("b", cred("other"));
    credentials.commit();
    expect(credentials.forResponse("b")).toEqual(cred("p-b"));
    stored.finalize();
  });

  test("forgets the oldest first, batch after batch, never more than its bound", () => {
    const { stored, credentials } = overTable(3, "INSERT INTO events (event_id, ts, ts_ms, event_type, request_id, json, key_prefix) VALUES (?, 't', 0, 'ai.request', ?, '{}', 'from-table')");
    const ids = Array.from({ length: 11 }, (_, i) => `r${i}`);
    // Batches of 2, 1, 3, 5: the remembered ids wrap around the bound several times.
    for (const batch of [ids.slice(0, 2), ids.slice(2, 3), ids.slice(3, 6), ids.slice(6)]) {
      for (const id of batch) {
        stored.run(`e-${id}`, id);
        credentials.stored(id, cred(`p-${id}`));
      }
      credentials.commit();
      const upTo = ids.indexOf(batch.at(-1)!) + 1;
      for (const [i, id] of ids.slice(0, upTo).entries()) {
        const remembered = i >= upTo - 3;
        expect(credentials.forResponse(id).keyPrefix).toBe(remembered ? `p-${id}` : "from-table");
      }
    }
    stored.finalize();
  });

  test("forget() drops every committed request (idle): responses then read the table, and the ring restarts", () => {
    const { stored, credentials } = overTable(3, "INSERT INTO events (event_id, ts, ts_ms, event_type, request_id, json, key_prefix) VALUES (?, 't', 0, 'ai.request', ?, '{}', 'from-table')");
    const store = (ids: string[]) => {
      for (const id of ids) {
        stored.run(`e-${id}`, id);
        credentials.stored(id, cred(`p-${id}`));
      }
    };
    store(["a", "b"]);
    credentials.commit();
    store(["c"]); // stored, its batch not committed yet
    credentials.forget();
    expect(credentials.forResponse("a").keyPrefix).toBe("from-table");
    expect(credentials.forResponse("b").keyPrefix).toBe("from-table");
    expect(credentials.forResponse("c").keyPrefix).toBe("p-c"); // the open batch is not forgotten
    credentials.commit();
    store(["d", "e", "f", "g"]);
    credentials.commit();
    // Bound 3 from an empty ring: c and d gone, e f g remembered.
    expect(["c", "d", "e", "f", "g"].map((id) => credentials.forResponse(id).keyPrefix)).toEqual(["from-table", "from-table", "p-e", "p-f", "p-g"]);
    stored.finalize();
  });

  test("the store forgets them in releaseMemory(); a response after it still gets its request's credential", () => {
    const file = dbPath();
    const store = open(file);
    const events = aiExchange({ tsMs: T0, provider: "openai", process: PROCESSES.python, mode: "full", success: true, keyPrefix: "sk-proj-", keyHash: "hash-x", inputTokens: 1, outputTokens: 1, costUsd: 0.001, toolCalls: [] });
    const request = events.filter((e) => e.event_type === "ai.request");
    const response = events.find((e) => e.event_type === "ai.response")!;
    store.insertEvents(request);
    store.releaseMemory();
    // Marks the request's row: a response that read the row (not the store's memory) carries the mark.
    const raw = rawDb(file);
    raw.run("UPDATE events SET key_hash = 'from-table' WHERE event_type = 'ai.request'");
    store.insertEvents([response]);
    expect(credentialsOf(raw, response.event_id)).toMatchObject({ key_prefix: "sk-proj-", key_hash: "from-table" });
  });
});
