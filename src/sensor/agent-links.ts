// What the sensor remembers between exchanges so events can point at each other: recent tool calls (to
// link the agent.tool_result sent back in a later request, maybe on another connection) and the
// Responses API's response ids (to follow previous_response_id chains). Everything is bounded (LRU).
import type { ParsedAiRequest, ParsedAiResponse } from "../decode/providers/types.ts";
import type { AiMessage } from "../decode/providers/types.ts";
import type { HttpRequestRecord, HttpResponseRecord } from "../decode/types.ts";
import { conversationIdFrom, conversationKey } from "../events/conversation.ts";
import type { LinkedToolCall } from "../events/tool-result.ts";

/** A Map that forgets its least recently used entries beyond `max`. */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly max: number) {}

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }
}

/** Recent agent.tool_call events by call id (or, for calls without one, by process + tool name). */
export class ToolCallMemory {
  private readonly calls: LruMap<string, LinkedToolCall>;
  private readonly reported: LruMap<string, true>;

  constructor(max = 10_000) {
    this.calls = new LruMap(max);
    this.reported = new LruMap(max);
  }

  remember(scope: string, call: { id?: string; name: string }, eventId: string, tsMs: number): void {
    if (call.id !== undefined) this.calls.set(`id:${call.id}`, { eventId, callId: call.id, name: call.name, tsMs, by: "call_id" });
    // Gemini calls often carry no id: the result names the function instead, in the same process.
    // Its agent.tool_call's call_id is then its event id (src/events/build.ts), and so is the result's.
    else this.calls.set(`name:${scope}:${call.name}`, { eventId, callId: eventId, name: call.name, tsMs, by: "tool_name" });
  }

  /** The call a tool message answers, if it was seen. */
  find(scope: string, message: AiMessage): LinkedToolCall | undefined {
    if (message.toolCallId !== undefined) return this.calls.get(`id:${message.toolCallId}`);
    if (message.name !== undefined) return this.calls.get(`name:${scope}:${message.name}`);
    return undefined;
  }

  /** True the first time a result for this call is reported (a retried request must not repeat it). */
  firstReport(scope: string, callId: string): boolean {
    const key = `${scope}:${callId}`;
    if (this.reported.get(key)) return false;
    this.reported.set(key, true);
    return true;
  }

  /** A call linked by name is answered: a later call of the same tool must not take this one's result. */
  consumed(scope: string, link: LinkedToolCall): void {
    if (link.by === "tool_name" && link.name !== undefined) this.calls.delete(`name:${scope}:${link.name}`);
  }
}

const RESPONSES_PATH = /\/responses\/?$/;
const RESPONSE_ID = /"id"\s*:\s*"(resp_[A-Za-z0-9_-]{1,200})"/;

/** conversation_id per request; see src/events/conversation.ts for the rules. */
export class ConversationTracker {
  /** Responses API response id → its conversation. */
  private readonly byResponse: LruMap<string, string>;

  constructor(max = 10_000) {
    this.byResponse = new LruMap(max);
  }

  forRequest(scope: string, parsed: ParsedAiRequest, req: HttpRequestRecord): string | undefined {
    if (parsed.requestType !== "chat" && parsed.requestType !== "completion") return undefined;
    if (isResponsesApi(parsed)) {
      const body = jsonObject(req.body);
      const conv = body?.conversation;
      const named = typeof conv === "string" ? conv : isObject(conv) && typeof conv.id === "string" ? conv.id : undefined;
      if (named !== undefined) return named;
      const previous = body?.previous_response_id;
      if (typeof previous === "string" && previous !== "") {
        // A chain whose start the sensor did not see still gets one stable id from its oldest known link.
        return this.byResponse.get(previous) ?? conversationIdFrom(["openai-response", previous]);
      }
    }
    return conversationKey({ scope, provider: parsed.provider, system: parsed.system, messages: parsed.messages });
  }

  /** Remembers which conversation a Responses API response belongs to, for the next previous_response_id. */
  noteResponse(parsed: ParsedAiRequest, parsedRes: ParsedAiResponse, res: HttpResponseRecord | undefined, conversationId: string): void {
    if (!isResponsesApi(parsed) || !res) return;
    const id = parsedRes.providerRequestId?.startsWith("resp_") ? parsedRes.providerRequestId : responseIdOf(res);
    if (id !== undefined) this.byResponse.set(id, conversationId);
  }
}

/** What the URL parser drops from a URL (a constant, not a new RegExp per call). */
const URL_DROPPED_CHARS = /[\t\n\r]/;

function isResponsesApi(parsed: ParsedAiRequest): boolean {
  if (parsed.apiFormat !== "openai" && !parsed.endpoint.includes("/openai/")) return false;
  // Most endpoints cannot have a /responses path: skip parsing them (the URL parser drops tabs and newlines).
  if (!parsed.endpoint.includes("responses") && !URL_DROPPED_CHARS.test(parsed.endpoint)) return false;
  try {
    return RESPONSES_PATH.test(new URL(parsed.endpoint).pathname);
  } catch {
    return false;
  }
}

/** The resp_… id near the start of a response body (JSON, or the first SSE event of a stream). */
function responseIdOf(res: HttpResponseRecord): string | undefined {
  let text = "";
  for (const chunk of res.chunks) {
    text += Buffer.from(chunk.data.buffer, chunk.data.byteOffset, Math.min(chunk.data.length, 8192 - text.length)).toString("utf8");
    if (text.length >= 8192) break;
  }
  return RESPONSE_ID.exec(text)?.[1];
}

function jsonObject(body: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.length).toString("utf8"));
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
