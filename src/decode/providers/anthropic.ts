// Anthropic Messages API (/v1/messages): system + content blocks → ParsedAiRequest; the message, or
// its SSE stream (message_start … message_stop), → ParsedAiResponse.
import type { HttpResponseRecord } from "../types.ts";
import {
  byIndex,
  applyBodyError,
  applyIdAndModel,
  arr,
  baseResponse,
  compact,
  count,
  errorFromJson,
  eventJson,
  isEventStream,
  isObject,
  jsonBody,
  mapAnthropicStop,
  MAX_STREAM_ITEMS,
  setFinish,
  num,
  str,
  timedSseEvents,
  unparsedResponse,
  usageOf,
  type Json,
} from "./common.ts";
import { builtinToolType } from "./openai-chat.ts";
import type { AiMessage, AiToolCall, AiToolDefinition, AiUsage, ParsedAiRequest, ParsedAiResponse } from "./types.ts";

type RequestFields = Pick<ParsedAiRequest, "model" | "streaming" | "messages" | "system" | "tools" | "toolChoice" | "parameters" | "thinking">;

// ---------------------------------------------------------------------------------------------
// Request

export function anthropicRequestFields(body: Json): RequestFields {
  const stop = arr(body.stop_sequences).filter((s): s is string => typeof s === "string");
  return compact({
    model: str(body.model),
    streaming: body.stream === true,
    system: typeof body.system === "string" ? body.system : blocksText(body.system),
    messages: arr(body.messages).filter(isObject).flatMap(messagesOf),
    tools: arr(body.tools).filter(isObject).map(toolOf),
    toolChoice: toolChoiceOf(body.tool_choice),
    parameters: compact({
      temperature: num(body.temperature),
      top_p: num(body.top_p),
      max_tokens: count(body.max_tokens),
      stop: stop.length > 0 ? stop : undefined,
    }),
    thinking: thinkingOf(body.thinking),
  });
}

function blocksText(blocks: unknown): string | undefined {
  const texts = arr(blocks).filter(isObject).map((b) => (b.type === "text" ? str(b.text) : undefined)).filter((t) => t !== undefined);
  return texts.length > 0 ? texts.join("\n") : undefined;
}

/**
 * One Anthropic message can hold text, images, tool_use (assistant) and tool_result (user) blocks.
 * Tool results become "tool" messages of their own, as in the OpenAI shape the events use.
 */
function messagesOf(m: Json): AiMessage[] {
  const role = m.role === "assistant" ? "assistant" : "user";
  if (typeof m.content === "string") return [{ role, content: m.content }];
  const texts: string[] = [];
  const toolCalls: AiToolCall[] = [];
  const results: AiMessage[] = [];
  let images = 0;
  for (const b of arr(m.content)) {
    if (!isObject(b)) continue;
    switch (b.type) {
      case "text":
        if (typeof b.text === "string") texts.push(b.text);
        break;
      case "image":
        images++;
        break;
      case "tool_use":
        toolCalls.push(compact({ id: str(b.id), name: str(b.name) ?? "", arguments: JSON.stringify(b.input ?? {}) }));
        break;
      case "tool_result": {
        const content = typeof b.content === "string" ? b.content : blocksText(b.content);
        const resultImages = arr(b.content).filter((c) => isObject(c) && c.type === "image").length;
        const isError = typeof b.is_error === "boolean" ? b.is_error : undefined;
        results.push(compact({ role: "tool" as const, toolCallId: str(b.tool_use_id), content, imageCount: resultImages > 0 ? resultImages : undefined, isError }));
        break;
      }
      default:
        break; // thinking, redacted_thinking, documents, server tool blocks: no conversation text
    }
  }
  const out: AiMessage[] = [...results];
  if (texts.length > 0 || images > 0 || toolCalls.length > 0 || results.length === 0) {
    out.push(
      compact({
        role,
        content: texts.length > 0 ? texts.join("\n") : undefined,
        imageCount: images > 0 ? images : undefined,
        toolCalls: toolCalls.length > 0 ? toolCalls : undefined,
      }),
    );
  }
  return out;
}

function toolOf(t: Json): AiToolDefinition {
  // Client tools have no type (or "custom"); server tools are versioned types such as "web_search_20250305".
  const type = str(t.type);
  return compact({ name: str(t.name) ?? type ?? "", type: type === undefined || type === "custom" ? "function" : builtinToolType(type), description: str(t.description) });
}

function toolChoiceOf(v: unknown): string | undefined {
  if (!isObject(v)) return undefined;
  switch (v.type) {
    case "auto":
    case "none":
      return v.type;
    case "any":
      return "required";
    case "tool":
      return "specific";
    default:
      return str(v.type);
  }
}

function thinkingOf(v: unknown): ParsedAiRequest["thinking"] {
  if (!isObject(v)) return undefined;
  return compact({ enabled: v.type === "enabled" || v.type === "adaptive", budgetTokens: count(v.budget_tokens) });
}

// ---------------------------------------------------------------------------------------------
// Response

export function parseAnthropicResponse(res: HttpResponseRecord): ParsedAiResponse {
  const out = baseResponse(res);
  const early = unparsedResponse(res, out);
  if (early) return early;
  return isEventStream(res) ? parseStream(res, out) : parseWhole(res, out);
}

function anthropicUsage(u: unknown, into: AiUsage = {}): AiUsage {
  if (!isObject(u)) return into;
  // message_delta repeats only what changed; later values are cumulative, so they replace.
  const set = (key: keyof AiUsage, v: unknown) => {
    const n = count(v);
    if (n !== undefined) into[key] = n;
  };
  set("promptTokens", u.input_tokens);
  set("completionTokens", u.output_tokens);
  set("cachedTokens", u.cache_read_input_tokens);
  set("cacheWriteTokens", u.cache_creation_input_tokens);
  return into;
}

function parseWhole(res: HttpResponseRecord, out: ParsedAiResponse): ParsedAiResponse {
  const body = jsonBody(res, out);
  if (!body) return out;
  applyBodyError(out, body);
  applyIdAndModel(out, body);
  const texts: string[] = [];
  const thoughts: string[] = [];
  for (const b of arr(body.content)) {
    if (!isObject(b)) continue;
    if (b.type === "text" && typeof b.text === "string") texts.push(b.text);
    else if (b.type === "thinking" && typeof b.thinking === "string") thoughts.push(b.thinking);
    else if (b.type === "tool_use") out.toolCalls.push(compact({ id: str(b.id), name: str(b.name) ?? "", arguments: JSON.stringify(b.input ?? {}) }));
  }
  if (texts.length > 0) out.content = texts.join("");
  if (thoughts.length > 0) out.thinking = thoughts.join("\n");
  setFinish(out, body.stop_reason, mapAnthropicStop);
  const usage = usageOf(anthropicUsage(body.usage));
  if (usage) out.usage = usage;
  if (!res.complete || res.bodyTruncated) out.incomplete = true;
  return out;
}

interface Block {
  type: string;
  text: string;
  call?: AiToolCall;
  /** tool_use input given whole in content_block_start, used when no input_json_delta follows. */
  initialInput?: unknown;
}

function parseStream(res: HttpResponseRecord, out: ParsedAiResponse): ParsedAiResponse {
  const { events, dropped } = timedSseEvents(res.chunks, res.endTs);
  const blocks = new Map<number, Block>();
  const usage: AiUsage = {};
  let badEvents = dropped;
  let terminal = false;

  for (const ev of events) {
    const e = eventJson(ev);
    if (!e) {
      badEvents++;
      continue;
    }
    const type = str(e.type) ?? ev.event ?? "";
    let carriesToken = false;
    switch (type) {
      case "message_start": {
        const m = isObject(e.message) ? e.message : {};
        if (!out.providerRequestId && str(m.id)) out.providerRequestId = str(m.id);
        if (str(m.model)) out.model = str(m.model);
        anthropicUsage(m.usage, usage);
        break;
      }
      case "content_block_start": {
        const index = count(e.index) ?? 0;
        const cb = isObject(e.content_block) ? e.content_block : {};
        if (blocks.size >= MAX_STREAM_ITEMS && !blocks.has(index)) break;
        const block: Block = { type: str(cb.type) ?? "other", text: str(cb.text) ?? str(cb.thinking) ?? "" };
        if (block.type === "tool_use") {
          block.call = compact({ id: str(cb.id), name: str(cb.name) ?? "", arguments: "" });
          block.initialInput = cb.input;
        }
        if (block.text !== "") carriesToken = true;
        blocks.set(index, block);
        break;
      }
      case "content_block_delta": {
        const block = blocks.get(count(e.index) ?? 0);
        const d = isObject(e.delta) ? e.delta : {};
        if (!block) break;
        const piece = d.type === "text_delta" ? str(d.text) : d.type === "thinking_delta" ? str(d.thinking) : undefined;
        if (piece !== undefined) {
          block.text += piece;
          if (piece !== "") carriesToken = true;
        } else if (d.type === "input_json_delta" && block.call) {
          const part = str(d.partial_json) ?? "";
          block.call.arguments += part;
          if (part !== "") carriesToken = true;
        }
        break; // signature_delta, citations_delta: nothing to show
      }
      case "message_delta": {
        const d = isObject(e.delta) ? e.delta : {};
        setFinish(out, d.stop_reason, mapAnthropicStop);
        anthropicUsage(e.usage, usage);
        break;
      }
      case "message_stop":
        terminal = true;
        break;
      case "error": {
        out.success = false;
        out.error = errorFromJson(e) ?? { type: "error" };
        out.finishReason = "error";
        terminal = true;
        break;
      }
      default:
        break; // ping, content_block_stop
    }
    if (carriesToken) out.firstTokenTs ??= ev.ts;
  }

  const ordered = byIndex(blocks);
  const thoughts = ordered.filter((b) => b.type === "thinking" && b.text !== "").map((b) => b.text);
  if (thoughts.length > 0) out.thinking = thoughts.join("\n");
  out.toolCalls = ordered
    .filter((b) => b.call)
    .map((b) => {
      const call = b.call!;
      // No input_json_delta at all: the input given in content_block_start is the whole input.
      if (call.arguments === "" && b.initialInput !== undefined) call.arguments = JSON.stringify(b.initialInput);
      return call;
    });
  const texts = ordered.filter((b) => b.type === "text").map((b) => b.text);
  // An empty text block opening a tool call is no content.
  if (texts.length > 0 && (texts.join("") !== "" || out.toolCalls.length === 0)) out.content = texts.join("");
  const u = usageOf(usage);
  if (u) out.usage = u;
  if (!terminal || !res.complete || res.bodyTruncated) out.incomplete = true;
  if (badEvents > 0) out.parseError = `${badEvents} stream event(s) could not be decoded`;
  return out;
}
