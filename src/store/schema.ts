// SQLite schema of the event store. One row per OISP event: the full event as JSON, plus the columns
// the dashboard and `oisp analyze` filter and sort on.
import { index, integer, primaryKey, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const events = sqliteTable(
  "events",
  {
    eventId: text("event_id").primaryKey(),
    /** RFC 3339 as in the event. */
    ts: text("ts").notNull(),
    /** Epoch milliseconds of ts: what queries order and page by. */
    tsMs: integer("ts_ms").notNull(),
    eventType: text("event_type").notNull(),
    provider: text("provider"),
    model: text("model"),
    pid: integer("pid"),
    processName: text("process_name"),
    requestId: text("request_id"),
    connId: text("conn_id"),
    /** 1 / 0 / null (unknown). */
    success: integer("success"),
    inputTokens: integer("input_tokens"),
    outputTokens: integer("output_tokens"),
    costUsd: real("cost_usd"),
    completeness: text("completeness"),
    json: text("json").notNull(),
    /**
     * The credential the rollups count this event under (migration 0002): an ai.request's own data.auth,
     * an ai.response's request's. Filled by the store on insert so the rollups read columns instead of
     * parsing the event's JSON (and its request's). Null when unknown or for other event types.
     */
    keyPrefix: text("key_prefix"),
    keyHash: text("key_hash"),
    authType: text("auth_type"),
    /**
     * The model the rollups count this event under (migration 0003): the model the call asked for. An
     * ai.request's own model; an ai.response's request's (else its own), so a call to an alias answered by a
     * dated snapshot (gpt-4o-mini → gpt-4o-mini-2024-07-18) lands on one inventory row. Filled by the store.
     */
    callModel: text("call_model"),
  },
  // Only the time and the request id are indexed (migration 0005 dropped the type, provider, model and
  // process indexes: ~5 of the ~17 pages a lone call's commit wrote). The dashboard finds a filter's events
  // through the rollups (which hours hold them) and the ts_ms index, and its filter lists in event_values.
  (t) => [index("events_ts_ms_idx").on(t.tsMs), index("events_request_id_idx").on(t.requestId)],
);

export type EventRow = typeof events.$inferSelect;
export type NewEventRow = typeof events.$inferInsert;

/**
 * Totals per (time bucket, event type, provider, model, process, pid, credential), kept up to date by the
 * store as it inserts (src/store/rollups.ts; a trigger on events from migration 0001 to 0004): the dashboard's
 * inventory, process tree and usage chart read these instead of scanning a million events. Two grains:
 * hours (recent ranges, hourly charts) and UTC days (long ranges). Unknown values are "" / -1 so they take
 * part in the key. Credentials: a request's own auth; a response inherits its request's (found by
 * request_id among the requests stored before it).
 */
function rollupTable<N extends string>(name: N) {
  return sqliteTable(
    name,
    {
      bucketMs: integer("bucket_ms").notNull(),
      eventType: text("event_type").notNull(),
      provider: text("provider").notNull(),
      model: text("model").notNull(),
      processName: text("process_name").notNull(),
      pid: integer("pid").notNull(),
      keyPrefix: text("key_prefix").notNull(),
      keyHash: text("key_hash").notNull(),
      authType: text("auth_type").notNull(),
      events: integer("events").notNull(),
      errors: integer("errors").notNull(),
      inputTokens: integer("input_tokens").notNull(),
      outputTokens: integer("output_tokens").notNull(),
      costUsd: real("cost_usd").notNull(),
      lastMs: integer("last_ms").notNull(),
      /** rowid of the newest event counted: where the process view reads ppid / exe from. */
      lastRowid: integer("last_rowid").notNull(),
      /**
       * The oldest event counted (migration 0006; unknown, the smallest integer, for rows counted before it):
       * with last_ms it bounds where in its hour a filter's events are, so a rare value is read by time from
       * its own events, not from a whole busy hour.
       */
      firstMs: integer("first_ms").notNull().default(-9007199254740991),
    },
    (t) => [primaryKey({ columns: [t.bucketMs, t.eventType, t.provider, t.model, t.processName, t.pid, t.keyHash, t.keyPrefix, t.authType] })],
  );
}

export const eventRollupHour = rollupTable("event_rollup_hour");

/**
 * Which models answered the calls counted under a requested model (migration 0003, kept with the rollups): the
 * inventory shows them beside the requested one ("gpt-4o-mini, answered by gpt-4o-mini-2024-07-18"). Only
 * responses whose model differs from their call's are recorded. Per hour since migration 0005: a timeline
 * filtered on the answering model finds its hours here (the hour rollup counts a response under its call's model).
 */
export const modelAnswers = sqliteTable(
  "model_answers",
  {
    bucketMs: integer("bucket_ms").notNull(),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    responseModel: text("response_model").notNull(),
    responses: integer("responses").notNull(),
    lastMs: integer("last_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.bucketMs, t.provider, t.model, t.responseModel] })],
);
export const eventRollupDay = rollupTable("event_rollup_day");

/**
 * Every value seen in the events' filter columns (migration 0005): the dashboard's filter lists (providers,
 * models, processes, event types). `column` is the events column's name. The store writes a value the first
 * time it meets it (it remembers what it has written), so a steady stream of calls writes nothing here.
 */
export const eventValues = sqliteTable(
  "event_values",
  {
    column: text("column").notNull(),
    value: text("value").notNull(),
  },
  (t) => [primaryKey({ columns: [t.column, t.value] })],
);
