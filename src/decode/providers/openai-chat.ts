// OpenAI Chat Completions (and the legacy Completions API), as spoken by OpenAI and every
// OpenAI-compatible provider: request body → ParsedAiRequest, JSON or SSE response → ParsedAiResponse.
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
  mapOpenAiFinish,
  MAX_STREAM_ITEMS,
  num,
  setFinish,
  str,
  timedSseEvents,
  unparsedResponse,
  usageOf,
  type Json,
} from "./common.ts";
import type { AiMessage, AiToolCall, AiToolDefinition, AiUsage, ParsedAiRequest, ParsedAiResponse } from "./types.ts";

type RequestFields = Pick<ParsedAiRequest, "model" | "streaming" | "messages" | "system" | "tools" | "toolChoice" | "parameters" | "thinking">;

// ---------------------------------------------------------------------------------------------
// Request

export function chatRequestFields(body: Json): RequestFields {
  const messages = arr(body.messages).filter(isObject).map(chatMessage);
  return compact({
    model: str(body.model),
    streaming: body.stream === true,
    messages,
    tools: chatTools(body),
    toolChoice: toolChoice(body.tool_choice ?? body.function_call),
    parameters: parameters(body),
    thinking: reasoningEffort(str(body.reasoning_effort)),
  });
}

/** Legacy /v1/completions: the prompt is the user's message. */
export function completionRequestFields(body: Json): RequestFields {
  const prompt = body.prompt;
  const text = typeof prompt === "string" ? prompt : arr(prompt).every((p) => typeof p === "string") ? arr(prompt).join("\n") : undefined;
  return compact({
    model: str(body.model),
    streaming: body.stream === true,
    messages: text !== undefined ? [{ role: "user" as const, content: text }] : [],
    tools: [],
    parameters: parameters(body),
  });
}

export function reasoningEffort(effort: string | undefined): ParsedAiRequest["thinking"] {
  if (effort === undefined) return undefined;
  return { enabled: effort !== "none", effort };
}

function chatMessage(m: Json): AiMessage {
  const { text, images } = contentText(m.content);
  const toolCalls = arr(m.tool_calls).filter(isObject).map(toolCallOf);
  const legacyCall = isObject(m.function_call) ? functionCallOf(m.function_call) : undefined;
  if (legacyCall) toolCalls.push(legacyCall);
  return compact({
    role: messageRole(m.role),
    content: text,
    name: str(m.name),
    toolCallId: str(m.tool_call_id),
    imageCount: images > 0 ? images : undefined,
    toolCalls: toolCalls.length > 0 ? toolCalls : undefined,
  });
}

export function messageRole(role: unknown): AiMessage["role"] {
  switch (role) {
    case "system":
    case "developer": // OpenAI's newer name for system instructions
      return "system";
    case "assistant":
    case "model":
      return "assistant";
    case "tool":
      return "tool";
    case "function":
      return "function";
    default:
      return "user";
  }
}

/** String content, or parts: text parts joined with "\n", images counted. */
export function contentText(content: unknown): { text?: string; images: number } {
  if (typeof content === "string") return { text: content, images: 0 };
  if (!Array.isArray(content)) return { images: 0 };
  const texts: string[] = [];
  let images = 0;
  for (const part of content) {
    if (typeof part === "string") texts.push(part);
    else if (isObject(part)) {
      const type = str(part.type) ?? "";
      if (type === "image_url" || type === "image" || type === "input_image") images++;
      else if (typeof part.text === "string") texts.push(part.text);
      else if (typeof part.refusal === "string") texts.push(part.refusal);
    }
  }
  return { text: texts.length > 0 ? texts.join("\n") : undefined, images };
}

function toolCallOf(tc: Json): AiToolCall {
  const fn = isObject(tc.function) ? tc.function : {};
  return compact({ id: str(tc.id), name: str(fn.name) ?? "", arguments: argumentsText(fn.arguments) });
}

function functionCallOf(fc: Json): AiToolCall {
  return { name: str(fc.name) ?? "", arguments: argumentsText(fc.arguments) };
}

/** Arguments are JSON text on the wire; a few compatible servers send an object instead. */
function argumentsText(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === undefined || v === null) return "";
  return JSON.stringify(v);
}

function chatTools(body: Json): AiToolDefinition[] {
  const tools: AiToolDefinition[] = [];
  for (const t of arr(body.tools)) {
    if (!isObject(t)) continue;
    const fn = isObject(t.function) ? t.function : undefined;
    if (fn) tools.push(compact({ name: str(fn.name) ?? "", type: "function" as const, description: str(fn.description) }));
    else tools.push(compact({ name: str(t.name) ?? str(t.type) ?? "", type: builtinToolType(str(t.type)), description: str(t.description) }));
  }
  for (const f of arr(body.functions)) {
    if (isObject(f)) tools.push(compact({ name: str(f.name) ?? "", type: "function" as const, description: str(f.description) }));
  }
  return tools;
}

export function builtinToolType(type: string | undefined): AiToolDefinition["type"] {
  if (type === undefined || type === "function" || type === "custom") return "function";
  if (type.startsWith("code_interpreter") || type.startsWith("code_execution")) return "code_interpreter";
  if (type.startsWith("file_search")) return "file_search";
  if (type.startsWith("computer")) return "computer_use";
  return "other";
}

/** "auto" | "none" | "required", or "specific" when one tool is forced (the OISP vocabulary). */
export function toolChoice(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (!isObject(v)) return undefined;
  if (v.type === "allowed_tools") return str(v.mode) ?? "auto";
  return "specific";
}

function parameters(body: Json): ParsedAiRequest["parameters"] {
  const stop = body.stop;
  return compact({
    temperature: num(body.temperature),
    top_p: num(body.top_p),
    max_tokens: count(body.max_completion_tokens) ?? count(body.max_tokens),
    frequency_penalty: num(body.frequency_penalty),
    presence_penalty: num(body.presence_penalty),
    stop: typeof stop === "string" ? [stop] : Array.isArray(stop) ? stop.filter((s): s is string => typeof s === "string") : undefined,
  });
}

// ---------------------------------------------------------------------------------------------
// Response

/** Which body shape: chat (`message` / `delta`) or legacy completion (`text`). */
export type ChatFlavor = "chat" | "completion";

export function parseChatResponse(res: HttpResponseRecord, flavor: ChatFlavor): ParsedAiResponse {
  const out = baseResponse(res);
  const early = unparsedResponse(res, out);
  if (early) return early;
  return isEventStream(res) ? parseStream(res, out, flavor) : parseWhole(res, out, flavor);
}

/** The first choice (index 0 or none): a loop, not find() with a closure per response. */
function firstChoice(choices: unknown[]): Json | undefined {
  for (const c of choices) if (isObject(c) && (c.index === undefined || c.index === 0)) return c;
  return undefined;
}

function parseWhole(res: HttpResponseRecord, out: ParsedAiResponse, flavor: ChatFlavor): ParsedAiResponse {
  const body = jsonBody(res, out);
  if (!body) return out;
  applyBodyError(out, body);
  applyIdAndModel(out, body);
  const choice = firstChoice(arr(body.choices));
  if (choice) {
    if (flavor === "completion") {
      if (typeof choice.text === "string") out.content = choice.text;
    } else if (isObject(choice.message)) {
      const m = choice.message;
      const { text } = contentText(m.content);
      if (text !== undefined) out.content = text;
      else if (typeof m.refusal === "string") out.content = m.refusal;
      const thinking = str(m.reasoning_content) ?? str(m.reasoning);
      if (thinking) out.thinking = thinking;
      out.toolCalls = arr(m.tool_calls).filter(isObject).map(toolCallOf);
      if (isObject(m.function_call)) out.toolCalls.push(functionCallOf(m.function_call));
    }
    setFinish(out, choice.finish_reason, mapOpenAiFinish);
  }
  const usage = chatUsage(body);
  if (usage) out.usage = usage;
  if (!res.complete || res.bodyTruncated) out.incomplete = true;
  return out;
}

/** usage, or Groq's x_groq.usage on its last streamed chunk. */
function chatUsage(body: Json): AiUsage | undefined {
  const u = isObject(body.usage) ? body.usage : isObject(body.x_groq) && isObject(body.x_groq.usage) ? body.x_groq.usage : undefined;
  if (!u) return undefined;
  const prompt = isObject(u.prompt_tokens_details) ? u.prompt_tokens_details : {};
  const completion = isObject(u.completion_tokens_details) ? u.completion_tokens_details : {};
  return usageOf({
    promptTokens: count(u.prompt_tokens),
    completionTokens: count(u.completion_tokens),
    totalTokens: count(u.total_tokens),
    // DeepSeek reports cache hits at the top level.
    cachedTokens: count(prompt.cached_tokens) ?? count(u.prompt_cache_hit_tokens),
    reasoningTokens: count(completion.reasoning_tokens),
  });
}

interface PendingCall {
  id?: string;
  name: string;
  arguments: string;
}

function parseStream(res: HttpResponseRecord, out: ParsedAiResponse, flavor: ChatFlavor): ParsedAiResponse {
  const { events, dropped } = timedSseEvents(res.chunks, res.endTs);
  let content: string | undefined;
  let thinking: string | undefined;
  const calls = new Map<number, PendingCall>();
  let done = false;
  let badEvents = dropped;
  let bodyId: string | undefined;

  for (const ev of events) {
    if (ev.data.trim() === "[DONE]") {
      done = true;
      continue;
    }
    const chunk = eventJson(ev);
    if (!chunk) {
      badEvents++;
      continue;
    }
    const error = errorFromJson(chunk);
    if (error) {
      out.success = false;
      out.error = error;
      out.finishReason = "error";
      continue;
    }
    bodyId ??= str(chunk.id);
    if (str(chunk.model)) out.model ??= str(chunk.model);
    const usage = chatUsage(chunk);
    if (usage) out.usage = usage;
    let carriesToken = false;
    for (const choice of arr(chunk.choices)) {
      if (!isObject(choice) || (choice.index !== undefined && choice.index !== 0)) continue;
      if (flavor === "completion") {
        if (typeof choice.text === "string" && choice.text !== "") {
          content = (content ?? "") + choice.text;
          carriesToken = true;
        }
      } else if (isObject(choice.delta)) {
        const d = choice.delta;
        const text = str(d.content) ?? str(d.refusal);
        if (text !== undefined) {
          content = (content ?? "") + text;
          if (text !== "") carriesToken = true;
        }
        const reasoning = str(d.reasoning_content) ?? str(d.reasoning);
        if (reasoning) {
          thinking = (thinking ?? "") + reasoning;
          carriesToken = true;
        }
        for (const tc of arr(d.tool_calls)) if (isObject(tc) && mergeToolDelta(calls, tc)) carriesToken = true;
        if (isObject(d.function_call) && mergeToolDelta(calls, { index: 0, function: d.function_call })) carriesToken = true;
      }
      setFinish(out, choice.finish_reason, mapOpenAiFinish);
    }
    if (carriesToken) out.firstTokenTs ??= ev.ts;
  }

  if (!out.providerRequestId && bodyId) out.providerRequestId = bodyId;
  out.toolCalls = byIndex(calls).map((c) => compact({ ...c }));
  // The opening `content: ""` of a tool-call-only answer is no content (the whole response says null).
  if (content !== undefined && !(content === "" && out.toolCalls.length > 0)) out.content = content;
  if (thinking !== undefined) out.thinking = thinking;
  // [DONE] is the terminal event; a finish reason with a clean end is accepted from servers that omit it.
  const terminal = done || (out.finishReason !== undefined && res.complete);
  if (!terminal || !res.complete || res.bodyTruncated) out.incomplete = true;
  if (badEvents > 0) out.parseError = `${badEvents} stream event(s) could not be decoded`;
  return out;
}

/**
 * Some compatible servers (Gemini's, some Mistral versions) omit `index` and send each call whole:
 * a new id is a new call, a known id continues its call, no id continues the last one.
 */
function indexWithoutIndex(calls: Map<number, PendingCall>, id: string | undefined): number {
  const last = calls.size === 0 ? -1 : Math.max(...calls.keys());
  if (id === undefined) return Math.max(last, 0);
  for (const [i, c] of calls) if (c.id === id) return i;
  return last + 1;
}

/** Streamed tool calls arrive in pieces keyed by index: id and name first, then argument fragments. */
function mergeToolDelta(calls: Map<number, PendingCall>, tc: Json): boolean {
  const index = count(tc.index) ?? indexWithoutIndex(calls, str(tc.id));
  let call = calls.get(index);
  if (!call) {
    if (calls.size >= MAX_STREAM_ITEMS) return false;
    call = { name: "", arguments: "" };
    calls.set(index, call);
  }
  const fn = isObject(tc.function) ? tc.function : {};
  if (str(tc.id)) call.id ??= str(tc.id);
  if (str(fn.name)) call.name ||= str(fn.name)!;
  const args = argumentsText(fn.arguments);
  call.arguments += args;
  return args !== "" || str(fn.name) !== undefined;
}
