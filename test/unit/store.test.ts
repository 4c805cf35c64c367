import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { memoryUsage } from "bun:jsc";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore, StoreError, type StorableEvent } from "../../src/store/index.ts";
import { applyMigrations, splitStatements } from "../../src/store/migrate.ts";
import { migrations } from "../../src/store/migrations/index.ts";
import { EVENT_COLUMNS } from "../../src/store/event-columns.ts";
import { events } from "../../src/store/schema.ts";
import { getTableColumns } from "drizzle-orm";

const dirs: string[] = [];
const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function dbPath(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-store-"));
  dirs.push(d);
  return path.join(d, "oisp.db");
}
function open(file: string, opts?: Parameters<typeof openStore>[1]) {
  const store = openStore(file, opts);
  closers.push(() => store.close());
  return store;
}

const T0 = Date.parse("2025-01-01T00:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

function aiResponse(i: number, over: Partial<StorableEvent> = {}): StorableEvent {
  return {
    event_id: `evt-${String(i).padStart(6, "0")}`,
    event_type: "ai.response",
    ts: iso(T0 + i * 1000),
    process: { pid: 100 + (i % 3), name: i % 2 ? "python3" : "node" },
    data: {
      request_id: `req-${i}`,
      provider: { name: i % 2 ? "openai" : "anthropic" },
      model: { id: i % 2 ? "gpt-4o" : "claude-sonnet-4" },
      success: i % 5 !== 0,
      usage: { prompt_tokens: 10 + i, completion_tokens: 5, total_cost_usd: 0.001 * i },
    },
    attrs: { conn_id: `conn-${i}` },
    confidence: { level: "high", completeness: "full" },
    ...over,
  };
}

describe("migrations", () => {
  test("apply on a new file, record themselves, and are idempotent", () => {
    const file = dbPath();
    open(file).close();
    const raw = new Database(file);
    closers.push(() => raw.close());
    expect(raw.query("select tag from __oisp_migrations").all()).toEqual(migrations.map((m) => ({ tag: m.tag })));
    expect(applyMigrations(raw, migrations)).toEqual([]); // second run: nothing to do
    const indexes = raw.query("select name from sqlite_master where type = 'index' and tbl_name = 'events' and name not like 'sqlite_%' order by name").all();
    expect(indexes.map((r) => (r as { name: string }).name)).toEqual(["events_request_id_idx", "events_ts_ms_idx"]);
    expect(raw.query("pragma journal_mode").get()).toEqual({ journal_mode: "wal" });
    // Reopening a migrated database keeps its rows.
    raw.run("insert into events (event_id, ts, ts_ms, event_type, json) values ('x', 't', 1, 'ai.request', '{}')");
    const again = open(file);
    expect(again.count()).toBe(1);
  });

  test("the embedded list matches drizzle-kit's journal (a generated migration was not forgotten)", () => {
    const journal = JSON.parse(fs.readFileSync(path.join(import.meta.dir, "../../src/store/migrations/meta/_journal.json"), "utf8"));
    expect(migrations.map((m) => m.tag)).toEqual(journal.entries.map((e: { tag: string }) => e.tag));
    for (const m of migrations) {
      expect(m.sql).toBe(fs.readFileSync(path.join(import.meta.dir, `../../src/store/migrations/${m.tag}.sql`), "utf8"));
    }
  });

  test("a failing migration leaves nothing half-applied", () => {
    const raw = new Database(":memory:");
    closers.push(() => raw.close());
    const bad = [{ tag: "0001_bad", sql: "create table a (x);--> statement-breakpoint\ncreate table oops (" }];
    expect(() => applyMigrations(raw, bad)).toThrow();
    expect(raw.query("select name from sqlite_master where name = 'a'").all()).toEqual([]);
    expect(raw.query("select count(*) as n from __oisp_migrations").get()).toEqual({ n: 0 });
    expect(splitStatements("a;--> statement-breakpoint\n\n b; ")).toEqual(["a;", "b;"]);
  });

  test("the database file is created owner-only", () => {
    const file = dbPath();
    open(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  test("a new database gets 8 KiB pages; an existing one keeps its page size and its events", () => {
    const pageSize = (file: string) => {
      const raw = new Database(file, { readonly: true });
      try {
        return (raw.query("PRAGMA page_size").get() as { page_size: number }).page_size;
      } finally {
        raw.close();
      }
    };
    const fresh = dbPath();
    open(fresh).insertEvents([aiResponse(1)]);
    expect(pageSize(fresh)).toBe(8192);

    // A database written before (SQLite's default 4 KiB pages): reopened, still 4 KiB, still readable and writable.
    const old = dbPath();
    const raw = new Database(old, { create: true });
    raw.run("PRAGMA page_size = 4096");
    raw.run("PRAGMA journal_mode = WAL");
    applyMigrations(raw, migrations);
    raw.close();
    const first = open(old);
    first.insertEvents([aiResponse(1)]);
    first.close();
    const again = open(old);
    again.insertEvents([aiResponse(2)]);
    expect(again.count()).toBe(2);
    expect(pageSize(old)).toBe(4096);
  });
});

describe("events", () => {
  test("10k events in one batch; columns extracted; a replay is ignored, not duplicated", () => {
    const store = open(dbPath());
    const batch = Array.from({ length: 10_000 }, (_, i) => aiResponse(i));
    expect(store.insertEvents(batch)).toEqual({ inserted: 10_000, duplicates: 0, invalid: 0 });
    expect(store.count()).toBe(10_000);
    expect(store.insertEvents(batch.slice(0, 500))).toEqual({ inserted: 0, duplicates: 500, invalid: 0 });
    expect(store.insertEvents([aiResponse(3), aiResponse(20_000)])).toEqual({ inserted: 1, duplicates: 1, invalid: 0 });
    expect(store.count()).toBe(10_001);

    const { event, ...columns } = store.get("evt-000007")!;
    expect(columns).toEqual({
      eventId: "evt-000007",
      ts: iso(T0 + 7000),
      tsMs: T0 + 7000,
      eventType: "ai.response",
      provider: "openai",
      model: "gpt-4o",
      pid: 101,
      processName: "python3",
      requestId: "req-7",
      connId: "conn-7",
      success: 1,
      inputTokens: 17,
      outputTokens: 5,
      costUsd: 0.007,
      completeness: "full",
    });
    expect(event).toEqual(aiResponse(7) as unknown as Record<string, unknown>);
    expect(store.get("evt-000005")!.success).toBe(0);
    expect(store.get("nope")).toBeUndefined();
  });

  test("odd shapes: missing or mistyped fields become null; unstorable events are skipped and counted", () => {
    const store = open(dbPath());
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const result = store.insertEvents([
      { event_id: "plain", event_type: "network.connect", ts: "2025-01-01T00:00:00.123456Z" },
      { event_id: "weird", event_type: "ai.request", ts: iso(T0), process: "x", data: { provider: "openai", model: 5, usage: { prompt_tokens: "9" }, success: "yes" }, attrs: [] },
      { event_id: "", event_type: "ai.request", ts: iso(T0) },
      { event_id: "bad-ts", event_type: "ai.request", ts: "yesterday" },
      { event_id: "cyclic", event_type: "ai.request", ts: iso(T0), data: cyclic },
    ]);
    expect(result).toEqual({ inserted: 2, duplicates: 0, invalid: 3 });
    expect(store.get("plain")).toMatchObject({ tsMs: T0 + 123, provider: null, model: null, pid: null, success: null, costUsd: null });
    expect(store.get("weird")).toMatchObject({ provider: "openai", model: null, processName: null, inputTokens: null, success: null, connId: null });
  });

  test("list: newest first, filters, limit and paging without skipping events that share a millisecond", () => {
    const store = open(dbPath());
    store.insertEvents(Array.from({ length: 20 }, (_, i) => aiResponse(i)));
    store.insertEvents([
      aiResponse(100, { event_id: "same-a", event_type: "ai.request", ts: iso(T0 + 50_000) }),
      aiResponse(101, { event_id: "same-b", event_type: "ai.request", ts: iso(T0 + 50_000) }),
    ]);
    const ids = (rows: { eventId: string }[]) => rows.map((r) => r.eventId);

    expect(ids(store.list({ limit: 4 }))).toEqual(["same-b", "same-a", "evt-000019", "evt-000018"]);
    expect(ids(store.list({ type: "ai.request" }))).toEqual(["same-b", "same-a"]);
    expect(ids(store.list({ provider: "openai", model: "gpt-4o", process: "python3", limit: 3 }))).toEqual(["same-b", "evt-000019", "evt-000017"]);
    expect(ids(store.list({ beforeTsMs: T0 + 3000 }))).toEqual(["evt-000002", "evt-000001", "evt-000000"]);
    expect(ids(store.list({ sinceTsMs: T0 + 18_000, type: "ai.response" }))).toEqual(["evt-000019", "evt-000018"]);
    // Page through with (ts, id) cursors: every event exactly once.
    const seen: string[] = [];
    let cursor: { beforeTsMs?: number; beforeEventId?: string } = {};
    for (;;) {
      const page = store.list({ limit: 3, ...cursor });
      if (page.length === 0) break;
      seen.push(...ids(page));
      const last = page.at(-1)!;
      cursor = { beforeTsMs: last.tsMs, beforeEventId: last.eventId };
    }
    expect(seen).toEqual(ids(store.list({ limit: 1000 })));
    expect(new Set(seen).size).toBe(22);

    expect(store.count({ provider: "anthropic" })).toBe(11); // the 10 even ones and same-a (built from 100)
  });

  test("byRequestId returns the call's events oldest first; count filters", () => {
    const store = open(dbPath());
    store.insertEvents([
      aiResponse(2, { event_id: "resp", data: { request_id: "r1" } }),
      aiResponse(1, { event_id: "req", event_type: "ai.request", data: { request_id: "r1" } }),
      aiResponse(3, { event_id: "other", data: { request_id: "r2" } }),
    ]);
    expect(store.byRequestId("r1").map((r) => r.eventId)).toEqual(["req", "resp"]);
    expect(store.byRequestId("none")).toEqual([]);
    expect(store.count({ type: "ai.response" })).toBe(2);
    expect(store.count({ requestId: "r2" })).toBe(1);
  });

  test("database locked by another connection → StoreError with a clear message after the busy timeout; nothing stored", () => {
    const file = dbPath();
    const store = open(file, { busyTimeoutMs: 50 });
    const other = new Database(file);
    closers.push(() => other.close());
    other.run("BEGIN EXCLUSIVE");
    let caught: unknown;
    try {
      store.insertEvents([aiResponse(1)]);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StoreError);
    expect((caught as StoreError).kind).toBe("locked");
    expect((caught as StoreError).message).toBe(
      `database is locked: storing 1 events in ${file}: another process held it for more than 50 ms (database is locked)`,
    );
    other.run("ROLLBACK");
    // Once the lock is gone the same batch goes in.
    expect(store.insertEvents([aiResponse(1)]).inserted).toBe(1);
  });

  test("a file that is not a database → StoreError on open; use after close → StoreError", () => {
    const file = dbPath();
    fs.writeFileSync(file, "this is not sqlite".repeat(100));
    expect(() => openStore(file)).toThrow(StoreError);
    expect(() => openStore(file)).toThrow(/database file is damaged or not a database/);

    const store = openStore(dbPath());
    store.close();
    expect(() => store.count()).toThrow("store is closed (counting events)");
  });
});

describe("memory", () => {
  test("the insert's column list is the events table's (schema.ts), every column, same keys and names", () => {
    expect(EVENT_COLUMNS as unknown).toEqual(Object.entries(getTableColumns(events)).map(([key, column]) => ({ key, name: column.name })));
  });

  test("opening a store and inserting load no drizzle-orm (it kept ~8 MB in the sensor Worker); a read loads it", () => {
    const store = path.join(import.meta.dir, "../../src/store/index.ts");
    const file = dbPath();
    const script = `
      const { openStore } = await import(${JSON.stringify(store)});
      const drizzleLoaded = () => Object.keys(require.cache).some((k) => k.includes("/node_modules/drizzle-orm/"));
      const store = openStore(${JSON.stringify(file)});
      const event = (type, i) => ({ event_id: "e" + i, event_type: type, ts: "2025-01-01T00:00:00Z", data: { request_id: "r1", model: { id: "m" } } });
      const r = store.insertEvents([event("ai.request", 1), event("ai.response", 2)]);
      const before = drizzleLoaded();
      const n = store.count();
      const ids = store.byRequestId("r1").map((e) => e.eventId);
      store.close();
      console.log(JSON.stringify({ r, before, after: drizzleLoaded(), n, ids }));`;
    const r = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    expect(JSON.parse(r.stdout.toString())).toEqual({ r: { inserted: 2, duplicates: 0, invalid: 0 }, before: false, after: true, n: 2, ids: ["e1", "e2"] });
  });

  test("releaseMemory gives SQLite's page cache back; the store works on; after close it does nothing", async () => {
    const store = open(dbPath());
    const body = "x".repeat(300);
    store.insertEvents(Array.from({ length: 10_000 }, (_, i) => aiResponse(i, { data: { request_id: `req-${i}`, body } })));
    expect(store.count()).toBe(10_000); // the scan fills the cache (2 MB by default)
    // Bun's allocator counters settle a moment after a change.
    const inUse = async () => (await Bun.sleep(300), memoryUsage().current);
    const before = await inUse();
    store.releaseMemory();
    expect(before - (await inUse())).toBeGreaterThan(1024 * 1024);
    expect(store.count()).toBe(10_000);
    store.close();
    store.releaseMemory();
  });
});
