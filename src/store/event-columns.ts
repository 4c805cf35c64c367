// The events table's columns in schema order (src/store/schema.ts), as plain data: the sensor's insert
// needs only these names, and deriving them from the drizzle table kept drizzle-orm (~110 modules, ~8 MB)
// loaded in the sensor Worker for the life of the process. test/unit/store.test.ts checks they match.
import type { NewEventRow } from "./schema.ts";

export const EVENT_COLUMNS: ReadonlyArray<{ key: keyof NewEventRow; name: string }> = [
  { key: "eventId", name: "event_id" },
  { key: "ts", name: "ts" },
  { key: "tsMs", name: "ts_ms" },
  { key: "eventType", name: "event_type" },
  { key: "provider", name: "provider" },
  { key: "model", name: "model" },
  { key: "pid", name: "pid" },
  { key: "processName", name: "process_name" },
  { key: "requestId", name: "request_id" },
  { key: "connId", name: "conn_id" },
  { key: "success", name: "success" },
  { key: "inputTokens", name: "input_tokens" },
  { key: "outputTokens", name: "output_tokens" },
  { key: "costUsd", name: "cost_usd" },
  { key: "completeness", name: "completeness" },
  { key: "json", name: "json" },
  { key: "keyPrefix", name: "key_prefix" },
  { key: "keyHash", name: "key_hash" },
  { key: "authType", name: "auth_type" },
  { key: "callModel", name: "call_model" },
];
