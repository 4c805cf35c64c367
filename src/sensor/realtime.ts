// OpenAI Realtime API (wss://api.openai.com/v1/realtime?model=…, Azure /openai/realtime?deployment=…)
// turned into request/response turns. Sans-IO: fed the decoded WebSocket messages of one connection in
// order, it returns a turn's request when a response starts and the turn's response at response.done.
//
// One turn = the conversation items the client added since the previous response (user messages,
// function_call_output → tool results) under the session's instructions and tools, answered by one
// server response (text or audio transcript, function calls, usage from response.done). Responses the
// server starts by itself (server VAD) make a turn too, at response.created.
import type { AiMessage, AiToolCall, AiToolDefinition, FinishReason, ParsedAiRequest, ParsedAiResponse } from "../decode/providers/types.ts";
import type { HttpRequestRecord } from "../decode/types.ts";
import { arr, authFromHeaders, compact, isObject, num, str, type Json } from "../decode/providers/common.ts";
import type { EndpointMatch } from "../spec/types.ts";

/** Conversation items and events kept per connection before they are attributed to a turn. */
const MAX_PENDING_ITEMS = 256;
const MAX_OPEN_TURNS = 16;

export interface RealtimeTurnStart {
  kind: "request";
  turn: number;
  parsed: ParsedAiRequest;
  ts: number;
}

export interface RealtimeTurnEnd {
  kind: "response";
  turn: number;
  parsed: ParsedAiResponse;
  startTs: number;
  firstTokenTs?: number;
  ts: number;
}

export type RealtimeOutput = RealtimeTurnStart | RealtimeTurnEnd | { kind: "error"; message: string };

/** True for the WebSocket paths of the Realtime API. */
export function isRealtimePath(path: string): boolean {
  return /^\/(?:v1|openai)\/realtime(?:[/?]|$)/.test(path);
}

interface OpenTurn {
  turn: number;
  responseId?: string;
  startTs: number;
  firstTokenTs?: number;
  text: string[];
}

export class RealtimeSession {
  private instructions?: string;
  private tools: AiToolDefinition[] = [];
  private parameters: ParsedAiRequest["parameters"] = {};
  private model?: string;
  private pendingItems: AiMessage[] = [];
  /** A response.create seen, its response not started yet: the override it asked for. */
  private requested?: { instructions?: string; ts: number };
  private readonly open: OpenTurn[] = [];
  private turns = 0;
  private readonly endpoint: string;
  /** The server's session id (session.created): every turn of the connection is one conversation. */
  sessionId?: string;

  constructor(
    private readonly upgrade: HttpRequestRecord,
    private readonly match: EndpointMatch,
  ) {
    const url = new URL(upgrade.path, `https://${upgrade.host || match.host}`);
    this.model = url.searchParams.get("model") ?? url.searchParams.get("deployment") ?? undefined;
    this.endpoint = `wss://${upgrade.host || match.host}${url.pathname}`;
  }

  /** One text message of the connection, already unmasked and inflated. */
  push(dir: "c2s" | "s2c", text: string, ts: number): RealtimeOutput[] {
    let ev: unknown;
    try {
      ev = JSON.parse(text);
    } catch {
      return [{ kind: "error", message: `realtime ${dir} message is not JSON` }];
    }
    if (!isObject(ev)) return [];
    return dir === "c2s" ? this.client(ev, ts) : this.server(ev, ts);
  }

  private client(ev: Json, ts: number): RealtimeOutput[] {
    switch (str(ev.type)) {
      case "session.update":
        if (isObject(ev.session)) this.applySession(ev.session);
        return [];
      case "conversation.item.create":
        if (isObject(ev.item)) this.addItem(ev.item);
        return [];
      case "response.create": {
        const r = isObject(ev.response) ? ev.response : {};
        this.requested = { instructions: str(r.instructions), ts };
        return [];
      }
      default:
        return []; // input_audio_buffer.*, conversation.item.truncate/delete: no text to report
    }
  }

  private server(ev: Json, ts: number): RealtimeOutput[] {
    const type = str(ev.type) ?? "";
    switch (type) {
      case "session.created":
      case "session.updated":
        if (isObject(ev.session)) this.applySession(ev.session);
        return [];
      case "conversation.item.input_audio_transcription.completed": {
        const transcript = str(ev.transcript);
        if (transcript !== undefined) this.pushItem({ role: "user", content: transcript });
        return [];
      }
      case "response.created":
        return this.startTurn(isObject(ev.response) ? str(ev.response.id) : undefined, ts);
      case "response.done":
        return this.endTurn(isObject(ev.response) ? ev.response : {}, ts);
      case "error":
        // An error outside a response (bad event, auth): the open turn, if any, fails with it.
        if (this.open.length > 0 && isObject(ev.error)) {
          return this.endTurn({ id: this.open[0]!.responseId, status: "failed", status_details: { error: ev.error } }, ts);
        }
        return [];
      default: {
        if (/^response\.(?:output_)?(?:text|audio_transcript)\.delta$/.test(type)) {
          const turn = this.turnFor(str(ev.response_id));
          if (turn) {
            turn.firstTokenTs ??= ts;
            const delta = str(ev.delta);
            if (delta !== undefined && turn.text.join("").length < 1_000_000) turn.text.push(delta);
          }
        } else if (type === "response.function_call_arguments.delta") {
          const turn = this.turnFor(str(ev.response_id));
          if (turn) turn.firstTokenTs ??= ts;
        }
        return [];
      }
    }
  }

  private startTurn(responseId: string | undefined, ts: number): RealtimeOutput[] {
    if (this.open.length >= MAX_OPEN_TURNS) this.open.shift();
    const turn: OpenTurn = { turn: this.turns++, responseId, startTs: this.requested?.ts ?? ts, text: [] };
    this.open.push(turn);
    const system = this.requested?.instructions ?? this.instructions;
    const parsed: ParsedAiRequest = compact({
      provider: this.match.provider,
      apiFormat: this.match.apiFormat,
      endpoint: this.endpoint,
      requestType: "chat" as const,
      model: this.model,
      streaming: true,
      messages: this.pendingItems,
      system,
      tools: this.tools,
      parameters: { ...this.parameters },
      auth: authFromHeaders(this.upgrade.headers),
    });
    this.pendingItems = [];
    this.requested = undefined;
    return [{ kind: "request", turn: turn.turn, parsed, ts: turn.startTs }];
  }

  private endTurn(r: Json, ts: number): RealtimeOutput[] {
    const out: RealtimeOutput[] = [];
    let turn = this.turnFor(str(r.id));
    if (!turn) {
      // response.done without response.created (we joined late): the turn starts and ends here.
      const started = this.startTurn(str(r.id), ts);
      out.push(...started);
      turn = this.open[this.open.length - 1]!;
    }
    this.open.splice(this.open.indexOf(turn), 1);
    out.push({ kind: "response", turn: turn.turn, parsed: this.responseOf(r, turn), startTs: turn.startTs, firstTokenTs: turn.firstTokenTs, ts });
    return out;
  }

  private responseOf(r: Json, turn: OpenTurn): ParsedAiResponse {
    const status = str(r.status) ?? "completed";
    const texts: string[] = [];
    const toolCalls: AiToolCall[] = [];
    for (const item of arr(r.output)) {
      if (!isObject(item)) continue;
      if (item.type === "function_call") {
        toolCalls.push(compact({ id: str(item.call_id), name: str(item.name) ?? "", arguments: str(item.arguments) ?? "" }));
      } else if (item.type === "message") {
        for (const part of arr(item.content)) {
          if (!isObject(part)) continue;
          const t = str(part.text) ?? str(part.transcript);
          if (t !== undefined) texts.push(t);
        }
      }
    }
    const content = texts.length > 0 ? texts.join("") : turn.text.length > 0 ? turn.text.join("") : undefined;
    const details = isObject(r.status_details) ? r.status_details : {};
    const error = isObject(details.error) ? compact({ type: str(details.error.type), code: str(details.error.code), message: str(details.error.message) }) : undefined;
    let finishReason: FinishReason = "stop";
    if (status === "failed") finishReason = "error";
    else if (toolCalls.length > 0) finishReason = "tool_calls";
    else if (status === "incomplete") finishReason = str(details.reason) === "max_output_tokens" ? "length" : str(details.reason) === "content_filter" ? "content_filter" : "other";
    else if (status === "cancelled") finishReason = "other";
    const u = isObject(r.usage) ? r.usage : undefined;
    const inDetails = u && isObject(u.input_token_details) ? u.input_token_details : {};
    return compact({
      statusCode: status === "failed" ? 500 : 200,
      success: status !== "failed",
      error: error ?? (status === "failed" ? { type: "response_failed" } : undefined),
      providerRequestId: str(r.id),
      model: this.model,
      content,
      toolCalls,
      finishReason,
      rawFinishReason: status,
      usage: u
        ? compact({ promptTokens: num(u.input_tokens), completionTokens: num(u.output_tokens), totalTokens: num(u.total_tokens), cachedTokens: num(inDetails.cached_tokens) })
        : undefined,
      firstTokenTs: turn.firstTokenTs,
    });
  }

  private turnFor(responseId: string | undefined): OpenTurn | undefined {
    if (responseId !== undefined) {
      const hit = this.open.find((t) => t.responseId === responseId);
      if (hit) return hit;
    }
    return this.open[this.open.length - 1];
  }

  private applySession(s: Json): void {
    if (str(s.id) !== undefined) this.sessionId ??= str(s.id);
    if (str(s.instructions) !== undefined) this.instructions = str(s.instructions);
    if (str(s.model) !== undefined) this.model = str(s.model);
    if (Array.isArray(s.tools)) {
      this.tools = arr(s.tools)
        .filter(isObject)
        .map((t) => compact({ name: str(t.name) ?? "", type: t.type === "function" ? ("function" as const) : ("other" as const), description: str(t.description) }));
    }
    const temperature = num(s.temperature);
    if (temperature !== undefined) this.parameters.temperature = temperature;
    const max = num(s.max_response_output_tokens) ?? num(s.max_output_tokens);
    if (max !== undefined) this.parameters.max_tokens = max;
  }

  private addItem(item: Json): void {
    if (item.type === "function_call_output") {
      this.pushItem(compact({ role: "tool" as const, toolCallId: str(item.call_id), content: str(item.output) ?? "" }));
      return;
    }
    if (item.type !== "message" && item.type !== undefined) return;
    const role = item.role === "system" || item.role === "assistant" ? item.role : "user";
    const texts: string[] = [];
    for (const part of arr(item.content)) {
      if (!isObject(part)) continue;
      const t = str(part.text) ?? str(part.transcript);
      if (t !== undefined) texts.push(t);
    }
    this.pushItem({ role, content: texts.join("\n") });
  }

  private pushItem(m: AiMessage): void {
    if (this.pendingItems.length >= MAX_PENDING_ITEMS) this.pendingItems.shift();
    this.pendingItems.push(m);
  }
}
