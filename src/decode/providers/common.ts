// Pieces every provider parser shares: tolerant JSON access, credentials → fingerprint, endpoint URL,
// provider error bodies, finish-reason mapping and timed SSE events. Pure functions, no I/O.
import { SseParser, type SseEvent } from "../sse.ts";
import { concatChunks, headerValue, type HeaderList, type HttpRequestRecord, type HttpResponseRecord, type TimedChunk } from "../types.ts";
import type { EndpointMatch } from "../../spec/types.ts";
import { keyShapeOf } from "../../spec/key-shapes.ts";
import { sha256Hex } from "../../util/sha256.ts";
import type { AiAuth, AiToolCall, AiToolDefinition, AiUsage, FinishReason, ParsedAiRequest, ParsedAiResponse } from "./types.ts";

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** A token count: a non-negative safe integer, else undefined. */
export function count(v: unknown): number | undefined {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/**
 * A map's values in ascending key order (stream blocks and tool calls by index). Keys gathered by a loop:
 * spreading the map's entries went through the engine's generic iteration, ~7 % of an Anthropic stream.
 */
export function byIndex<T>(m: Map<number, T>): T[] {
  const keys: number[] = [];
  for (const k of m.keys()) keys.push(k);
  keys.sort((a, b) => a - b);
  const out: T[] = [];
  for (const k of keys) out.push(m.get(k)!);
  return out;
}

export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/**
 * Drops keys whose value is undefined, so parsed objects compare and serialize cleanly. for-in, not
 * Object.keys: no array of keys per object (an inherited key it also visits is never deleted from the object).
 */
export function compact<T extends object>(o: T): T {
  for (const k in o) if (o[k] === undefined) delete o[k];
  return o;
}

const utf8 = new TextDecoder("utf-8");

export function decodeText(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

export type JsonResult = { ok: true; value: unknown } | { ok: false; error: string };

export function parseJson(text: string): JsonResult {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** Parses a request body expected to be a JSON object; explains why not otherwise. */
export function parseJsonObject(bytes: Uint8Array, truncated: boolean): { value?: Json; error?: string; text: string } {
  const text = decodeText(bytes);
  if (text.trim() === "") return { error: "empty body", text };
  const r = parseJson(text);
  if (!r.ok) return { error: truncated ? `body truncated by the capture limit (${r.error})` : `malformed JSON: ${r.error}`, text };
  if (!isObject(r.value)) return { error: "JSON body is not an object", text };
  return { value: r.value, text };
}

/** A request body as a JSON object, or why not (one that could not be content-decoded has no text). */
export function requestJson(req: HttpRequestRecord): { value?: Json; error?: string; text: string } {
  if (req.decodeError) return { error: `body not decoded (${req.decodeError})`, text: "" };
  return parseJsonObject(req.body, req.bodyTruncated);
}

/** The request body as a JSON object; when it is not one, why is recorded in `out.parseError`. */
export function jsonRequestBody(req: HttpRequestRecord, out: ParsedAiRequest): Json | undefined {
  const parsed = requestJson(req);
  if (!parsed.value) out.parseError = parsed.error;
  return parsed.value;
}

/** The fields every parsed request starts with; `auth` defaults to the standard key headers. */
export function baseRequest(
  req: HttpRequestRecord,
  match: EndpointMatch,
  fields: Pick<ParsedAiRequest, "requestType" | "streaming"> & Partial<Pick<ParsedAiRequest, "model" | "auth">>,
): ParsedAiRequest {
  const { auth, ...rest } = fields;
  return {
    provider: match.provider,
    apiFormat: match.apiFormat,
    endpoint: endpointUrl(req, match),
    ...rest,
    messages: [],
    tools: [],
    parameters: {},
    auth: auth ?? authFromHeaders(req.headers),
  };
}

/**
 * From a body that is not valid JSON (cut by the body limit, most often: long conversations), the
 * few top-level scalars worth keeping. A regex over the text: good enough for a best-effort hint.
 */
export function salvageScalars(text: string): { model?: string; stream?: boolean } {
  const head = text.slice(0, 64 * 1024);
  const model = /"model"\s*:\s*"((?:[^"\\]|\\.){1,200})"/.exec(text)?.[1];
  const stream = /"stream"\s*:\s*(true|false)/.exec(head)?.[1];
  return compact({ model: model?.replace(/\\(.)/g, "$1"), stream: stream === undefined ? undefined : stream === "true" });
}

/** A `{id, function: {name, arguments}}` tool call; arguments as JSON text (an object is serialized, absent is "{}"). */
export function functionToolCall(c: Json): AiToolCall {
  const f = isObject(c.function) ? c.function : {};
  return compact({ id: str(c.id), name: str(f.name) ?? "", arguments: typeof f.arguments === "string" ? f.arguments : JSON.stringify(f.arguments ?? {}) });
}

/** A `{type: "function", function: {name, description}}` tool, or the flat `{name, description}` form (Cohere v1). */
export function functionTool(t: Json): AiToolDefinition {
  const f = isObject(t.function) ? t.function : t;
  return compact({ name: str(f.name) ?? "", type: "function" as const, description: str(f.description) });
}

// ---------------------------------------------------------------------------------------------
// Credentials

/** The key's known non-secret prefix (src/spec/key-shapes.ts, the list the secret masker uses too); only these are reported. */
export function keyPrefix(key: string): string | undefined {
  return keyShapeOf(key)?.prefix.slice(0, 8);
}

/** "sha256:" + 16 hex digits: enough to tell keys apart, useless for recovering one. */
export function keyFingerprint(key: string): string {
  return `sha256:${sha256Hex(key).slice(0, 16)}`;
}

// Constants: a regex literal in a function is a new RegExp object per call.
const BEARER = /^Bearer\s+(\S+)$/i;
const QUERY_OR_FRAGMENT = /[?#]/;

/** Authorization: Bearer / x-api-key / api-key → type, prefix and fingerprint. The key itself stays here. */
export function authFromHeaders(headers: HeaderList): AiAuth {
  const apiKey = headerValue(headers, "x-api-key") ?? headerValue(headers, "api-key");
  if (apiKey?.trim()) return describeKey(apiKey.trim(), "api_key");
  const authorization = headerValue(headers, "authorization")?.trim();
  if (!authorization) return { type: "none" };
  const m = BEARER.exec(authorization);
  if (!m) return { type: "unknown" };
  const token = m[1]!;
  // JWTs (Azure AD, OAuth access tokens), Google access tokens and Anthropic OAuth tokens are not API keys.
  const oauth = token.startsWith("eyJ") || token.startsWith("ya29.") || token.startsWith("sk-ant-oat");
  return describeKey(token, oauth ? "oauth" : "api_key");
}

/** An API key or token reduced to its public prefix and a fingerprint (the secret never leaves). */
export function describeKey(key: string, type: AiAuth["type"]): AiAuth {
  return compact({ type, keyPrefix: keyPrefix(key), keyHash: keyFingerprint(key) });
}

// ---------------------------------------------------------------------------------------------
// Endpoint

export function pathOnly(path: string): string {
  const q = path.search(QUERY_OR_FRAGMENT);
  return q === -1 ? path : path.slice(0, q);
}

const LOCAL_HOST = /^(?:localhost|127\.\d+\.\d+\.\d+|\[::1\])(?::\d+)?$/i;

/** https://host/path without the query (it may carry keys). Loopback model servers speak plain http. */
export function endpointUrl(req: HttpRequestRecord, match: EndpointMatch): string {
  const host = req.host || match.host;
  return `${LOCAL_HOST.test(host) ? "http" : "https"}://${host}${pathOnly(req.path)}`;
}

// ---------------------------------------------------------------------------------------------
// Responses

/** The provider's request id: OpenAI-style x-request-id, Anthropic request-id, Azure apim-request-id. */
export function headerRequestId(headers: HeaderList): string | undefined {
  return headerValue(headers, "x-request-id") ?? headerValue(headers, "request-id") ?? headerValue(headers, "apim-request-id");
}

export function baseResponse(res: HttpResponseRecord): ParsedAiResponse {
  return compact({
    statusCode: res.status,
    success: res.status >= 200 && res.status < 300,
    providerRequestId: headerRequestId(res.headers),
    toolCalls: [],
  });
}

export function isEventStream(res: HttpResponseRecord): boolean {
  const type = headerValue(res.headers, "content-type")?.toLowerCase();
  if (type !== undefined) return type.includes("text/event-stream");
  // No content type: sniff the first bytes.
  const first = res.chunks[0]?.data;
  if (!first) return false;
  return /^\s*(?:data|event|:)/.test(decodeText(first.subarray(0, 16)));
}

type ErrorInfo = NonNullable<ParsedAiResponse["error"]>;

/**
 * The response body could not be content-decoded (unknown or corrupt encoding): it holds raw bytes
 * that no parser should read. Only the status says something.
 */
export function undecodedResponse(res: HttpResponseRecord, out: ParsedAiResponse): ParsedAiResponse {
  if (!out.success) out.error = statusError(res);
  out.incomplete = true;
  out.parseError = `response body not decoded (${res.decodeError})`;
  return out;
}

/**
 * What every provider's response parser does first: an undecodable body or a non-2xx status is answered
 * from the status (and the provider's error body) alone. Undefined when the body is worth parsing.
 */
export function unparsedResponse(res: HttpResponseRecord, out: ParsedAiResponse): ParsedAiResponse | undefined {
  if (res.decodeError !== undefined) return undecodedResponse(res, out);
  if (!out.success) {
    out.error = httpError(res);
    return out;
  }
  return undefined;
}

export function bodyText(res: HttpResponseRecord): string {
  // A body that came in one piece (nearly every JSON answer) is decoded where it lies, not copied first.
  return decodeText(res.chunks.length === 1 ? res.chunks[0]!.data : concatChunks(res.chunks));
}

/** A whole (not streamed) response body as a JSON object; when it is not one, `out` is marked incomplete with why. */
export function jsonBody(res: HttpResponseRecord, out: ParsedAiResponse, text = bodyText(res)): Json | undefined {
  const parsed = parseJson(text);
  if (parsed.ok && isObject(parsed.value)) return parsed.value;
  out.incomplete = true;
  out.parseError = parsed.ok ? "response body is not a JSON object" : `malformed JSON: ${parsed.error}`;
  return undefined;
}

/** A 2xx body that still carries an error object is a failed call. */
export function applyBodyError(out: ParsedAiResponse, body: unknown): void {
  const error = errorFromJson(body);
  if (error) {
    out.success = false;
    out.error = error;
  }
}

/** The id (unless a header gave one) and the model a whole response object names. */
export function applyIdAndModel(out: ParsedAiResponse, body: Json): void {
  if (!out.providerRequestId && str(body.id)) out.providerRequestId = str(body.id);
  if (str(body.model)) out.model = str(body.model);
}

/**
 * The error a provider put in a body: OpenAI `{error:{message,type,code}}`, Anthropic
 * `{type:"error",error:{type,message}}`, a bare `{error:"..."}` or `{message}` (some compatible servers).
 */
export function errorFromJson(v: unknown): ErrorInfo | undefined {
  if (Array.isArray(v)) return errorFromJson(v[0]);
  if (!isObject(v)) return undefined;
  const e = v.error;
  if (isObject(e)) {
    return compact({ type: str(e.type) ?? str(e.status), message: str(e.message), code: codeString(e.code) });
  }
  if (typeof e === "string") return compact({ message: e, type: str(v.type) === "error" ? undefined : str(v.type), code: codeString(v.code) });
  if (v.type === "error" || (v.object === "error" && typeof v.message === "string")) {
    return compact({ type: str(v.code) ?? "error", message: str(v.message), code: codeString(v.code) });
  }
  return undefined;
}

function codeString(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return undefined;
}

const MAX_ERROR_TEXT = 500;

/** A non-2xx answer: the provider's error if the body has one, else the status line and a bounded body excerpt. */
export function httpError(res: HttpResponseRecord): ErrorInfo {
  const text = bodyText(res);
  const parsed = parseJson(text);
  const fromBody = parsed.ok ? errorFromJson(parsed.value) : undefined;
  if (fromBody && (fromBody.message || fromBody.type)) return fromBody;
  const excerpt = text.trim().slice(0, MAX_ERROR_TEXT);
  return compact({ type: "http_error", message: excerpt || statusLine(res), code: String(res.status) });
}

/** "429 Too Many Requests" */
export function statusLine(res: HttpResponseRecord): string {
  return `${res.status} ${res.reason}`.trim();
}

/** A failed call known only by its status. */
export function statusError(res: HttpResponseRecord): ErrorInfo {
  return { type: "http_error", message: statusLine(res), code: String(res.status) };
}

// ---------------------------------------------------------------------------------------------
// Finish reasons

const OPENAI_FINISH: Record<string, FinishReason> = {
  stop: "stop",
  end_turn: "stop",
  eos: "stop",
  length: "length",
  max_tokens: "length",
  tool_calls: "tool_calls",
  function_call: "tool_calls",
  tool_use: "tool_calls",
  content_filter: "content_filter",
  error: "error",
};

const ANTHROPIC_STOP: Record<string, FinishReason> = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  model_context_window_exceeded: "length",
  tool_use: "tool_calls",
  refusal: "content_filter",
  pause_turn: "other",
};

export function mapOpenAiFinish(raw: string): FinishReason {
  return Object.hasOwn(OPENAI_FINISH, raw) ? OPENAI_FINISH[raw]! : "other";
}

export function mapAnthropicStop(raw: string): FinishReason {
  return Object.hasOwn(ANTHROPIC_STOP, raw) ? ANTHROPIC_STOP[raw]! : "other";
}

/** Records the provider's finish reason as sent and mapped to OISP's; a missing or empty one sets neither. */
export function setFinish(out: ParsedAiResponse, raw: unknown, map: (raw: string) => FinishReason): void {
  if (typeof raw !== "string" || raw === "") return;
  out.rawFinishReason = raw;
  out.finishReason = map(raw);
}

/** Usage with only the counts that were present; undefined when none was. */
export function usageOf(u: AiUsage): AiUsage | undefined {
  compact(u);
  return Object.keys(u).length > 0 ? u : undefined;
}

// ---------------------------------------------------------------------------------------------
// Streams

export interface TimedSseEvent extends SseEvent {
  /** Arrival time of the chunk that completed this event. */
  ts: number;
}

/** The SSE events of a response body, each stamped with the arrival of the chunk that completed it. */
export function timedSseEvents(chunks: TimedChunk[], endTs: number): { events: TimedSseEvent[]; dropped: number } {
  return (chunks.length > 1 && timedSseEventsWhole(chunks)) || timedSseEventsByChunk(chunks, endTs);
}

/** Each chunk decoded and parsed as it came: the general way (multi-byte characters may span chunks). */
export function timedSseEventsByChunk(chunks: TimedChunk[], endTs: number): { events: TimedSseEvent[]; dropped: number } {
  const parser = new SseParser();
  const events: TimedSseEvent[] = [];
  // The parser's events are new objects: stamped in place rather than copied.
  const stamp = (e: SseEvent, ts: number) => {
    (e as TimedSseEvent).ts = ts;
    events.push(e as TimedSseEvent);
  };
  for (const chunk of chunks) for (const e of parser.push(chunk.data)) stamp(e, chunk.ts);
  const lastTs = chunks.length > 0 ? chunks[chunks.length - 1]!.ts : endTs;
  for (const e of parser.end()) stamp(e, lastTs);
  return { events, dropped: parser.droppedEvents };
}

/**
 * The body decoded and parsed in one piece (one decode and one line scan instead of one per network read,
 * most of a stream's SSE time), when each byte became one character (ASCII, the usual case: JSON escapes
 * or plain text): a character's offset is then its byte's, and each event gets the time of the chunk that
 * held the line break dispatching it, as when parsed chunk by chunk. Undefined otherwise.
 */
function timedSseEventsWhole(chunks: TimedChunk[]): { events: TimedSseEvent[]; dropped: number } | undefined {
  const bytes = concatChunks(chunks);
  const text = decodeText(bytes);
  if (text.length !== bytes.length) return undefined;
  const parser = new SseParser();
  const at: number[] = [];
  const events = parser.pushText(text, at) as TimedSseEvent[];
  let chunk = 0;
  let chunkEnd = chunks[0]!.data.length;
  for (let i = 0; i < events.length; i++) {
    while (at[i]! >= chunkEnd && chunk < chunks.length - 1) chunkEnd += chunks[++chunk]!.data.length;
    events[i]!.ts = chunks[chunk]!.ts;
  }
  const lastTs = chunks[chunks.length - 1]!.ts;
  for (const e of parser.end()) {
    (e as TimedSseEvent).ts = lastTs;
    events.push(e as TimedSseEvent);
  }
  return { events, dropped: parser.droppedEvents };
}

/** Parses one event's data as a JSON object; undefined (counted by the caller) when it is not one. */
export function eventJson(e: SseEvent): Json | undefined {
  // JSON.parse itself, not parseJson: no result object for each event of a stream.
  let value: unknown;
  try {
    value = JSON.parse(e.data);
  } catch {
    return undefined;
  }
  return isObject(value) ? value : undefined;
}

/** Grows a string map entry without letting a hostile stream create unbounded entries. */
export const MAX_STREAM_ITEMS = 256;
