// The event store: OISP events in one SQLite file (bun:sqlite through drizzle), written in batches by the
// sensor and read by the dashboard and `oisp analyze`. Failures surface as StoreError; the caller decides.
import { Database, type Statement } from "bun:sqlite";
import type { SQL } from "drizzle-orm";
import type { BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import fs from "node:fs";
import { toEventRow, type StorableEvent } from "./columns.ts";
import { RequestCredentials } from "./credentials.ts";
import { RollupBatch } from "./rollups.ts";
import { FilterValues } from "./filter-values.ts";
import { StoreError, toStoreError } from "./errors.ts";
import { applyMigrations } from "./migrate.ts";
import { migrations } from "./migrations/index.ts";
import { EVENT_COLUMNS } from "./event-columns.ts";
import type * as schema from "./schema.ts";
import type { EventRow, NewEventRow } from "./schema.ts";

export { StoreError, type StoreErrorKind } from "./errors.ts";
export type { StorableEvent } from "./columns.ts";

export interface StoreOptions {
  /** How long a write waits for another connection's lock before failing (SQLite busy_timeout). */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

export interface EventFilter {
  type?: string;
  provider?: string;
  model?: string;
  /** Process name, exact. */
  process?: string;
  requestId?: string;
  connId?: string;
  /** Only events at or after this time. */
  sinceTsMs?: number;
}

export interface ListOptions extends EventFilter {
  /** At most this many (default 100, capped at 10 000). */
  limit?: number;
  /** Paging, newest first: only events strictly older than this... */
  beforeTsMs?: number;
  /** ...or, with beforeTsMs, as old but with a smaller event_id (events sharing a millisecond are not skipped). */
  beforeEventId?: string;
}

/** A stored event: the indexed columns plus the event itself. */
export interface StoredEventRecord extends Omit<EventRow, "json" | CredentialColumn> {
  event: Record<string, unknown>;
}

/** Kept for the rollups, not part of a record (and absent from a database not yet migrated to 0002 / 0003). */
type CredentialColumn = "keyPrefix" | "keyHash" | "authType" | "callModel";

/**
 * drizzle-orm and the drizzle schema, loaded on the first query: the sensor Worker only inserts (prepared
 * below, no drizzle), and drizzle kept ~8 MB of it resident. Reads (analyze, status, a JSONL replay's
 * lookups) load it then.
 */
let drizzleParts: ReturnType<typeof loadDrizzle> | undefined;
function loadDrizzle() {
  const orm = require("drizzle-orm") as typeof import("drizzle-orm");
  const bunSqlite = require("drizzle-orm/bun-sqlite") as typeof import("drizzle-orm/bun-sqlite");
  const tables = require("./schema.ts") as typeof schema;
  const { keyPrefix: _p, keyHash: _h, authType: _a, callModel: _m, ...recordColumns } = orm.getTableColumns(tables.events);
  return { orm, drizzle: bunSqlite.drizzle, tables, events: tables.events, recordColumns };
}
const lazyDrizzle = () => (drizzleParts ??= loadDrizzle());

export interface InsertResult {
  inserted: number;
  /** Already stored (same event_id): a replay never duplicates. */
  duplicates: number;
  /** Not storable (no event_id / event_type, unparseable ts, not serialisable); skipped. */
  invalid: number;
}

/**
 * The events columns in a fixed order, for the one hot statement: the sensor's insert. drizzle builds and
 * prepares a new statement per call, which cost as much as the decoding; this is prepared once per store.
 */
const INSERT_SQL = `INSERT INTO events (${EVENT_COLUMNS.map((c) => c.name).join(", ")}) VALUES (${EVENT_COLUMNS.map(() => "?").join(", ")}) ON CONFLICT (event_id) DO NOTHING`;
const MAX_LIST = 10_000;
/** Page size of a database this store creates (SQLite's default is 4 KiB). */
export const NEW_PAGE_SIZE = 8192;

export type Store = ReturnType<typeof openStore>;

export function openStore(path: string, opts: StoreOptions = {}) {
  const busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
  let sqlite: Database;
  try {
    if (!opts.readonly && path !== ":memory:" && !fs.existsSync(path)) {
      // Events hold prompts and answers: the file (and its -wal/-shm, which copy its mode) is owner-only.
      fs.closeSync(fs.openSync(path, "a", 0o600));
    }
    sqlite = new Database(path, opts.readonly ? { readonly: true } : { create: true, readwrite: true });
  } catch (err) {
    throw toStoreError(err, `opening ${path}`, busyTimeoutMs);
  }
  try {
    sqlite.run(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    if (!opts.readonly) {
      // A new database gets 8 KiB pages (set before WAL mode, which writes the header): a row holds ~2 KB of
      // event JSON, one per 4 KiB page and three per 8 KiB, so a batch writes a third fewer bytes in a third
      // of the WAL frames (a frame is a pwrite of its header and one of its page, then a pread and a pwrite at
      // the checkpoint). A lone call's ~9 frames cost about as much as at 4 KiB; at 16 KiB they cost more.
      // An existing database keeps its page size (changing it needs a VACUUM).
      if (isEmptyDatabase(sqlite)) sqlite.run(`PRAGMA page_size = ${NEW_PAGE_SIZE}`);
      sqlite.run("PRAGMA journal_mode = WAL");
      sqlite.run("PRAGMA synchronous = NORMAL");
      // A backfill (0002 rewrites every AI event's row) leaves a WAL as large as the database, which SQLite
      // would keep until the last connection closes: give that disk back now.
      if (applyMigrations(sqlite, migrations).length > 0) sqlite.run("PRAGMA wal_checkpoint(TRUNCATE)");
      // An insert that writes several b-trees (the events table, its indexes; before 0004 the rollup
      // trigger's upserts too) is a statement SQLite must be able to undo on its own (a statement journal of
      // the pages it changes); with the default temp store that journal spills to a temp file, ~15 pwrite
      // calls per event with the trigger, about as costly as the insert itself. In memory it holds one
      // statement's pages at a time. Set after the migrations, whose journals may be large; this
      // connection's reads are small (paged lists, counts), so no big sort lands in memory either.
      sqlite.run("PRAGMA temp_store = MEMORY");
    }
  } catch (err) {
    sqlite.close();
    throw toStoreError(err, `preparing ${path}`, busyTimeoutMs);
  }
  let drizzleDb: BunSQLiteDatabase<typeof schema> | undefined;
  const dbOf = (): BunSQLiteDatabase<typeof schema> => {
    const { drizzle, tables } = lazyDrizzle();
    return (drizzleDb ??= drizzle({ client: sqlite, schema: tables }));
  };
  let closed = false;
  let insertStatement: Statement | undefined;
  const credentials = new RequestCredentials(sqlite);
  const rollups = new RollupBatch(sqlite);
  const filterValues = new FilterValues(sqlite);

  /** Runs a store operation, turning SQLite failures into StoreError with what we were doing. */
  const guarded = <T>(what: string, fn: () => T): T => {
    if (closed) throw new StoreError(`store is closed (${what})`, "closed");
    try {
      return fn();
    } catch (err) {
      throw toStoreError(err, `${what} in ${path}`, busyTimeoutMs);
    }
  };

  const whereOf = (f: EventFilter = {}): SQL | undefined => {
    const { orm: { and, eq, gte }, events } = lazyDrizzle();
    const parts: Array<SQL | undefined> = [
      f.type !== undefined ? eq(events.eventType, f.type) : undefined,
      f.provider !== undefined ? eq(events.provider, f.provider) : undefined,
      f.model !== undefined ? eq(events.model, f.model) : undefined,
      f.process !== undefined ? eq(events.processName, f.process) : undefined,
      f.requestId !== undefined ? eq(events.requestId, f.requestId) : undefined,
      f.connId !== undefined ? eq(events.connId, f.connId) : undefined,
      f.sinceTsMs !== undefined ? gte(events.tsMs, f.sinceTsMs) : undefined,
    ];
    const list = parts.filter((p): p is SQL => p !== undefined);
    return list.length ? and(...list) : undefined;
  };

  return {
    /** The drizzle handle, for read queries that live with their feature (analyze, web); built on first use. */
    get db(): BunSQLiteDatabase<typeof schema> {
      return dbOf();
    },

    /** Stores the events in one transaction. Throws StoreError (disk full, locked...); then nothing was stored. */
    insertEvents(batch: readonly StorableEvent[]): InsertResult {
      const rows: NewEventRow[] = [];
      let invalid = 0;
      for (const event of batch) {
        const row = toEventRow(event);
        if (row) rows.push(row);
        else invalid++;
      }
      if (rows.length === 0) return { inserted: 0, duplicates: 0, invalid };
      return guarded(`storing ${rows.length} events`, () => {
        insertStatement ??= sqlite.prepare(INSERT_SQL);
        const stmt = insertStatement;
        let inserted = 0;
        try {
          sqlite.transaction(() => {
            for (const row of rows) {
              // In order, so a response finds a request stored earlier in the same batch.
              if (row.eventType === "ai.response") {
                const facts = row.requestId != null ? credentials.forResponse(row.requestId) : undefined;
                if (facts) Object.assign(row, facts);
                row.callModel = facts?.callModel ?? row.model ?? null;
              }
              const { changes, lastInsertRowid } = stmt.run(...EVENT_COLUMNS.map((c) => row[c.key] ?? null));
              inserted += changes;
              if (changes) {
                rollups.add(row, Number(lastInsertRowid));
                filterValues.add(row);
              }
              if (changes && row.eventType === "ai.request" && row.requestId != null) {
                credentials.stored(row.requestId, {
                  keyPrefix: row.keyPrefix ?? null,
                  keyHash: row.keyHash ?? null,
                  authType: row.authType ?? null,
                  callModel: row.callModel ?? null,
                });
              }
            }
            rollups.write();
          })();
        } catch (err) {
          rollups.clear();
          credentials.rollback();
          filterValues.rollback();
          throw err;
        }
        credentials.commit();
        filterValues.commit();
        return { inserted, duplicates: rows.length - inserted, invalid };
      });
    },

    count(filter?: EventFilter): number {
      const { orm: { count: countRows }, events } = lazyDrizzle();
      return guarded("counting events", () => dbOf().select({ n: countRows() }).from(events).where(whereOf(filter)).get()?.n ?? 0);
    },

    /** Newest first (ts_ms, then event_id, descending). */
    list(opts: ListOptions = {}): StoredEventRecord[] {
      const { orm: { and, desc, eq, lt, or }, events, recordColumns } = lazyDrizzle();
      const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? 100)), MAX_LIST);
      const before =
        opts.beforeTsMs === undefined
          ? undefined
          : opts.beforeEventId === undefined
            ? lt(events.tsMs, opts.beforeTsMs)
            : or(lt(events.tsMs, opts.beforeTsMs), and(eq(events.tsMs, opts.beforeTsMs), lt(events.eventId, opts.beforeEventId)));
      return guarded("listing events", () =>
        dbOf()
          .select(recordColumns)
          .from(events)
          .where(and(whereOf(opts), before))
          .orderBy(desc(events.tsMs), desc(events.eventId))
          .limit(limit)
          .all()
          .map(toRecord),
      );
    },

    get(eventId: string): StoredEventRecord | undefined {
      return guarded("reading an event", () => {
        const { orm: { eq }, events, recordColumns } = lazyDrizzle();
        const row = dbOf().select(recordColumns).from(events).where(eq(events.eventId, eventId)).get();
        return row ? toRecord(row) : undefined;
      });
    },

    /** The events of one AI call (request, response, tool calls), oldest first. */
    byRequestId(requestId: string): StoredEventRecord[] {
      const { orm: { eq }, events, recordColumns } = lazyDrizzle();
      return guarded("reading events by request id", () =>
        dbOf().select(recordColumns).from(events).where(eq(events.requestId, requestId)).orderBy(events.tsMs, events.eventId).all().map(toRecord),
      );
    },

    /** Bytes per page: 8 KiB for a database this store created, 4 KiB for one made before (see `oisp db vacuum`). */
    pageSize(): number {
      return guarded("reading the page size", () => (sqlite.query("PRAGMA page_size").get() as { page_size: number }).page_size);
    },

    /**
     * Gives back what SQLite caches (pages, statements' scratch) and the credentials of recent requests while
     * idle; both refill on use (a response to a forgotten request reads its request's row).
     */
    releaseMemory(): void {
      credentials.forget();
      if (!closed) guarded("releasing cache memory", () => sqlite.run("PRAGMA shrink_memory"));
    },

    close(): void {
      if (closed) return;
      closed = true;
      try {
        insertStatement?.finalize();
        credentials.close();
        rollups.close();
        filterValues.close();
        sqlite.close();
      } catch (err) {
        throw toStoreError(err, `closing ${path}`, busyTimeoutMs);
      }
    },
  };
}

/** No page written yet: the file was just created (or is empty), so its page size can still be chosen. */
function isEmptyDatabase(sqlite: Database): boolean {
  return (sqlite.query("PRAGMA page_count").get() as { page_count: number }).page_count === 0;
}

function toRecord(row: Omit<EventRow, CredentialColumn>): StoredEventRecord {
  const { json, ...columns } = row;
  return { ...columns, event: JSON.parse(json) as Record<string, unknown> };
}
