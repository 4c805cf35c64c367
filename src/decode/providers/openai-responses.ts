// OpenAI Responses API (/v1/responses): input items and instructions → ParsedAiRequest; the final
// response object, or its stream of typed events, → ParsedAiResponse.
import type { HttpResponseRecord } from "../types.ts";
import {
  byIndex,
  applyBodyError,
  applyIdAndModel,
  arr,
  baseResponse,
  compact,
  count,
  eventJson,
  isEventStream,
  isObject,
  jsonBody,
  MAX_STREAM_ITEMS,
  num,
  str,
  timedSseEvents,
  unparsedResponse,
  usageOf,
  type Json,
} from "./common.ts";
import { builtinToolType, contentText, messageRole, reasoningEffort, toolChoice } from "./openai-chat.ts";
import type { AiMessage, AiToolCall, AiToolDefinition, FinishReason, ParsedAiRequest, ParsedAiResponse } from "./types.ts";

type RequestFields = Pick<ParsedAiRequest, "model" | "streaming" | "messages" | "system" | "tools" | "toolChoice" | "parameters" | "thinking">;

// ---------------------------------------------------------------------------------------------
// Request

export function responsesRequestFields(body: Json): RequestFields {
  const reasoning = isObject(body.reasoning) ? body.reasoning : undefined;
  return compact({
    model: str(body.model),
    streaming: body.stream === true,
    messages: inputMessages(body.input),
    system: str(body.instructions),
    tools: arr(body.tools).filter(isObject).map(toolOf),
    toolChoice: toolChoice(body.tool_choice),
    parameters: compact({ temperature: num(body.temperature), top_p: num(body.top_p), max_tokens: count(body.max_output_tokens) }),
    thinking: reasoningEffort(str(reasoning?.effort)),
  });
}

function inputMessages(input: unknown): AiMessage[] {
  if (typeof input === "string") return [{ role: "user", content: input }];
  const out: AiMessage[] = [];
  for (const item of arr(input)) {
    if (!isObject(item)) continue;
    const type = str(item.type) ?? "message";
    if (type === "message") {
      const { text, images } = contentText(item.content);
      out.push(compact({ role: messageRole(item.role), content: text, imageCount: images > 0 ? images : undefined }));
    } else if (type === "function_call" || type === "custom_tool_call") {
      const call = compact({ id: str(item.call_id) ?? str(item.id), name: str(item.name) ?? "", arguments: str(item.arguments) ?? str(item.input) ?? "" });
      // Consecutive calls of one model turn belong to one assistant message.
      const last = out[out.length - 1];
      if (last?.role === "assistant" && last.content === undefined && last.toolCalls) last.toolCalls.push(call);
      else out.push({ role: "assistant", toolCalls: [call] });
    } else if (type === "function_call_output" || type === "custom_tool_call_output") {
      const output = item.output;
      const text = typeof output === "string" ? output : contentText(output).text;
      out.push(compact({ role: "tool" as const, toolCallId: str(item.call_id), content: text }));
    }
    // reasoning items, item references and built-in tool results carry no conversation text
  }
  return out;
}

function toolOf(t: Json): AiToolDefinition {
  const type = str(t.type);
  // Function tools are flat here ({type, name, description}); built-ins are named by their type.
  const name = str(t.name) ?? (isObject(t.function) ? str(t.function.name) : undefined) ?? str(t.server_label) ?? type ?? "";
  return compact({ name, type: builtinToolType(type), description: str(t.description) });
}

// ---------------------------------------------------------------------------------------------
// Response

export function parseResponsesResponse(res: HttpResponseRecord): ParsedAiResponse {
  const out = baseResponse(res);
  const early = unparsedResponse(res, out);
  if (early) return early;
  return isEventStream(res) ? parseStream(res, out) : parseWhole(res, out);
}

function parseWhole(res: HttpResponseRecord, out: ParsedAiResponse): ParsedAiResponse {
  const body = jsonBody(res, out);
  if (!body) return out;
  applyResponseObject(out, body, true);
  if (!res.complete || res.bodyTruncated) out.incomplete = true;
  return out;
}

/** Fields of a whole response object (the body, or the one carried by response.completed/failed). */
function applyResponseObject(out: ParsedAiResponse, r: Json, takeOutput: boolean): void {
  applyIdAndModel(out, r);
  applyBodyError(out, isObject(r.error) ? { error: r.error } : r);
  if (takeOutput) {
    const texts: string[] = [];
    const thoughts: string[] = [];
    for (const item of arr(r.output)) {
      if (!isObject(item)) continue;
      const call = outputToolCall(item);
      if (call) out.toolCalls.push(call);
      else if (item.type === "message") {
        const text = outputText(item);
        if (text !== undefined) texts.push(text);
      } else if (item.type === "reasoning") {
        const text = reasoningText(item);
        if (text !== undefined) thoughts.push(text);
      }
    }
    if (texts.length > 0) out.content = texts.join("");
    if (thoughts.length > 0) out.thinking = thoughts.join("\n");
  }
  const usage = responsesUsage(r.usage);
  if (usage) out.usage = usage;
  const finish = finishOf(r, out.toolCalls.length > 0);
  if (finish) {
    out.finishReason = finish.reason;
    out.rawFinishReason = finish.raw;
  }
}

function outputToolCall(item: Json): AiToolCall | undefined {
  switch (item.type) {
    case "function_call":
      return compact({ id: str(item.call_id) ?? str(item.id), name: str(item.name) ?? "", arguments: str(item.arguments) ?? "" });
    case "custom_tool_call":
      return compact({ id: str(item.call_id) ?? str(item.id), name: str(item.name) ?? "", arguments: str(item.input) ?? "" });
    default:
      return undefined;
  }
}

function outputText(item: Json): string | undefined {
  const parts: string[] = [];
  for (const c of arr(item.content)) {
    if (!isObject(c)) continue;
    if (c.type === "output_text" && typeof c.text === "string") parts.push(c.text);
    else if (c.type === "refusal" && typeof c.refusal === "string") parts.push(c.refusal);
  }
  return parts.length > 0 ? parts.join("") : undefined;
}

/** Reasoning summaries (what OpenAI shows), or raw reasoning text where a server returns it. */
function reasoningText(item: Json): string | undefined {
  const parts = [...arr(item.summary), ...arr(item.content)].filter(isObject).map((p) => str(p.text)).filter((t) => t !== undefined);
  return parts.length > 0 ? parts.join("\n") : undefined;
}

function responsesUsage(u: unknown): ParsedAiResponse["usage"] {
  if (!isObject(u)) return undefined;
  const input = isObject(u.input_tokens_details) ? u.input_tokens_details : {};
  const output = isObject(u.output_tokens_details) ? u.output_tokens_details : {};
  return usageOf({
    promptTokens: count(u.input_tokens),
    completionTokens: count(u.output_tokens),
    totalTokens: count(u.total_tokens),
    cachedTokens: count(input.cached_tokens),
    reasoningTokens: count(output.reasoning_tokens),
  });
}

function finishOf(r: Json, hasToolCalls: boolean): { reason: FinishReason; raw: string } | undefined {
  const status = str(r.status);
  switch (status) {
    case "completed":
      return { reason: hasToolCalls ? "tool_calls" : "stop", raw: status };
    case "incomplete": {
      const why = isObject(r.incomplete_details) ? str(r.incomplete_details.reason) : undefined;
      const reason: FinishReason = why === "max_output_tokens" ? "length" : why === "content_filter" ? "content_filter" : "other";
      return { reason, raw: why ?? status };
    }
    case "failed":
      return { reason: "error", raw: status };
    case "cancelled":
      return { reason: "other", raw: status };
    default:
      return undefined;
  }
}

interface StreamItem {
  kind: "message" | "call" | "reasoning" | "other";
  text: string;
  call?: AiToolCall;
}

const TERMINAL = new Set(["response.completed", "response.incomplete", "response.failed", "error"]);

function parseStream(res: HttpResponseRecord, out: ParsedAiResponse): ParsedAiResponse {
  const { events, dropped } = timedSseEvents(res.chunks, res.endTs);
  const items = new Map<number, StreamItem>();
  let badEvents = dropped;
  let terminal = false;
  let final: Json | undefined;

  const itemAt = (index: unknown, kind: StreamItem["kind"]): StreamItem | undefined => {
    const i = count(index) ?? 0;
    let item = items.get(i);
    if (!item) {
      if (items.size >= MAX_STREAM_ITEMS) return undefined;
      item = { kind, text: "" };
      items.set(i, item);
    }
    return item;
  };

  for (const ev of events) {
    const e = eventJson(ev);
    if (!e) {
      badEvents++;
      continue;
    }
    const type = str(e.type) ?? ev.event ?? "";
    let carriesToken = false;
    switch (type) {
      case "response.created":
      case "response.in_progress":
        if (isObject(e.response)) {
          if (!out.providerRequestId && str(e.response.id)) out.providerRequestId = str(e.response.id);
          if (str(e.response.model)) out.model = str(e.response.model);
        }
        break;
      case "response.output_item.added":
      case "response.output_item.done": {
        if (!isObject(e.item)) break;
        const call = outputToolCall(e.item);
        const kind = call ? "call" : e.item.type === "message" ? "message" : e.item.type === "reasoning" ? "reasoning" : "other";
        const item = itemAt(e.output_index, kind);
        if (!item) break;
        item.kind = kind;
        if (call) {
          // added: id and name, arguments usually empty; done: the whole call, authoritative.
          if (type === "response.output_item.done" || !item.call) item.call = { ...call, arguments: call.arguments || item.call?.arguments || "" };
        } else if (type === "response.output_item.done") {
          const text = kind === "message" ? outputText(e.item) : kind === "reasoning" ? reasoningText(e.item) : undefined;
          if (text !== undefined) item.text = text;
        }
        break;
      }
      case "response.output_text.delta":
      case "response.refusal.delta":
      case "response.reasoning_summary_text.delta":
      case "response.reasoning_text.delta": {
        const delta = str(e.delta);
        const item = itemAt(e.output_index, type.startsWith("response.reasoning") ? "reasoning" : "message");
        if (item && delta) {
          item.text += delta;
          carriesToken = true;
        }
        break;
      }
      case "response.function_call_arguments.delta":
      case "response.custom_tool_call_input.delta": {
        const delta = str(e.delta);
        const item = itemAt(e.output_index, "call");
        if (item && delta) {
          item.call ??= compact({ id: undefined, name: "", arguments: "" });
          item.call.arguments += delta;
          carriesToken = true;
        }
        break;
      }
      case "response.function_call_arguments.done": {
        const item = itemAt(e.output_index, "call");
        const args = str(e.arguments);
        if (item && args !== undefined) {
          item.call ??= { name: str(e.name) ?? "", arguments: "" };
          item.call.arguments = args;
        }
        break;
      }
      case "response.completed":
      case "response.incomplete":
      case "response.failed":
        if (isObject(e.response)) final = e.response;
        break;
      case "error": {
        out.success = false;
        out.error = compact({ type: str(e.code) ?? "error", message: str(e.message), code: str(e.code) });
        out.finishReason = "error";
        break;
      }
      default:
        break; // content_part.*, output_text.done, annotations, web search progress...
    }
    if (TERMINAL.has(type)) terminal = true;
    if (carriesToken) out.firstTokenTs ??= ev.ts;
  }

  const ordered = byIndex(items);
  out.toolCalls = ordered.filter((i) => i.kind === "call" && i.call).map((i) => i.call!);
  const texts = ordered.filter((i) => i.kind === "message" && i.text !== "").map((i) => i.text);
  if (texts.length > 0) out.content = texts.join("");
  const thoughts = ordered.filter((i) => i.kind === "reasoning" && i.text !== "").map((i) => i.text);
  if (thoughts.length > 0) out.thinking = thoughts.join("\n");
  // The terminal response object has usage, status and the final output; the deltas win for content
  // unless none arrived (a stream seen from its end only).
  if (final) applyResponseObject(out, final, out.content === undefined && out.toolCalls.length === 0 && out.thinking === undefined);

  if (!terminal || !res.complete || res.bodyTruncated) out.incomplete = true;
  if (badEvents > 0) out.parseError = `${badEvents} stream event(s) could not be decoded`;
  return out;
}
