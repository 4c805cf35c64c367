// Read-only aggregate queries for the dashboard. The web server opens its own read-only connection
// (WAL lets it read while the sensor writes) so nothing it does can ever modify the store.
// Every list is bounded by a LIMIT; every filter value is a bound parameter, never spliced into SQL.
import { Database, type SQLQueryBindings } from "bun:sqlite";

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

const MAX_PAGE = 500;
/** Event types the process tree shows under their process (OISP v0.1 process and file events). */
export const PROCESS_ACTIVITY_TYPES = ["process.exec", "file.write"] as const;
/** The confidence pane reads at most this many of the window's newest AI events (about 50 ms on 2 shared cores). */
export const CONFIDENCE_ROWS = 20_000;
const MAX_DISTINCT = 300;
const MAX_GROUPS = 500;
const MAX_TEXT = 200;
/** A free-text page reads at most this many events (newest first), so a search without matches stays fast. */
export const TEXT_SCAN_ROWS = 100_000;
/** Below this many matches, reading a filter's own index and sorting beats walking the time index. */
const SELECTIVE_ROWS = 20_000;
/** Counting rows in a time range (index only) stops here: enough to compare with a filter's rows. */
const RANGE_PROBE_ROWS = 100_000;

const ROW_COLUMNS = `rowid, event_id, ts, ts_ms, event_type, provider, model, pid, process_name, request_id, success,
  input_tokens, output_tokens, cost_usd, completeness,
  json_extract(json, '$.data.latency_ms') AS latency_ms, json_extract(json, '$.data.status_code') AS status_code,
  CASE event_type
    WHEN 'process.exec' THEN substr(json_extract(json, '$.process.cmdline'), 1, ${MAX_TEXT})
    WHEN 'file.write' THEN substr(json_extract(json, '$.data.path'), 1, ${MAX_TEXT}) || ' (' || json_extract(json, '$.data.bytes_written') || ' B)'
  END AS detail,
  json_extract(json, '$.data.tool.name') AS tool_name,
  coalesce(json_extract(json, '$.data.dest.domain'), json_extract(json, '$.data.tls.sni'), json_extract(json, '$.data.dest.ip')) AS net_host,
  json_extract(json, '$.data.dest.port') AS net_port,
  coalesce(json_extract(json, '$.data.path'), json_extract(json, '$.data.file.path')) AS file_path,
  CASE WHEN json_type(json, '$.data.args') = 'array' THEN json_extract(json, '$.data.args') END AS exec_args,
  json_extract(json, '$.data.exe') AS exec_exe, json_extract(json, '$.process.parent.name') AS parent_name,
  json_extract(json, '$.data.tool_calls_count') AS tool_calls`;

interface Where {
  sql: string;
  params: SQLQueryBindings[];
}

export type EqColumn = "provider" | "model" | "process_name" | "event_type";

/**
 * Which equality filter (if any) should drive the timeline query, from row counts alone (no database):
 * `counts` holds, per filter column, its rows counted up to probeCap(rangeRows) + 1; `rangeRows` the rows
 * in the time range (0 when untimed). A rare value is best read through its own index and sorted; a
 * common one by walking ts_ms newest-first until the page is full.
 */
export function pickDrivingColumn(counts: ReadonlyArray<{ column: EqColumn; n: number }>, timed: boolean, rangeRows: number): EqColumn | undefined {
  let best: { column: EqColumn; n: number } | undefined;
  for (const c of counts) if (!best || c.n < best.n) best = c;
  // With a time range, walking it costs at most the rows inside it: a filter value with fewer rows than
  // that is the cheaper bound even when it is not rare overall (e.g. one process over the last week).
  return best && (best.n <= SELECTIVE_ROWS || (timed && best.n < rangeRows)) ? best.column : undefined;
}

/** How far to count a filter's rows: enough to compare with SELECTIVE_ROWS and with the range's rows. */
export function probeCap(rangeRows: number): number {
  return Math.max(SELECTIVE_ROWS, Math.min(rangeRows, RANGE_PROBE_ROWS));
}

/** The filter's equality conditions as (column, value), in one order for the events table and the rollups. */
function eqFilters(f: Pick<WebFilter, "provider" | "model" | "process" | "type">): Array<[EqColumn, string]> {
  const out: Array<[EqColumn, string]> = [];
  if (f.provider) out.push(["provider", f.provider]);
  if (f.model) out.push(["model", f.model]);
  if (f.process) out.push(["process_name", f.process]);
  if (f.type) out.push(["event_type", f.type]);
  return out;
}

/**
 * WHERE clause for a filter; `extra` conditions are ANDed in. `indexable` limits which equality columns
 * the planner may use an index for (the others are written `+column`, which SQLite never indexes).
 */
export function filterWhere(f: WebFilter, extra: Where[] = [], indexable?: ReadonlySet<EqColumn>): Where {
  const parts: string[] = [];
  const params: SQLQueryBindings[] = [];
  for (const [column, value] of eqFilters(f)) {
    parts.push(`${indexable && !indexable.has(column) ? "+" : ""}${column} = ?`);
    params.push(value);
  }
  if (f.status === "ok") parts.push("success = 1");
  if (f.status === "error") parts.push("success = 0");
  if (f.sinceMs !== undefined) {
    parts.push("ts_ms >= ?");
    params.push(f.sinceMs);
  }
  if (f.untilMs !== undefined) {
    parts.push("ts_ms < ?");
    params.push(f.untilMs);
  }
  if (f.text) {
    // Search the text as it is stored: JSON-escaped (quotes, backslashes, newlines), LIKE-escaped.
    // Only full-capture events hold content worth searching; redacted ones hold hashes.
    const jsonForm = JSON.stringify(f.text.slice(0, MAX_TEXT)).slice(1, -1);
    parts.push(`completeness = 'full' AND json LIKE ? ESCAPE '\\'`);
    params.push(`%${jsonForm.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`);
  }
  for (const e of extra) {
    parts.push(e.sql);
    params.push(...e.params);
  }
  return { sql: parts.length ? `WHERE ${parts.map((p) => `(${p})`).join(" AND ")}` : "", params };
}

function clampLimit(limit: number | undefined, fallback: number, max: number): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback;
  return Math.min(Math.max(1, Math.floor(limit)), max);
}

export type WebQueries = ReturnType<typeof openWebQueries>;

/** Opens `path` read-only. Throws (with the path) when the file cannot be opened. */
export function openWebQueries(path: string, opts: { busyTimeoutMs?: number } = {}) {
  const db = new Database(path, { readonly: true });
  db.run(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 2000))}`);

  const all = <T>(sql: string, params: SQLQueryBindings[]): T[] => db.query<T, SQLQueryBindings[]>(sql).all(...params);
  const one = <T>(sql: string, params: SQLQueryBindings[]): T | null => db.query<T, SQLQueryBindings[]>(sql).get(...params);

  /**
   * Which equality filter (if any) should drive the timeline query (pickDrivingColumn decides; SQLite does
   * not know without statistics). Counting is capped, so this stays cheap.
   */
  const drivingIndex = (f: WebFilter): ReadonlySet<EqColumn> => {
    const eqs = eqFilters(f);
    if (!eqs.length) return new Set();
    const timed = f.sinceMs !== undefined || f.untilMs !== undefined;
    const rangeRows = timed
      ? (one<{ n: number }>(`SELECT count(*) AS n FROM (SELECT 1 FROM events WHERE ts_ms >= ? AND ts_ms < ? LIMIT ?)`, [
          f.sinceMs ?? 0,
          f.untilMs ?? Number.MAX_SAFE_INTEGER,
          RANGE_PROBE_ROWS,
        ])?.n ?? 0)
      : 0;
    const cap = probeCap(rangeRows);
    const counts = eqs.map(([column, value]) => ({
      column,
      n: one<{ n: number }>(`SELECT count(*) AS n FROM (SELECT 1 FROM events WHERE ${column} = ? LIMIT ?)`, [value, cap + 1])?.n ?? 0,
    }));
    const column = pickDrivingColumn(counts, timed, rangeRows);
    return new Set(column ? [column] : []);
  };

  /** (provider, requested model) → the other models that answered it (model_answers, migration 0003). */
  let hasAnswers: boolean | undefined;
  const answeredBy = (): Map<string, string[]> => {
    const out = new Map<string, string[]>();
    // A database the sensor has not migrated to 0003 yet (read-only here) has no such table.
    hasAnswers ??= one<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'model_answers'", [])?.n === 1;
    if (!hasAnswers) return out;
    const rows = all<{ provider: string; model: string; response_model: string }>(
      "SELECT provider, model, response_model FROM model_answers ORDER BY responses DESC, response_model LIMIT ?",
      [MAX_GROUPS * 4],
    );
    for (const r of rows) {
      const key = `${r.provider}\u0000${r.model}`;
      const list = out.get(key) ?? [];
      if (list.length < 8) list.push(r.response_model);
      out.set(key, list);
    }
    return out;
  };

  /**
   * Exact per-provider and per-app request counts since `sinceMs`: whole hours from the hour rollup, the
   * part of the first hour from the events themselves (at most an hour of them, through the ts_ms index).
   */
  const requestsBy = (sinceMs: number | undefined): { providers: Map<string, number>; apps: Map<string, number> } => {
    const providers = new Map<string, number>();
    const apps = new Map<string, number>();
    const add = (provider: string | null, app: string | null, n: number) => {
      if (provider) providers.set(provider, (providers.get(provider) ?? 0) + n);
      if (app) apps.set(app, (apps.get(app) ?? 0) + n);
    };
    // One pass over each source, grouped by both keys (the pairs are few), folded here.
    const firstHour = sinceMs === undefined ? 0 : Math.ceil(sinceMs / HOUR_MS) * HOUR_MS;
    const src = rollupSince({ sinceMs: firstHour, type: "ai.request" });
    for (const r of all<{ p: string; a: string; n: number }>(`SELECT provider AS p, process_name AS a, sum(events) AS n FROM (${src.sql}) GROUP BY p, a`, src.params)) {
      add(r.p, r.a, r.n);
    }
    if (sinceMs !== undefined && sinceMs < firstHour) {
      for (const r of all<{ p: string | null; a: string | null; n: number }>(
        `SELECT provider AS p, process_name AS a, count(*) AS n FROM events WHERE ts_ms >= ? AND ts_ms < ? AND +event_type = 'ai.request' GROUP BY p, a`,
        [sinceMs, firstHour],
      ))
        add(r.p, r.a, r.n);
    }
    return { providers, apps };
  };

  /** Most first, then by name: a stable order for the panes. */
  const ranked = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));

  /** Highest rowid: the live view's "seen up to here" mark. */
  const lastRowid = (): number => one<{ m: number | null }>("SELECT max(rowid) AS m FROM events", [])?.m ?? 0;

  return {
    /** Newest first, keyset-paged by (ts_ms, event_id) so deep pages cost the same as the first. */
    timeline(filter: WebFilter, opts: { before?: Cursor; limit?: number; textScanRows?: number } = {}): TimelinePage {
      const limit = clampLimit(opts.limit, 50, MAX_PAGE);
      // "ts_ms <= ?" first gives SQLite a plain range on the ts_ms index; the OR breaks ties within one ms.
      const extra: Where[] = opts.before
        ? [{ sql: "ts_ms <= ? AND (ts_ms < ? OR event_id < ?)", params: [opts.before.tsMs, opts.before.tsMs, opts.before.eventId] }]
        : [];
      // LIKE over stored JSON cannot use an index: bound the scan to a window of the time index. The
      // window's floor is found in the index alone (no table reads), and the next page starts below it.
      let floor: number | undefined;
      if (filter.text) {
        floor =
          one<{ ts_ms: number }>(`SELECT ts_ms FROM events WHERE ts_ms <= ? ORDER BY ts_ms DESC LIMIT 1 OFFSET ?`, [
            opts.before?.tsMs ?? Number.MAX_SAFE_INTEGER,
            Math.max(1, opts.textScanRows ?? TEXT_SCAN_ROWS),
          ])?.ts_ms ?? undefined;
        if (floor !== undefined) extra.push({ sql: "ts_ms >= ?", params: [floor] });
      }
      const where = filterWhere(filter, extra, drivingIndex(filter));
      const rows = all<TimelineRow>(`SELECT ${ROW_COLUMNS} FROM events ${where.sql} ORDER BY ts_ms DESC, event_id DESC LIMIT ?`, [
        ...where.params,
        limit + 1,
      ]);
      const more = rows.length > limit;
      if (more) rows.length = limit;
      const last = rows[rows.length - 1];
      if (more && last) return { rows, next: { tsMs: last.ts_ms, eventId: last.event_id } };
      // The window ran out before the page filled: older events remain unsearched. "0" sorts below every
      // ULID, so the next page is everything strictly older than the window's floor.
      if (floor !== undefined) return { rows, next: { tsMs: floor, eventId: "0" }, searchedToMs: floor };
      return { rows };
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
     * (see requestsBy); completeness is the share among the window's newest CONFIDENCE_ROWS AI events.
     */
    windowSummary(sinceMs?: number): WindowSummary {
      const counts = requestsBy(sinceMs);
      const providers = ranked(counts.providers).map(([provider, requests]) => ({ provider, requests }));
      const apps = ranked(counts.apps).map(([process_name, requests]) => ({ process_name, requests }));
      const c = { full: 0, metadata: 0, redacted: 0, total: 0, sampled: false };
      for (const r of all<{ completeness: string | null; n: number }>(
        `SELECT completeness, count(*) AS n FROM (SELECT completeness FROM events WHERE ts_ms >= ? AND +event_type IN ('ai.request', 'ai.response')
           ORDER BY ts_ms DESC LIMIT ?) GROUP BY completeness`,
        [sinceMs ?? 0, CONFIDENCE_ROWS],
      )) {
        c.total += r.n;
        if (r.completeness === "full") c.full += r.n;
        else if (r.completeness === "metadata_only") c.metadata += r.n;
        else if (r.completeness === "redacted" || r.completeness === "partial") c.redacted += r.n;
      }
      c.sampled = c.total >= CONFIDENCE_ROWS;
      return { providers, apps, confidence: c };
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
      const ids = eventIds.slice(0, 50);
      const conds: string[] = [];
      const params: SQLQueryBindings[] = [];
      if (requestId) {
        conds.push("request_id = ?");
        params.push(requestId);
      }
      if (ids.length) {
        conds.push(`event_id IN (${ids.map(() => "?").join(",")})`);
        params.push(...ids);
      }
      if (!conds.length) return [];
      return all<TimelineRow>(`SELECT ${ROW_COLUMNS} FROM events WHERE ${conds.join(" OR ")} ORDER BY ts_ms, event_id LIMIT ?`, [
        ...params,
        clampLimit(limit, 100, MAX_PAGE),
      ]);
    },

    /**
     * Distinct values of an indexed column by skipping through the index (one seek per value),
     * so the filter lists cost nothing on a million rows.
     */
    distinct(column: DistinctColumn): string[] {
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

    // The aggregates below read the rollups (totals per hour and per UTC day, kept by a trigger, migration
    // 0001), not the events: a million events are a few thousand day rows. A `since` is rounded down to
    // its hour: whole days come from the day rollup, the hours before the first whole day from the hour one.

    providers(filter?: RollupFilter): ProviderUsage[] {
      return grouped<ProviderUsage>("provider", "provider", "provider", filter);
    },

    models(filter?: RollupFilter): ModelUsage[] {
      const rows = grouped<Omit<ModelUsage, "answered_by">>("nullif(provider, '') AS provider, model", "provider, model", "model", filter);
      const answers = answeredBy();
      return rows.map((r) => ({ ...r, answered_by: answers.get(`${r.provider ?? ""}\u0000${r.model}`) ?? [] }));
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
      const column = dimension === "model" ? "model" : "provider";
      // Integers only: a float (even -0, which bun:sqlite binds as REAL) would turn the division into a
      // fractional one and every bucket into its own row.
      const offset = Math.trunc(offsetMs) || 0;
      const bucket = Math.max(HOUR_MS, Math.trunc(bucketMs));
      // UTC-aligned whole days can be summed from the day rollup; anything else needs the hours.
      const days = bucket % DAY_MS === 0 && offset % DAY_MS === 0;
      const table = days ? "event_rollup_day" : "event_rollup_hour";
      const since = days ? Math.floor(hourFloor(sinceMs) / DAY_MS) * DAY_MS : hourFloor(sinceMs);
      return all<UsageBucket>(
        `SELECT ((bucket_ms + ?) / ?) * ? - ? AS bucket_ms, ${column} AS series,
           sum(CASE WHEN event_type = 'ai.request' THEN events ELSE 0 END) AS requests,
           sum(input_tokens) + sum(output_tokens) AS tokens,
           sum(cost_usd) AS cost_usd
         FROM ${table} WHERE bucket_ms >= ? AND ${column} <> ''
         GROUP BY 1, series ORDER BY 1 LIMIT 20000`,
        [offset, bucket, bucket, offset, since],
      );
    },

    /**
     * Streams every event matching the filter, oldest first, in keyset chunks of `chunk` rows: each chunk
     * is its own short read, so a slow download never pins a read transaction (and the WAL) open.
     * Events stored after the export started are not included.
     */
    *exportChunks(filter: WebFilter, chunk = 500): Generator<EventRecord[]> {
      const upTo = lastRowid();
      const indexable = drivingIndex(filter);
      let after: Cursor | undefined;
      for (;;) {
        // "+rowid": a plain rowid range would make SQLite scan by rowid and sort everything by time.
        const extra: Where[] = [{ sql: "+rowid <= ?", params: [upTo] }];
        if (after) extra.push({ sql: "ts_ms >= ? AND (ts_ms > ? OR event_id > ?)", params: [after.tsMs, after.tsMs, after.eventId] });
        const where = filterWhere(filter, extra, indexable);
        const rows = all<EventRecord>(`SELECT ${ROW_COLUMNS}, conn_id, json FROM events ${where.sql} ORDER BY ts_ms, event_id LIMIT ?`, [
          ...where.params,
          chunk,
        ]);
        if (rows.length) yield rows;
        if (rows.length < chunk) return;
        const last = rows[rows.length - 1]!;
        after = { tsMs: last.ts_ms, eventId: last.event_id };
      }
    },

    close(): void {
      db.close();
    },
  };

  function grouped<T>(select: string, groupBy: string, keyColumn: string, filter: RollupFilter, extraColumns = ""): T[] {
    const src = rollupSince(filter);
    return all<T>(
      `SELECT ${select}, sum(events) AS events, sum(CASE WHEN event_type = 'ai.request' THEN events ELSE 0 END) AS requests,
         sum(errors) AS errors, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
         sum(cost_usd) AS cost_usd, max(last_ms) AS last_ms${extraColumns}
       FROM (${src.sql}) WHERE ${keyColumn} <> '' GROUP BY ${groupBy}
       ORDER BY requests DESC, events DESC LIMIT ?`,
      [...src.params, MAX_GROUPS],
    );
  }
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** The rollup's grain: a `since` inside an hour counts that whole hour. */
function hourFloor(ms: number | undefined): number {
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) return 0;
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

/** An hour boundary at or after `ms`: an `until` inside an hour keeps that whole hour. */
function hourCeil(ms: number): number {
  return Math.ceil(ms / HOUR_MS) * HOUR_MS;
}

/**
 * Rollup rows covering [hourFloor(since), until): whole days from the day rollup, the hours outside whole
 * days from the hour rollup, narrowed by the filter's equality columns (all in the rollups' key).
 */
export function rollupSince(filter: RollupFilter): Where {
  const f = typeof filter === "object" ? filter : { sinceMs: filter };
  const eq: string[] = [];
  const eqParams: SQLQueryBindings[] = [];
  for (const [column, value] of eqFilters(f)) {
    eq.push(` AND ${column} = ?`);
    eqParams.push(value);
  }
  const cond = eq.join("");
  const from = hourFloor(f.sinceMs);
  const until = f.untilMs !== undefined && Number.isFinite(f.untilMs) ? hourCeil(Math.max(0, f.untilMs)) : undefined;
  if (from === 0 && until === undefined) return { sql: `SELECT * FROM event_rollup_day WHERE 1${cond}`, params: eqParams };
  const end = until ?? Number.MAX_SAFE_INTEGER;
  // Whole days inside [from, end): [firstDay, lastDay). Hours before firstDay and from lastDay on come from the hour rollup.
  const firstDay = Math.ceil(from / DAY_MS) * DAY_MS;
  const lastDay = Math.max(firstDay, Math.floor(end / DAY_MS) * DAY_MS);
  return {
    sql:
      `SELECT * FROM event_rollup_day WHERE bucket_ms >= ? AND bucket_ms < ?${cond}` +
      ` UNION ALL SELECT * FROM event_rollup_hour WHERE bucket_ms >= ? AND bucket_ms < ?${cond}` +
      ` UNION ALL SELECT * FROM event_rollup_hour WHERE bucket_ms >= ? AND bucket_ms < ?${cond}`,
    params: [firstDay, lastDay, ...eqParams, from, Math.min(firstDay, end), ...eqParams, lastDay, end, ...eqParams],
  };
}
