// SQLite schema of the event store. One row per OISP event: the full event as JSON, plus the columns
// the dashboard and `oisp analyze` filter and sort on.
import { index, integer, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

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
  },
  (t) => [
    index("events_ts_ms_idx").on(t.tsMs),
    index("events_event_type_idx").on(t.eventType),
    index("events_provider_idx").on(t.provider),
    index("events_model_idx").on(t.model),
    index("events_process_name_idx").on(t.processName),
    index("events_request_id_idx").on(t.requestId),
  ],
);

export type EventRow = typeof events.$inferSelect;
export type NewEventRow = typeof events.$inferInsert;
