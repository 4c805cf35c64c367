// From an OISP event to the row we store: the full JSON plus the columns queries filter on.
// Events come from the sensor's builders, but the store only relies on this minimal shape and reads
// every nested field defensively, so a new event type or an odd value never breaks storing.
import { eventInputTokens } from "../events/input-tokens.ts";
import { at, isObj, nonEmptyStr, num, str } from "../events/read.ts";
import { eventProviderLabel } from "../spec/provider-label.ts";
import type { NewEventRow } from "./schema.ts";

/** The least an event must have to be stored. OispEvent (src/events) satisfies it structurally. */
export interface StorableEvent {
  event_id: string;
  event_type: string;
  /** RFC 3339. */
  ts: string;
  process?: unknown;
  data?: unknown;
  attrs?: unknown;
  confidence?: unknown;
}

/** The row for an event, or undefined if it cannot be stored (no id, unparseable ts, not serialisable). */
export function toEventRow(event: StorableEvent): NewEventRow | undefined {
  if (!isObj(event) || !nonEmptyStr(event.event_id) || !nonEmptyStr(event.event_type) || typeof event.ts !== "string") return undefined;
  const tsMs = Date.parse(event.ts);
  if (!Number.isFinite(tsMs)) return undefined;
  let json: string;
  try {
    json = JSON.stringify(event);
  } catch {
    return undefined; // BigInt or a cycle: not an OISP event
  }
  const data = event.data;
  const usage = at(data, "usage");
  const success = at(data, "success");
  const model = strColumn(at(data, "model"), "id");
  return {
    eventId: event.event_id,
    ts: event.ts,
    tsMs,
    eventType: event.event_type,
    // xAI, DeepSeek... are "other" in OISP: grouped and shown by their bundle id (src/spec/provider-label.ts).
    provider: eventProviderLabel(event) ?? null,
    model,
    pid: numColumn(at(event.process, "pid")),
    processName: strColumn(at(event.process, "name")),
    requestId: strColumn(at(data, "request_id")),
    connId: strColumn(at(event.attrs, "conn_id")),
    success: typeof success === "boolean" ? (success ? 1 : 0) : null,
    inputTokens: eventInputTokens(usage, event.attrs) ?? null,
    outputTokens: numColumn(at(usage, "completion_tokens")),
    costUsd: numColumn(at(usage, "total_cost_usd")),
    completeness: strColumn(at(event.confidence, "completeness")),
    json,
    // A response's credential and call model are its request's: the store fills them (it needs the stored requests).
    ...(event.event_type === "ai.request" ? credentialOf(at(data, "auth")) : NO_CREDENTIAL),
    callModel: event.event_type === "ai.request" ? model : null,
  };
}

/** The credential columns of an events row (the rollups' key_prefix / key_hash / auth_type). */
export interface Credential {
  keyPrefix: string | null;
  keyHash: string | null;
  authType: string | null;
}

export const NO_CREDENTIAL: Readonly<Credential> = { keyPrefix: null, keyHash: null, authType: null };

/** What a response takes from its request: the credential and the model the call asked for. */
export interface RequestFacts extends Credential {
  callModel: string | null;
}

/**
 * A request's data.auth as the rollups count it. The sensor's redaction keeps only string fields in auth
 * (src/events/redact.ts), and then this is what 0001's trigger took with json_extract; a non-string field
 * (not valid OISP) counts as unknown here, where json_extract would have turned it into text.
 */
function credentialOf(auth: unknown): Credential {
  if (!isObj(auth)) return NO_CREDENTIAL;
  return { keyPrefix: strColumn(auth.key_prefix), keyHash: strColumn(auth.key_hash), authType: strColumn(auth.type) };
}

/** A string, or the string at `key` of an object (provider may be "openai" or { name: "openai" }). */
function strColumn(v: unknown, key?: string): string | null {
  return str(v) ?? (key !== undefined ? str(at(v, key)) : undefined) ?? null;
}

function numColumn(v: unknown): number | null {
  return num(v) ?? null;
}
