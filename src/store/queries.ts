// Read-only aggregate queries for the dashboard. The web server opens its own read-only connection
// (WAL lets it read while the sensor writes) so nothing it does can ever modify the store.
// The SQL and the folds of its rows are pure functions in query-sql.ts; this runs them and chains reads.
import { Database, type SQLQueryBindings } from "bun:sqlite";
import {
  answerKey,
  clampLimit,
  confidenceOf,
  confidenceSql,
  eqFilters,
  exportChunkSql,
  exportNext,
  filterWhere,
  foldAnswers,
  foldRequests,
  groupedSql,
  MAX_GROUPS,
  MAX_PAGE,
  bucketSpan,
  filterBucketsSql,
  olderThan,
  relatedSql,
  requestsSql,
  rollupSince,
  ROW_COLUMNS,
  spanWhere,
  textFloorSql,
  timelinePage,
  timelineSql,
  usageSql,
  type AnswersGrain,
  type RequestCount,
  type Span,
  type Where,
} from "./query-sql.ts";
import { bucketOf, DAY_MS, HOUR_MS } from "./buckets.ts";

export { CONFIDENCE_ROWS, filterWhere, rollupSince, type EqColumn } from "./query-sql.ts";

export interface WebFilter {
  provider?: string;
  model?: string;
  process?: string;
  type?: string;
  /** ok: success = 1, error: success = 0. */
  status?: "ok" | "error";
  sinceMs?: number;
  untilMs?: number;
  /** Free text, matched in the stored JSON of full-capture events only. */
  text?: string;
}

/** Keyset position: (ts_ms, event_id) of the last row shown. */
export interface Cursor {
  tsMs: number;
  eventId: string;
}

export interface TimelineRow {
  rowid: number;
  event_id: string;
  ts: string;
  ts_ms: number;
  event_type: string;
  provider: string | null;
  model: string | null;
  pid: number | null;
  process_name: string | null;
  request_id: string | null;
  success: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cost_usd: number | null;
  completeness: string | null;
  latency_ms: number | null;
  status_code: number | null;
  /** What a non-AI event is about: a process.exec's command line, a file.write's path and size. */
  detail?: string | null;
  /** What the row is about, from the event's data (src/view/describe.ts words it): the tool's name... */
  tool_name: string | null;
  /** ...a network event's host (domain, else SNI, else IP) and port... */
  net_host: string | null;
  net_port: number | null;
  /** ...a file event's path... */
  file_path: string | null;
  /** ...a process.exec's argv (JSON array text) and executable, and the process's parent name. */
  exec_args: string | null;
  exec_exe: string | null;
  parent_name: string | null;
  /** Tool calls an ai.response asked for. */
  tool_calls: number | null;
}

export interface EventRecord extends TimelineRow {
  conn_id: string | null;
  json: string;
}

export interface TimelinePage {
  rows: TimelineRow[];
  /** Cursor for the next (older) page, when there is one. */
  next?: Cursor;
  /** A free-text search reads a bounded window of events per page: it got back to this time. */
  searchedToMs?: number;
}

export interface GroupTotals {
  events: number;
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  last_ms: number;
}

export interface ProviderUsage extends GroupTotals {
  provider: string;
}
export interface ModelUsage extends GroupTotals {
  provider: string | null;
  /** The model the calls asked for (a response is counted under its request's model). */
  model: string;
  /** Other models that answered those calls (a dated snapshot answering an alias), most frequent first, all time. */
  answered_by: string[];
}
export interface AppUsage extends GroupTotals {
  process_name: string;
  pids: number;
}
export interface AccountUsage {
  provider: string | null;
  key_prefix: string | null;
  key_hash: string | null;
  auth_type: string | null;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  apps: string | null;
  last_ms: number;
}

export interface ProcessProviderRow {
  pid: number;
  process_name: string | null;
  provider: string | null;
  events: number;
  requests: number;
  cost_usd: number;
  last_ms: number;
  ppid: number | null;
  exe: string | null;
  /** process.parent.name when the capture knew it. */
  parent_name: string | null;
}

export type UsageDimension = "provider" | "model";
export interface UsageBucket {
  bucket_ms: number;
  series: string;
  requests: number;
  tokens: number;
  cost_usd: number;
}

/**
 * Filter for the rollup-backed lists (inventory, processes): equality on provider, model, process and event
 * type, and a time range at the rollups' grain (whole hours). A bare number is a `since` (older callers).
 */
export type RollupFilter = number | undefined | Pick<WebFilter, "provider" | "model" | "process" | "type" | "sinceMs" | "untilMs">;

/** The terminal's main-screen panes for a time window: who is called, by what, and how much content was seen. */
export interface WindowSummary {
  /** ai.request events per provider, most first. */
  providers: Array<{ provider: string; requests: number }>;
  /** ai.request events per process name, most first. */
  apps: Array<{ process_name: string; requests: number }>;
  /**
   * ai.request + ai.response events by capture completeness (partial counts as redacted): the window's
   * newest CONFIDENCE_ROWS of them (`sampled` when the window holds more).
   */
  confidence: { full: number; metadata: number; redacted: number; total: number; sampled?: boolean };
}

export type DistinctColumn = "provider" | "model" | "process_name" | "event_type";

/** Event types the process tree shows under their process (OISP v0.1 process and file events). */
export const PROCESS_ACTIVITY_TYPES = ["process.exec", "file.write"] as const;
const MAX_DISTINCT = 300;
/** A free-text page reads at most this many events (newest first), so a search without matches stays fast. */
export const TEXT_SCAN_ROWS = 100_000;
/**
 * Rollup buckets (days, hours) read per query while looking for a filter's spans: few at first (a common
 * value's first page needs its newest day or two, and each bucket sums all its rows), more on each next query.
 */
const BUCKETS_FIRST_PAGE = 4;
const BUCKETS_PAGE = 256;
const ALL_TIME: Span = [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
export type WebQueries = ReturnType<typeof openWebQueries>;

/** Opens `path` read-only. Throws (with the path) when the file cannot be opened. */
export function openWebQueries(path: string, opts: { busyTimeoutMs?: number } = {}) {
  const db = new Database(path, { readonly: true });
  db.run(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 2000))}`);

  const all = <T>(sql: string, params: SQLQueryBindings[]): T[] => db.query<T, SQLQueryBindings[]>(sql).all(...params);
  const one = <T>(sql: string, params: SQLQueryBindings[]): T | null => db.query<T, SQLQueryBindings[]>(sql).get(...params);
  const run = <T>(q: Where): T[] => all<T>(q.sql, q.params);

  const hasTable = (name: string): boolean =>
    one<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?", [name])?.n === 1;
  // A database the sensor has not migrated yet (read-only here) may lack a table; once there, it stays.
  let hasAnswers = false;
  let hasValues = false;
  const answersTable = () => (hasAnswers ||= hasTable("model_answers"));
  const valuesTable = () => (hasValues ||= hasTable("event_values"));

  let hasFirstMs = false;
  const firstMsColumn = () =>
    (hasFirstMs ||= one<{ n: number }>("SELECT count(*) AS n FROM pragma_table_info('event_rollup_hour') WHERE name = 'first_ms'", [])?.n === 1);
  const answersGrain = (): AnswersGrain => (!answersTable() ? "none" : valuesTable() ? "hour" : "pair");

  /** A rollup's buckets matching a filter's equality columns within `bounds`, in order, read a page at a time. */
  function* matchingBuckets(table: "event_rollup_day" | "event_rollup_hour", f: WebFilter, bounds: Span, order: "asc" | "desc") {
    const size = table === "event_rollup_day" ? DAY_MS : HOUR_MS;
    let from = bucketOf(bounds[0], size);
    let to = bucketOf(bounds[1] - 1, size);
    for (let page = BUCKETS_FIRST_PAGE; ; page = Math.min(page * 8, BUCKETS_PAGE)) {
      const rows = run<{ bucket_ms: number; n: number; last_ms: number; first_ms: number | null }>(
        filterBucketsSql(table, f, from, to, order, page, answersGrain(), firstMsColumn()),
      );
      yield* rows;
      const last = rows[rows.length - 1];
      if (rows.length < page || !last) return;
      if (order === "desc") to = last.bucket_ms - 1;
      else from = last.bucket_ms + 1;
    }
  }

  /**
   * Where a filter with equality columns finds its events: runs of the hours whose rollup rows match it
   * (contiguous hours merged; the days first, from the day rollup, then their hours), within `bounds`, newest
   * or oldest first. The events table has no index on those columns (migration 0005): each span is then read
   * through the ts_ms index, so a rare value costs its own hours, not a walk through everything else. A run
   * spans its oldest to its newest matching event (the rollup's first_ms and last_ms), and is cut once it holds
   * `wanted()` events, so a common value's first page reads one short span.
   */
  function* filterSpans(f: WebFilter, bounds: Span, order: "asc" | "desc", wanted: () => number = () => Infinity): Generator<Span> {
    if (bounds[0] >= bounds[1]) return;
    let current: { from: number; to: number; bottom: number; top: number; n: number } | undefined;
    const done = (c: NonNullable<typeof current>): Span => [Math.max(c.from, c.bottom, bounds[0]), Math.min(c.to, c.top, bounds[1])];
    for (const day of matchingBuckets("event_rollup_day", f, bounds, order)) {
      const [dayFrom, dayTo] = bucketSpan(day.bucket_ms, DAY_MS);
      const inDay: Span = [Math.max(dayFrom, bounds[0]), Math.min(dayTo, bounds[1])];
      if (inDay[0] >= inDay[1]) continue;
      for (const hour of matchingBuckets("event_rollup_hour", f, inDay, order)) {
        const [from, to] = bucketSpan(hour.bucket_ms, HOUR_MS);
        // Nothing of the filter's in this hour is newer than its newest, or older than its oldest (when known).
        const top = hour.last_ms + 1;
        const bottom = hour.first_ms ?? from;
        if (current && order === "desc" && to === current.from) {
          current.from = from;
          current.bottom = bottom;
        } else if (current && order === "asc" && from === current.to) {
          current.to = to;
          current.top = top;
        } else {
          if (current) yield done(current);
          current = { from, to, bottom, top, n: 0 };
        }
        current.n += hour.n;
        if (current.n >= wanted()) {
          yield done(current);
          current = undefined;
        }
      }
    }
    if (current) yield done(current);
  }

  /** (provider, requested model) → the other models that answered it (model_answers, migration 0003). */
  const answeredBy = (): Map<string, string[]> => {
    if (!answersTable()) return new Map();
    return foldAnswers(
      all<{ provider: string; model: string; response_model: string }>(
        // One row per hour since migration 0005 (one per pair before): summed over all time either way.
        "SELECT provider, model, response_model FROM model_answers GROUP BY provider, model, response_model ORDER BY sum(responses) DESC, response_model LIMIT ?",
        [MAX_GROUPS * 4],
      ),
    );
  };

  /** Highest rowid: the live view's "seen up to here" mark. */
  const lastRowid = (): number => one<{ m: number | null }>("SELECT max(rowid) AS m FROM events", [])?.m ?? 0;

  return {
    /** Newest first, keyset-paged by (ts_ms, event_id) so deep pages cost the same as the first. */
    timeline(filter: WebFilter, opts: { before?: Cursor; limit?: number; textScanRows?: number } = {}): TimelinePage {
      const limit = clampLimit(opts.limit, 50, MAX_PAGE);
      const extra: Where[] = opts.before ? [olderThan(opts.before)] : [];
      // LIKE over stored JSON cannot use an index: bound the scan to a window of the time index. The
      // window's floor is found in the index alone (no table reads), and the next page starts below it.
      let floor: number | undefined;
      if (filter.text) {
        const q = textFloorSql(opts.before, opts.textScanRows ?? TEXT_SCAN_ROWS);
        floor = one<{ ts_ms: number }>(q.sql, q.params)?.ts_ms ?? undefined;
        if (floor !== undefined) extra.push({ sql: "ts_ms >= ?", params: [floor] });
      }
      if (!eqFilters(filter).length) return timelinePage(run<TimelineRow>(timelineSql(filterWhere(filter, extra), limit)), limit, floor);
      const bounds: Span = [
        Math.max(filter.sinceMs ?? ALL_TIME[0], floor ?? ALL_TIME[0]),
        Math.min(filter.untilMs ?? ALL_TIME[1], opts.before ? opts.before.tsMs + 1 : ALL_TIME[1]),
      ];
      // A span is cut once the rollups count enough events for the page, but a filter they do not see (free
      // text, a model answered by another) may keep few of them: ask for twice as many after each short span.
      const rows: TimelineRow[] = [];
      let ahead = 1;
      for (const span of filterSpans(filter, bounds, "desc", () => (limit + 1 - rows.length) * ahead)) {
        rows.push(...run<TimelineRow>(timelineSql(filterWhere(filter, [...extra, spanWhere(span)]), limit - rows.length)));
        if (rows.length > limit) break;
        ahead *= 2;
      }
      return timelinePage(rows, limit, floor);
    },

    /**
     * The newest process.exec and file.write events (at most `perType` of each) matching a list filter's
     * time range and process: what the process tree lists under each process.
     */
    processActivity(filter: RollupFilter, perType = 200): TimelineRow[] {
      const f = typeof filter === "object" ? filter : { sinceMs: filter };
      const out: TimelineRow[] = [];
      for (const type of PROCESS_ACTIVITY_TYPES) {
        out.push(...this.timeline({ type, process: f.process, sinceMs: f.sinceMs, untilMs: f.untilMs }, { limit: perType }).rows);
      }
      return out.sort((a, b) => b.ts_ms - a.ts_ms);
    },

    /** Events stored after `afterRowid` (arrival order, not ts order): what the live view prepends. */
    arrivedAfter(filter: WebFilter, afterRowid: number, limit = 200): TimelineRow[] {
      const where = filterWhere(filter, [{ sql: "rowid > ?", params: [afterRowid] }]);
      return all<TimelineRow>(`SELECT ${ROW_COLUMNS} FROM events ${where.sql} ORDER BY rowid DESC LIMIT ?`, [
        ...where.params,
        clampLimit(limit, 200, MAX_PAGE),
      ]);
    },

    lastRowid,

    /**
     * The terminal's summary panes for events since `sinceMs` (undefined: all time). Request counts are exact
     * (see requestsSql); completeness is the share among the window's newest CONFIDENCE_ROWS AI events.
     */
    windowSummary(sinceMs?: number): WindowSummary {
      const q = requestsSql(sinceMs);
      const { providers, apps } = foldRequests([...run<RequestCount>(q.rollup), ...(q.partial ? run<RequestCount>(q.partial) : [])]);
      const confidence = confidenceOf(run<{ completeness: string | null; n: number }>(confidenceSql(sinceMs)));
      return { providers, apps, confidence };
    },

    /** Changes whenever another connection commits (SQLite PRAGMA data_version): cheap change detection. */
    dataVersion(): number {
      return one<{ data_version: number }>("PRAGMA data_version", [])?.data_version ?? 0;
    },

    event(eventId: string): EventRecord | null {
      return one<EventRecord>(`SELECT ${ROW_COLUMNS}, conn_id, json FROM events WHERE event_id = ?`, [eventId]);
    },

    /** Events sharing a request id, plus the ids named in related_events (both directions where indexed). */
    related(requestId: string | null, eventIds: string[], limit = 100): TimelineRow[] {
      const q = relatedSql(requestId, eventIds, limit);
      return q ? run<TimelineRow>(q) : [];
    },

    /** The values a filter list offers: every value seen in the column, in order (event_values, migration 0005). */
    distinct(column: DistinctColumn): string[] {
      if (valuesTable()) {
        return all<{ v: string }>("SELECT value AS v FROM event_values WHERE `column` = ? ORDER BY value LIMIT ?", [column, MAX_DISTINCT]).map((r) => r.v);
      }
      // Not migrated to 0005 yet: its indexes are still there, skip through one (one seek per value).
      const rows = all<{ v: string }>(
        `WITH RECURSIVE d(v, n) AS (
           SELECT (SELECT min(${column}) FROM events), 0
           UNION ALL
           SELECT (SELECT min(${column}) FROM events WHERE ${column} > d.v), n + 1 FROM d WHERE d.v IS NOT NULL AND n < ?
         ) SELECT v FROM d WHERE v IS NOT NULL`,
        [MAX_DISTINCT],
      );
      return rows.map((r) => r.v);
    },

    // The aggregates below read the rollups (totals per hour and per UTC day, kept by the store as it
    // inserts), not the events: a million events are a few thousand day rows. A `since` is rounded down to
    // its hour: whole days come from the day rollup, the hours before the first whole day from the hour one.

    providers(filter?: RollupFilter): ProviderUsage[] {
      return grouped<ProviderUsage>("provider", "provider", "provider", filter);
    },

    models(filter?: RollupFilter): ModelUsage[] {
      const rows = grouped<Omit<ModelUsage, "answered_by">>("nullif(provider, '') AS provider, model", "provider, model", "model", filter);
      const answers = answeredBy();
      return rows.map((r) => ({ ...r, answered_by: answers.get(answerKey(r.provider, r.model)) ?? [] }));
    },

    apps(filter?: RollupFilter): AppUsage[] {
      return grouped<AppUsage>("process_name", "process_name", "process_name", filter, ", count(DISTINCT nullif(pid, -1)) AS pids");
    },

    /** Credentials seen on requests (prefix + fingerprint, never the key), with the usage of their responses. */
    accounts(filter?: RollupFilter): AccountUsage[] {
      // An account's requests and its responses' usage sit on different event types: a type filter would
      // zero one side, so it is not applied here (provider, model, process and time are).
      const src = rollupSince(typeof filter === "object" ? { ...filter, type: undefined } : filter);
      return all<AccountUsage>(
        `SELECT nullif(provider, '') AS provider, nullif(key_prefix, '') AS key_prefix, nullif(key_hash, '') AS key_hash,
           nullif(max(auth_type), '') AS auth_type,
           sum(CASE WHEN event_type = 'ai.request' THEN events ELSE 0 END) AS requests,
           sum(CASE WHEN event_type = 'ai.response' THEN input_tokens ELSE 0 END) AS input_tokens,
           sum(CASE WHEN event_type = 'ai.response' THEN output_tokens ELSE 0 END) AS output_tokens,
           sum(CASE WHEN event_type = 'ai.response' THEN cost_usd ELSE 0 END) AS cost_usd,
           group_concat(DISTINCT CASE WHEN event_type = 'ai.request' THEN nullif(process_name, '') END) AS apps,
           max(CASE WHEN event_type = 'ai.request' THEN last_ms END) AS last_ms
         FROM (${src.sql}) WHERE event_type IN ('ai.request', 'ai.response')
         GROUP BY provider, key_prefix, key_hash HAVING requests > 0 ORDER BY requests DESC LIMIT ?`,
        [...src.params, MAX_GROUPS],
      );
    },

    /** One row per (pid, process, provider); ppid and exe come from the newest event of the group. */
    processes(filter?: RollupFilter): ProcessProviderRow[] {
      const src = rollupSince(filter);
      const groups = all<Omit<ProcessProviderRow, "ppid" | "exe" | "parent_name"> & { sample: number }>(
        `SELECT pid, nullif(process_name, '') AS process_name, nullif(provider, '') AS provider, sum(events) AS events,
           sum(CASE WHEN event_type = 'ai.request' THEN events ELSE 0 END) AS requests,
           sum(cost_usd) AS cost_usd, max(last_ms) AS last_ms, max(last_rowid) AS sample
         FROM (${src.sql}) WHERE pid <> -1
         GROUP BY pid, process_name, provider ORDER BY last_ms DESC LIMIT ?`,
        [...src.params, MAX_GROUPS],
      );
      const detail = db.query<{ ppid: unknown; exe: unknown; parent_name: unknown }, [number]>(
        `SELECT json_extract(json, '$.process.ppid') AS ppid, json_extract(json, '$.process.exe') AS exe,
           json_extract(json, '$.process.parent.name') AS parent_name FROM events WHERE rowid = ?`,
      );
      return groups.map(({ sample, ...g }) => {
        const d = detail.get(sample);
        return {
          ...g,
          ppid: typeof d?.ppid === "number" ? d.ppid : null,
          exe: typeof d?.exe === "string" ? d.exe : null,
          parent_name: typeof d?.parent_name === "string" ? d.parent_name : null,
        };
      });
    },

    /**
     * Requests, tokens and cost per time bucket and series. Buckets are aligned to local time
     * (offsetMs = the server's UTC offset) so days start at local midnight. Buckets are whole hours or
     * more (the rollup's grain): in a half-hour time zone, days start on the hour.
     */
    usage(dimension: UsageDimension, bucketMs: number, sinceMs: number, offsetMs = 0): UsageBucket[] {
      return run<UsageBucket>(usageSql(dimension, bucketMs, sinceMs, offsetMs));
    },

    /**
     * Streams every event matching the filter, oldest first, in keyset chunks of `chunk` rows: each chunk
     * is its own short read, so a slow download never pins a read transaction (and the WAL) open.
     * Events stored after the export started are not included.
     */
    *exportChunks(filter: WebFilter, chunk = 500): Generator<EventRecord[]> {
      const upTo = lastRowid();
      const bounds: Span = [filter.sinceMs ?? ALL_TIME[0], filter.untilMs ?? ALL_TIME[1]];
      const spans: Iterable<Span | undefined> = eqFilters(filter).length ? filterSpans(filter, bounds, "asc") : [undefined];
      for (const span of spans) {
        let after: Cursor | undefined;
        do {
          const rows = run<EventRecord>(exportChunkSql(filter, upTo, after, chunk, span));
          if (rows.length) yield rows;
          after = exportNext(rows, chunk);
        } while (after);
      }
    },

    close(): void {
      db.close();
    },
  };

  function grouped<T>(select: string, groupBy: string, keyColumn: string, filter: RollupFilter, extraColumns = ""): T[] {
    return run<T>(groupedSql(select, groupBy, keyColumn, filter, extraColumns));
  }
}

