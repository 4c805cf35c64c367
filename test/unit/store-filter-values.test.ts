// Migration 0005: the events table keeps only its time and request-id indexes. The dashboard's filter lists
// come from event_values, and a filtered timeline or export finds its events through the hour rollup (which
// hours hold them), then reads those hours by time: the same rows, in the same order, as a scan would give.
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { toEventRow } from "../../src/store/columns.ts";
import { FilterValues } from "../../src/store/filter-values.ts";
import { openStore } from "../../src/store/index.ts";
import { applyMigrations } from "../../src/store/migrate.ts";
import { migrations } from "../../src/store/migrations/index.ts";
import { openWebQueries, type WebFilter } from "../../src/store/queries.ts";
import { aiExchange, PROCESSES, systemEvent, type FixtureEvent } from "../support/event-fixtures.ts";

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 2, 1, 10);
const SNAP = "gpt-4o-mini-2024-07-18";
const RARE = { pid: 4242, ppid: 1, name: "rare-tool", exe: "/usr/bin/rare-tool" };

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function dbPath(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-filter-values-"));
  dirs.push(d);
  return path.join(d, "oisp.db");
}

/**
 * Busy hours of common traffic, a rare process seen in three far-apart hours (one of them busy, one at the
 * very edge of an hour), an alias answered by a snapshot, and some process events.
 */
function traffic(): FixtureEvent[] {
  const out: FixtureEvent[] = [];
  for (let i = 0; i < 300; i++) {
    const process = i % 2 ? PROCESSES.node : PROCESSES.python;
    out.push(...aiExchange({ tsMs: T0 + i * 97_000, provider: i % 3 ? "openai" : "anthropic", process, success: i % 29 !== 0 }).slice(0, 2));
  }
  for (const t of [T0 - 30 * 24 * HOUR + 5, T0 + 2 * HOUR + 1234, T0 + 7 * HOUR - 1]) out.push(...aiExchange({ tsMs: t, process: RARE }).slice(0, 2));
  out.push(...aiExchange({ tsMs: T0 + 3 * HOUR + 10, model: "gpt-4o-mini", responseModel: SNAP }).slice(0, 2));
  out.push(...aiExchange({ tsMs: T0 + 5 * HOUR + 10, model: "gpt-4o-mini", responseModel: SNAP }).slice(0, 2));
  out.push(systemEvent("process.exec", T0 + HOUR, RARE, { exe: RARE.exe, args: ["rare-tool", "--x"] }));
  out.push(systemEvent("file.write", T0 + 4 * HOUR, PROCESSES.node, { path: "/tmp/out.txt", bytes_written: 12 }));
  return out;
}

/** What a filter should return, from the fixture itself: newest first, ties by event_id. */
function expected(events: FixtureEvent[], f: WebFilter): string[] {
  const col = (e: FixtureEvent) => toEventRow(e)!;
  return events
    .map(col)
    .filter((r) => (!f.provider || r.provider === f.provider) && (!f.model || r.model === f.model) && (!f.process || r.processName === f.process))
    .filter((r) => (!f.type || r.eventType === f.type) && (f.sinceMs === undefined || r.tsMs >= f.sinceMs) && (f.untilMs === undefined || r.tsMs < f.untilMs))
    .filter((r) => !f.status || r.success === (f.status === "error" ? 0 : 1))
    .sort((a, b) => b.tsMs - a.tsMs || (a.eventId < b.eventId ? 1 : -1))
    .map((r) => r.eventId);
}

describe("event_values and the filter lists", () => {
  test("a new database has no index on type, provider, model or process; the lists hold every value seen", () => {
    const file = dbPath();
    const store = openStore(file);
    store.insertEvents(traffic());
    const raw = new Database(file, { readonly: true });
    const indexes = raw.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND name NOT LIKE 'sqlite_%' ORDER BY name").all();
    expect(indexes.map((r) => r.name)).toEqual(["events_request_id_idx", "events_ts_ms_idx"]);
    raw.close();
    const q = openWebQueries(file);
    expect(q.distinct("process_name")).toEqual(["node", "python3", "rare-tool"]);
    expect(q.distinct("event_type")).toEqual(["ai.request", "ai.response", "file.write", "process.exec"]);
    expect(q.distinct("provider")).toEqual(["anthropic", "openai"]);
    // The snapshot that answered is a model of the events too (a response's own model).
    expect(q.distinct("model")).toEqual(["claude-sonnet-4-5", "gpt-4o-mini", SNAP]);
    // A value first seen later, by another writer on the same file, joins the list once.
    const other = openStore(file);
    other.insertEvents(aiExchange({ tsMs: T0 + 9 * HOUR, process: { ...RARE, name: "late-app" } }).slice(0, 2));
    store.insertEvents(aiExchange({ tsMs: T0 + 9 * HOUR + 1, process: { ...RARE, name: "late-app" } }).slice(0, 2));
    expect(q.distinct("process_name")).toEqual(["late-app", "node", "python3", "rare-tool"]);
    other.close();
    store.close();
    q.close();
  });

  test("a value of a batch that rolled back is written with the next one; a bounded memory only writes again", () => {
    const file = dbPath();
    const store = openStore(file);
    const calls = aiExchange({ tsMs: T0, process: { ...RARE, name: "flaky-app" } }).slice(0, 2);
    const saboteur = new Database(file);
    saboteur.run(`CREATE TRIGGER fail_once AFTER INSERT ON events WHEN NEW.event_id = '${calls[1]!.event_id}' BEGIN SELECT RAISE(ABORT, 'boom'); END`);
    expect(() => store.insertEvents(calls)).toThrow();
    saboteur.run("DROP TRIGGER fail_once");
    expect(saboteur.query("SELECT count(*) AS n FROM event_values WHERE value = 'flaky-app'").get()).toEqual({ n: 0 });
    store.insertEvents(calls);
    expect(saboteur.query("SELECT count(*) AS n FROM event_values WHERE value = 'flaky-app'").get()).toEqual({ n: 1 });
    saboteur.close();
    store.close();
    // FilterValues itself, bounded at 2 values: forgetting only means an INSERT that finds the row there.
    const db = new Database(file);
    const values = new FilterValues(db, 2);
    for (const name of ["a", "b", "c", "a", "d", "a"]) {
      db.transaction(() => values.add(toEventRow(aiExchange({ tsMs: T0, process: { ...RARE, name } })[0]!)!))();
      values.commit();
    }
    expect(db.query("SELECT value FROM event_values WHERE `column` = 'process_name' ORDER BY value").all()).toEqual(
      ["a", "b", "c", "d", "flaky-app"].map((value) => ({ value })),
    );
    values.close();
    db.close();
  });

  test("migration 0005 fills event_values from a database written before it, and drops the four indexes", () => {
    const file = dbPath();
    const old = new Database(file);
    // Up to 0003, whose trigger keeps the rollups and model_answers (per model pair) from raw inserts.
    applyMigrations(old, migrations.slice(0, migrations.findIndex((m) => m.tag === "0004_rollups_in_store")));
    const events = traffic();
    const cols = ["event_id", "ts", "ts_ms", "event_type", "provider", "model", "pid", "process_name", "request_id", "json", "call_model"] as const;
    const stmt = old.prepare(`INSERT INTO events (${cols.join(", ")}) VALUES (${cols.map(() => "?").join(", ")})`);
    const requestModel = new Map<string, string | null>();
    for (const e of events) {
      const r = toEventRow(e)!;
      if (r.eventType === "ai.request") requestModel.set(r.requestId!, r.model ?? null);
      const callModel = r.eventType === "ai.response" ? (requestModel.get(r.requestId!) ?? r.model ?? null) : (r.callModel ?? null);
      stmt.run(r.eventId, r.ts, r.tsMs, r.eventType, r.provider ?? null, r.model ?? null, r.pid ?? null, r.processName ?? null, r.requestId ?? null, r.json, callModel);
    }
    stmt.finalize();
    expect(old.query("SELECT count(*) AS n FROM model_answers").get()).toEqual({ n: 1 });
    old.close();
    // Read-only before the sensor migrates it: the lists still come from the old indexes.
    const before = openWebQueries(file);
    expect(before.distinct("process_name")).toEqual(["node", "python3", "rare-tool"]);
    before.close();
    openStore(file).close();
    const q = openWebQueries(file);
    expect(q.distinct("process_name")).toEqual(["node", "python3", "rare-tool"]);
    expect(q.distinct("model")).toEqual(["claude-sonnet-4-5", "gpt-4o-mini", SNAP]);
    expect(q.distinct("event_type")).toEqual(["ai.request", "ai.response", "file.write", "process.exec"]);
    // model_answers recounted per hour: the snapshot's responses are found, and still listed beside the alias.
    expect(q.timeline({ model: SNAP }).rows.map((r) => r.event_id)).toEqual(expected(events, { model: SNAP }));
    expect(q.models().find((m) => m.model === "gpt-4o-mini")!.answered_by).toEqual([SNAP]);
    q.close();
    const raw = new Database(file, { readonly: true });
    expect(raw.query("SELECT count(*) AS n, sum(responses) AS r FROM model_answers").get()).toEqual({ n: 2, r: 2 });
    expect(raw.query("SELECT count(*) AS n FROM sqlite_master WHERE type = 'index' AND name IN ('events_event_type_idx', 'events_provider_idx', 'events_model_idx', 'events_process_name_idx')").get()).toEqual({ n: 0 });
    raw.close();
  });
});

describe("a filtered timeline and export through the hour rollup", () => {
  test("each rollup row knows its oldest and newest event (first_ms, migration 0006): where in its hour a filter's events are", () => {
    const file = dbPath();
    const events = traffic();
    const store = openStore(file);
    for (let i = 0; i < events.length; i += 7) store.insertEvents(events.slice(i, i + 7));
    store.close();
    const db = new Database(file, { readonly: true });
    for (const [table, ms] of [["event_rollup_hour", HOUR], ["event_rollup_day", 24 * HOUR]] as const) {
      const key = "event_type, provider, model, process_name, pid";
      const fromRollup = db.query(`SELECT bucket_ms, ${key}, min(first_ms) AS first_ms, max(last_ms) AS last_ms FROM ${table} GROUP BY bucket_ms, ${key} ORDER BY 1, 2, 3, 4, 5, 6`).all();
      const fromEvents = db
        .query(
          `SELECT (ts_ms / ${ms}) * ${ms} AS bucket_ms, event_type, coalesce(provider, '') AS provider, coalesce(call_model, model, '') AS model,
             coalesce(process_name, '') AS process_name, coalesce(pid, -1) AS pid, min(ts_ms) AS first_ms, max(ts_ms) AS last_ms
           FROM events GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6`,
        )
        .all();
      expect(fromRollup).toEqual(fromEvents);
    }
    db.close();
  });

  const filters: WebFilter[] = [
    { process: "rare-tool" },
    { process: "rare-tool", type: "ai.response" },
    { process: "rare-tool", sinceMs: T0 + 2 * HOUR + 1234, untilMs: T0 + 7 * HOUR - 1 },
    { provider: "anthropic" },
    { provider: "openai", process: "node", sinceMs: T0 + HOUR + 17 },
    { model: SNAP },
    { model: "gpt-4o-mini", type: "ai.response", untilMs: T0 + 6 * HOUR },
    { type: "process.exec" },
    { process: "no-such-app" },
    // The rollups count failures: a status filter keeps only the hours holding some.
    { provider: "openai", status: "error" },
    { process: "node", status: "ok", sinceMs: T0 + 3 * HOUR },
  ];

  test("pages, newest first, hold exactly the matching events, for rare and common values alike", () => {
    const file = dbPath();
    const events = traffic();
    const store = openStore(file);
    store.insertEvents(events);
    store.close();
    const q = openWebQueries(file);
    for (const f of filters) {
      for (const limit of [1, 2, 7, 500]) {
        const seen: string[] = [];
        let page = q.timeline(f, { limit });
        for (;;) {
          seen.push(...page.rows.map((r) => r.event_id));
          if (!page.next) break;
          page = q.timeline(f, { limit, before: page.next });
        }
        expect({ f, limit, seen }).toEqual({ f, limit, seen: expected(events, f) });
      }
      const exported = [...q.exportChunks(f, 3)].flat().map((r) => r.event_id);
      expect({ f, exported }).toEqual({ f, exported: expected(events, f).reverse() });
    }
    // The process view's activity: a process's exec and file events, none when it had none.
    expect(q.processActivity({ process: "rare-tool" }).map((r) => r.event_type)).toEqual(["process.exec"]);
    expect(q.processActivity({ process: "python3" })).toEqual([]);
    q.close();
  });
});
