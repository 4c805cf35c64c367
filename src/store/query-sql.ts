// The dashboard's and terminal's SQL, built without a database: each builder takes a filter (and the
// figures the caller already read) and returns SQL text with its bound parameters; the folds turn rows into
// the shapes the views show. openWebQueries (queries.ts) only runs these on its read-only connection.
// Every filter value is a bound parameter, never spliced into SQL; every list is bounded by a LIMIT.
import type { SQLQueryBindings } from "bun:sqlite";
import { DAY_MS, HOUR_MS } from "./buckets.ts";
import type { Cursor, EventRecord, RollupFilter, TimelinePage, TimelineRow, UsageDimension, WebFilter, WindowSummary } from "./queries.ts";

export const MAX_PAGE = 500;
/** The confidence pane reads at most this many of the window's newest AI events (about 50 ms on 2 shared cores). */
export const CONFIDENCE_ROWS = 20_000;
export const MAX_GROUPS = 500;

const MAX_TEXT = 200;

export const ROW_COLUMNS = `rowid, event_id, ts, ts_ms, event_type, provider, model, pid, process_name, request_id, success,
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

export interface Where {
  sql: string;
  params: SQLQueryBindings[];
}

export type EqColumn = "provider" | "model" | "process_name" | "event_type";

/** The filter's equality conditions as (column, value), in one order for the events table and the rollups. */
export function eqFilters(f: Pick<WebFilter, "provider" | "model" | "process" | "type">): Array<[EqColumn, string]> {
  const out: Array<[EqColumn, string]> = [];
  if (f.provider) out.push(["provider", f.provider]);
  if (f.model) out.push(["model", f.model]);
  if (f.process) out.push(["process_name", f.process]);
  if (f.type) out.push(["event_type", f.type]);
  return out;
}

/**
 * WHERE clause for a filter; `extra` conditions are ANDed in. The equality columns have no index since
 * migration 0005 (a filtered read walks ts_ms within the spans filterBucketsSql finds); `+column` keeps a
 * database not yet migrated on that plan too.
 */
export function filterWhere(f: WebFilter, extra: Where[] = []): Where {
  const parts: string[] = [];
  const params: SQLQueryBindings[] = [];
  for (const [column, value] of eqFilters(f)) {
    parts.push(`+${column} = ?`);
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

export function clampLimit(limit: number | undefined, fallback: number, max: number): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback;
  return Math.min(Math.max(1, Math.floor(limit)), max);
}

/** The rollup's grain: a `since` inside an hour counts that whole hour. */
export function hourFloor(ms: number | undefined): number {
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

/** Keyset condition for the page after `before` (newest first): "ts_ms <= ?" first gives SQLite a plain range on the ts_ms index; the OR breaks ties within one ms. */
export function olderThan(before: Cursor): Where {
  return { sql: "ts_ms <= ? AND (ts_ms < ? OR event_id < ?)", params: [before.tsMs, before.tsMs, before.eventId] };
}

/** The cursor's event id after a search window that ran out: "0" sorts below every ULID (timelinePage). */
const BELOW_FLOOR = "0";

/**
 * The ts_ms of the event `scanRows` below `before` (newest first): a free-text page searches no further
 * back than this. Index only (no table reads). Below a window's floor the count starts strictly under that
 * millisecond: counting its events again would find the same floor forever once more than `scanRows` share it.
 */
export function textFloorSql(before: Cursor | undefined, scanRows: number): Where {
  return {
    sql: `SELECT ts_ms FROM events WHERE ts_ms ${before?.eventId === BELOW_FLOOR ? "<" : "<="} ? ORDER BY ts_ms DESC LIMIT 1 OFFSET ?`,
    params: [before?.tsMs ?? Number.MAX_SAFE_INTEGER, Math.max(1, scanRows)],
  };
}

/** One timeline page, newest first: one row more than `limit`, which tells whether there is a next page. */
export function timelineSql(where: Where, limit: number): Where {
  return { sql: `SELECT ${ROW_COLUMNS} FROM events ${where.sql} ORDER BY ts_ms DESC, event_id DESC LIMIT ?`, params: [...where.params, limit + 1] };
}

/**
 * The page from timelineSql's rows (trimmed to `limit` in place) and the text search floor, if any: a full
 * page continues after its last row; a search window that ran out first continues below its floor ("0"
 * sorts below every ULID, so the next page is everything strictly older than the floor).
 */
export function timelinePage(rows: TimelineRow[], limit: number, floor: number | undefined): TimelinePage {
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  if (more && last) return { rows, next: { tsMs: last.ts_ms, eventId: last.event_id } };
  if (floor !== undefined) return { rows, next: { tsMs: floor, eventId: BELOW_FLOOR }, searchedToMs: floor };
  return { rows };
}

/** Events sharing a request id, or named by id (at most 50): undefined when there is neither. */
export function relatedSql(requestId: string | null, eventIds: string[], limit: number): Where | undefined {
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
  if (!conds.length) return undefined;
  return { sql: `SELECT ${ROW_COLUMNS} FROM events WHERE ${conds.join(" OR ")} ORDER BY ts_ms, event_id LIMIT ?`, params: [...params, clampLimit(limit, 100, MAX_PAGE)] };
}

/** One export chunk, oldest first, after `after`, of events stored up to rowid `upTo`. */
export function exportChunkSql(filter: WebFilter, upTo: number, after: Cursor | undefined, chunk: number, span?: Span): Where {
  // "+rowid": a plain rowid range would make SQLite scan by rowid and sort everything by time.
  const extra: Where[] = [{ sql: "+rowid <= ?", params: [upTo] }];
  if (span) extra.push(spanWhere(span));
  if (after) extra.push({ sql: "ts_ms >= ? AND (ts_ms > ? OR event_id > ?)", params: [after.tsMs, after.tsMs, after.eventId] });
  const where = filterWhere(filter, extra);
  return { sql: `SELECT ${ROW_COLUMNS}, conn_id, json FROM events ${where.sql} ORDER BY ts_ms, event_id LIMIT ?`, params: [...where.params, chunk] };
}

/** The export's next position: after the chunk's last row, or done when the chunk was short. */
export function exportNext(rows: EventRecord[], chunk: number): Cursor | undefined {
  const last = rows[rows.length - 1];
  return rows.length < chunk || !last ? undefined : { tsMs: last.ts_ms, eventId: last.event_id };
}

/**
 * Requests, tokens and cost per time bucket and series. Buckets are aligned to local time (offsetMs = the
 * server's UTC offset) so days start at local midnight. Buckets are whole hours or more (the rollup's
 * grain): in a half-hour time zone, days start on the hour.
 */
export function usageSql(dimension: UsageDimension, bucketMs: number, sinceMs: number, offsetMs: number): Where {
  const column = dimension === "model" ? "model" : "provider";
  // Integers only: a float (even -0, which bun:sqlite binds as REAL) would turn the division into a
  // fractional one and every bucket into its own row.
  const offset = Math.trunc(offsetMs) || 0;
  const bucket = Math.max(HOUR_MS, Math.trunc(bucketMs));
  // UTC-aligned whole days can be summed from the day rollup; anything else needs the hours.
  const days = bucket % DAY_MS === 0 && offset % DAY_MS === 0;
  const table = days ? "event_rollup_day" : "event_rollup_hour";
  const since = days ? Math.floor(hourFloor(sinceMs) / DAY_MS) * DAY_MS : hourFloor(sinceMs);
  return {
    sql: `SELECT ((bucket_ms + ?) / ?) * ? - ? AS bucket_ms, ${column} AS series,
           sum(CASE WHEN event_type = 'ai.request' THEN events ELSE 0 END) AS requests,
           sum(input_tokens) + sum(output_tokens) AS tokens,
           sum(cost_usd) AS cost_usd
         FROM ${table} WHERE bucket_ms >= ? AND ${column} <> ''
         GROUP BY 1, series ORDER BY 1 LIMIT 20000`,
    params: [offset, bucket, bucket, offset, since],
  };
}

/** Totals per group of the rollup rows a filter covers (inventory lists), most requested first. */
export function groupedSql(select: string, groupBy: string, keyColumn: string, filter: RollupFilter, extraColumns = ""): Where {
  const src = rollupSince(filter);
  return {
    sql: `SELECT ${select}, sum(events) AS events, sum(CASE WHEN event_type = 'ai.request' THEN events ELSE 0 END) AS requests,
         sum(errors) AS errors, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
         sum(cost_usd) AS cost_usd, max(last_ms) AS last_ms${extraColumns}
       FROM (${src.sql}) WHERE ${keyColumn} <> '' GROUP BY ${groupBy}
       ORDER BY requests DESC, events DESC LIMIT ?`,
    params: [...src.params, MAX_GROUPS],
  };
}

/** One (provider, process) pair's ai.request count. */
export interface RequestCount {
  p: string | null;
  a: string | null;
  n: number;
}

/**
 * Exact per-provider and per-app request counts since `sinceMs`: whole hours from the hour rollup, the
 * part of the first hour from the events themselves (at most an hour of them, through the ts_ms index).
 * One pass over each source, grouped by both keys (the pairs are few); foldRequests adds them up.
 */
export function requestsSql(sinceMs: number | undefined): { rollup: Where; partial?: Where } {
  const firstHour = firstWholeHour(sinceMs);
  const src = rollupSince({ sinceMs: firstHour, type: "ai.request" });
  const rollup = { sql: `SELECT provider AS p, process_name AS a, sum(events) AS n FROM (${src.sql}) GROUP BY p, a`, params: src.params };
  if (sinceMs === undefined || sinceMs >= firstHour) return { rollup };
  return {
    rollup,
    partial: {
      sql: "SELECT provider AS p, process_name AS a, count(*) AS n FROM events WHERE ts_ms >= ? AND ts_ms < ? AND +event_type = 'ai.request' GROUP BY p, a",
      params: [sinceMs, firstHour],
    },
  };
}

/** Request counts per provider and per app, most first, then by name (a stable order for the panes). */
export function foldRequests(rows: Iterable<RequestCount>): Pick<WindowSummary, "providers" | "apps"> {
  const providers = new Map<string, number>();
  const apps = new Map<string, number>();
  for (const r of rows) {
    if (r.p) providers.set(r.p, (providers.get(r.p) ?? 0) + r.n);
    if (r.a) apps.set(r.a, (apps.get(r.a) ?? 0) + r.n);
  }
  const ranked = (m: Map<string, number>) => [...m].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
  return {
    providers: ranked(providers).map(([provider, requests]) => ({ provider, requests })),
    apps: ranked(apps).map(([process_name, requests]) => ({ process_name, requests })),
  };
}

/** Completeness counts among the window's newest CONFIDENCE_ROWS AI events (confidenceOf folds them). */
export function confidenceSql(sinceMs: number | undefined): Where {
  return {
    sql: `SELECT completeness, count(*) AS n FROM (SELECT completeness FROM events WHERE ts_ms >= ? AND +event_type IN ('ai.request', 'ai.response')
             ORDER BY ts_ms DESC LIMIT ?) GROUP BY completeness`,
    params: [sinceMs ?? 0, CONFIDENCE_ROWS],
  };
}

/** The first hour boundary at or after `sinceMs` (0 for all time): whole hours from there come from the rollup. */
export function firstWholeHour(sinceMs: number | undefined): number {
  return sinceMs === undefined ? 0 : Math.ceil(sinceMs / HOUR_MS) * HOUR_MS;
}

/** (provider, requested model) → the other models that answered it, at most 8 each, in row order. */
export function foldAnswers(rows: Iterable<{ provider: string; model: string; response_model: string }>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rows) {
    const key = answerKey(r.provider, r.model);
    const list = out.get(key) ?? [];
    if (list.length < 8) list.push(r.response_model);
    out.set(key, list);
  }
  return out;
}

export function answerKey(provider: string | null, model: string): string {
  return `${provider ?? ""}\u0000${model}`;
}

/** The confidence pane from (completeness, count) rows: partial counts as redacted; sampled when the read hit CONFIDENCE_ROWS. */
export function confidenceOf(rows: Iterable<{ completeness: string | null; n: number }>): WindowSummary["confidence"] {
  const c = { full: 0, metadata: 0, redacted: 0, total: 0, sampled: false };
  for (const r of rows) {
    c.total += r.n;
    if (r.completeness === "full") c.full += r.n;
    else if (r.completeness === "metadata_only") c.metadata += r.n;
    else if (r.completeness === "redacted" || r.completeness === "partial") c.redacted += r.n;
  }
  c.sampled = c.total >= CONFIDENCE_ROWS;
  return c;
}

/** [from, to) in epoch ms. */
export type Span = readonly [from: number, to: number];

export function spanWhere([from, to]: Span): Where {
  return { sql: "ts_ms >= ? AND ts_ms < ?", params: [from, to] };
}

/** The event times a bucket holds (truncation toward zero: bucket 0 holds (-size, size), a negative one (b - size, b]). */
export function bucketSpan(bucketMs: number, size: number): Span {
  if (bucketMs > 0) return [bucketMs, bucketMs + size];
  if (bucketMs === 0) return [1 - size, size];
  return [bucketMs - size + 1, bucketMs + 1];
}

/**
 * How model_answers can narrow a model filter: per hour (since migration 0005), per (provider, model) pair
 * (0003), or not at all (no such table).
 */
export type AnswersGrain = "hour" | "pair" | "none";

/**
 * The buckets of a rollup (event_rollup_day or _hour) in [fromBucket, toBucket] whose rows match the
 * filter's equality columns (and status: the rollups count failures), with their event counts and oldest and newest event times (first_ms: migration
 * 0006, `withFirstMs` false before it), a page at a time, newest or
 * oldest first: which days, then hours, hold a filter's events, read from the rollups instead of an index on
 * each column. Exact for provider, process and type. For model the rollups count a response under its
 * call's model, so a bucket also matches where `model` answered a call to another one (model_answers): a
 * superset, and the events query still filters on the model itself.
 */
export function filterBucketsSql(
  table: "event_rollup_day" | "event_rollup_hour",
  f: Pick<WebFilter, "provider" | "model" | "process" | "type" | "status">,
  fromBucket: number,
  toBucket: number,
  order: "asc" | "desc",
  limit: number,
  answers: AnswersGrain,
  withFirstMs = true,
): Where {
  // The rollups count failures (success = 0) too: a status filter counts, and keeps, only its rows.
  const counted = f.status === "error" ? "r.errors" : f.status === "ok" ? "r.events - r.errors" : "r.events";
  const status = f.status === "error" ? " AND r.errors > 0" : f.status === "ok" ? " AND r.events > r.errors" : "";
  const size = table === "event_rollup_day" ? DAY_MS : HOUR_MS;
  const conds: string[] = [];
  const params: SQLQueryBindings[] = [fromBucket, toBucket];
  for (const [column, value] of eqFilters(f)) {
    if (column === "model" && answers !== "none") {
      const answered =
        answers === "hour"
          ? `r.bucket_ms IN (SELECT (a.bucket_ms / ${size}) * ${size} FROM model_answers a WHERE a.response_model = ?)`
          : "r.model IN (SELECT a.model FROM model_answers a WHERE a.response_model = ?)";
      conds.push(` AND (r.model = ? OR (r.event_type = 'ai.response' AND ${answered}))`);
      params.push(value, value);
    } else {
      conds.push(` AND r.${column} = ?`);
      params.push(value);
    }
  }
  return {
    sql: `SELECT r.bucket_ms AS bucket_ms, sum(${counted}) AS n, max(r.last_ms) AS last_ms, ${withFirstMs ? "min(r.first_ms)" : "NULL"} AS first_ms FROM ${table} r
      WHERE r.bucket_ms >= ? AND r.bucket_ms <= ?${conds.join("")}${status}
      GROUP BY r.bucket_ms ORDER BY r.bucket_ms ${order === "asc" ? "ASC" : "DESC"} LIMIT ?`,
    params: [...params, limit],
  };
}
