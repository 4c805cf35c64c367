// Reading OISP event JSON: the one view every reader uses (the exporters' GenAI mapping, analyze, the
// dashboard and terminal view, the store's columns). Stored events came off the network through the
// sensor and may have been written by an older or newer version, so every field is read defensively: a
// missing or oddly typed field reads as absent, never as a crash. The field accessors below name their
// keys through the zod event types (a schema rename fails to compile here, not silently in a reader).
import type { OispEvent } from "./schema.ts";

export type Json = unknown;
export type JsonObject = Record<string, Json>;

export function isObj(v: Json): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function obj(v: Json): JsonObject | undefined {
  return isObj(v) ? v : undefined;
}

/** Walks a path of keys; undefined as soon as a step is missing. */
export function at(v: Json, ...path: string[]): Json {
  let cur = v;
  for (const key of path) {
    if (!isObj(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

/** Any string, the empty one included. */
export function str(v: Json): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** A string with something in it: "" reads as absent (ids, names, model ids). */
export function nonEmptyStr(v: Json): string | undefined {
  return typeof v === "string" && v.length > 0 ? v : undefined;
}

/** A finite number. */
export function num(v: Json): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** A count: a safe non-negative integer (tokens, pids, status codes). */
export function count(v: Json): number | undefined {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

export function arr(v: Json): Json[] {
  return Array.isArray(v) ? v : [];
}

export function parseEventJson(text: string): JsonObject | undefined {
  try {
    const v = JSON.parse(text) as Json;
    return isObj(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

type AiRequestData = Extract<OispEvent, { event_type: "ai.request" }>["data"];
type AiResponseData = Extract<OispEvent, { event_type: "ai.response" }>["data"];
type DataKey = keyof AiRequestData | keyof AiResponseData;

/** A field of an AI event's data by its schema name. */
function dataField(data: Json, key: DataKey): Json {
  return isObj(data) ? data[key] : undefined;
}

/** data.request_id: what joins an ai.request to its ai.response. */
export function requestIdOf(data: Json): string | undefined {
  return nonEmptyStr(dataField(data, "request_id"));
}

/** data.model: { id } in OISP, a bare string in some older or foreign events. */
export function modelIdOf(data: Json): string | undefined {
  const m = dataField(data, "model");
  return typeof m === "string" ? m : nonEmptyStr(obj(m)?.id);
}

/** data.provider.endpoint: the URL the call went to. */
export function endpointOf(data: Json): string | undefined {
  return nonEmptyStr(obj(dataField(data, "provider"))?.endpoint);
}

/** data.usage of an ai.response, {} when absent. */
export function usageOf(data: Json): JsonObject {
  return obj(dataField(data, "usage")) ?? {};
}
