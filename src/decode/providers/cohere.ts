// Cohere chat v2 (/v2/chat: OpenAI-like messages, content blocks, tool calls with a tool plan;
// SSE stream of message-start … message-end) and embed (/v1/embed, /v2/embed). The legacy v1 chat
// (message + chat_history, NDJSON stream of text-generation … stream-end) is read too.
import type { EndpointMatch } from "../../spec/types.ts";
import { NdjsonParser } from "../ndjson.ts";
import type { HttpRequestRecord, HttpResponseRecord } from "../types.ts";
import {
  byIndex,
  applyBodyError,
  arr,
  baseRequest,
  baseResponse,
  bodyText,
  compact,
  count,
  eventJson,
  functionTool,
  functionToolCall,
  isEventStream,
  isObject,
  jsonBody,
  jsonRequestBody,
  MAX_STREAM_ITEMS,
  num,
  pathOnly,
  setFinish,
  str,
  timedSseEvents,
  unparsedResponse,
  usageOf,
  type Json,
} from "./common.ts";
import type { AiMessage, AiToolCall, AiUsage, FinishReason, ParsedAiRequest, ParsedAiResponse } from "./types.ts";

type CohereRoute = "chat-v2" | "chat-v1" | "embed";

export function cohereRoute(path: string): CohereRoute | undefined {
  const p = pathOnly(path).replace(/\/+$/, "");
  if (/(?:^|\/)v2\/chat$/.test(p)) return "chat-v2";
  if (/(?:^|\/)v1\/chat$/.test(p)) return "chat-v1";
  if (/(?:^|\/)v[12]\/embed$/.test(p)) return "embed";
  return undefined;
}

export function parseCohereRequest(req: HttpRequestRecord, match: EndpointMatch): ParsedAiRequest | undefined {
  if (req.method.toUpperCase() !== "POST") return undefined;
  const route = cohereRoute(req.path);
  if (!route) return undefined;
  const out = baseRequest(req, match, { requestType: route === "embed" ? "embedding" : "chat", streaming: false });
  const body = jsonRequestBody(req, out);
  if (!body) return out;
  const model = str(body.model);
  if (model) out.model = model;
  if (route === "embed") {
    const inputs = arr(body.texts).length || arr(body.images).length || arr(body.inputs).length;
    if (inputs > 0) out.inputCount = inputs;
    return out;
  }
  out.streaming = body.stream === true;
  const stop = arr(body.stop_sequences).filter((s): s is string => typeof s === "string");
  out.parameters = compact({
    temperature: num(body.temperature),
    top_p: num(body.p),
    max_tokens: count(body.max_tokens),
    frequency_penalty: num(body.frequency_penalty),
    presence_penalty: num(body.presence_penalty),
    stop: stop.length > 0 ? stop : undefined,
  });
  out.tools = arr(body.tools).filter(isObject).map(functionTool);
  const choice = str(body.tool_choice);
  if (choice) out.toolChoice = choice.toLowerCase();
  if (isObject(body.thinking)) out.thinking = compact({ enabled: body.thinking.type === "enabled", budgetTokens: count(body.thinking.token_budget) });
  if (route === "chat-v2") {
    const messages = arr(body.messages).filter(isObject).map(messageOf);
    const system = messages.filter((m) => m.role === "system").map((m) => m.content ?? "");
    if (system.length > 0) out.system = system.join("\n");
    out.messages = messages.filter((m) => m.role !== "system");
  } else {
    const preamble = str(body.preamble);
    if (preamble) out.system = preamble;
    for (const h of arr(body.chat_history).filter(isObject)) {
      const role = String(h.role).toUpperCase();
      out.messages.push(compact({ role: role === "CHATBOT" ? ("assistant" as const) : role === "TOOL" ? ("tool" as const) : role === "SYSTEM" ? ("system" as const) : ("user" as const), content: str(h.message) }));
    }
    const message = str(body.message);
    if (message !== undefined) out.messages.push({ role: "user", content: message });
  }
  return out;
}

function contentText(content: unknown): string | undefined {
  if (typeof content === "string") return content;
  const texts = arr(content)
    .filter(isObject)
    .filter((b) => b.type === "text" && typeof b.text === "string")
    .map((b) => b.text as string);
  return texts.length > 0 ? texts.join("\n") : undefined;
}

function messageOf(m: Json): AiMessage {
  const role = (["system", "assistant", "tool"].includes(String(m.role)) ? m.role : "user") as AiMessage["role"];
  const calls = arr(m.tool_calls).filter(isObject).map(functionToolCall);
  const images = arr(m.content).filter((b) => isObject(b) && b.type === "image_url").length;
  return compact({
    role,
    content: contentText(m.content) ?? (role === "assistant" ? str(m.tool_plan) : undefined),
    toolCallId: str(m.tool_call_id),
    toolCalls: calls.length > 0 ? calls : undefined,
    imageCount: images > 0 ? images : undefined,
  });
}

// ---------------------------------------------------------------------------------------------
// Response

const FINISH: Record<string, FinishReason> = {
  COMPLETE: "stop",
  STOP_SEQUENCE: "stop",
  MAX_TOKENS: "length",
  TOOL_CALL: "tool_calls",
  ERROR: "error",
  TIMEOUT: "error",
  ERROR_TOXIC: "content_filter",
  ERROR_LIMIT: "length",
};

function cohereFinish(raw: string): FinishReason {
  return Object.hasOwn(FINISH, raw) ? FINISH[raw]! : "other";
}

/** usage.tokens are what the model processed; billed_units what is charged. Prefer the former. */
function cohereUsage(u: unknown): AiUsage | undefined {
  if (!isObject(u)) return undefined;
  const tokens = isObject(u.tokens) ? u.tokens : isObject(u.billed_units) ? u.billed_units : {};
  const billed = isObject(u.billed_units) ? u.billed_units : {};
  return usageOf({
    promptTokens: count(tokens.input_tokens) ?? count(billed.input_tokens),
    completionTokens: count(tokens.output_tokens) ?? count(billed.output_tokens),
    cachedTokens: count(u.cached_tokens),
  });
}

export function parseCohereResponse(request: ParsedAiRequest, res: HttpResponseRecord): ParsedAiResponse {
  const out = baseResponse(res);
  const early = unparsedResponse(res, out);
  if (early) return early;
  if (isEventStream(res)) return parseV2Stream(res, out);
  const text = bodyText(res);
  if (request.streaming && /^\s*\{[^\n]*\}\s*\n/.test(text)) return parseV1Stream(res, out);
  const body = jsonBody(res, out, text);
  if (!body) return out;
  applyBodyError(out, body);
  if (!out.providerRequestId) {
    const id = str(body.id) ?? str(body.generation_id) ?? str(body.response_id);
    if (id) out.providerRequestId = id;
  }
  if (isObject(body.message)) {
    // v2 chat
    const m = body.message;
    const content = arr(m.content).filter(isObject);
    const text = content.filter((b) => b.type === "text").map((b) => str(b.text) ?? "");
    const thinking = content.filter((b) => b.type === "thinking").map((b) => str(b.thinking) ?? "");
    if (text.length > 0) out.content = text.join("");
    if (thinking.length > 0) out.thinking = thinking.join("\n");
    out.toolCalls = arr(m.tool_calls).filter(isObject).map(functionToolCall);
    if (out.content === undefined && out.toolCalls.length > 0 && str(m.tool_plan)) out.thinking ??= str(m.tool_plan);
  } else if (typeof body.text === "string") {
    // v1 chat
    out.content = body.text;
    out.toolCalls = arr(body.tool_calls).filter(isObject).map((c) => compact({ name: str(c.name) ?? "", arguments: JSON.stringify(c.parameters ?? {}) }));
  }
  const embeddings = isObject(body.embeddings) ? arr(body.embeddings.float ?? Object.values(body.embeddings)[0])[0] : arr(body.embeddings)[0];
  if (Array.isArray(embeddings)) out.dimensions = embeddings.length;
  setFinish(out, body.finish_reason, cohereFinish);
  const usage = cohereUsage(body.usage ?? body.meta);
  if (usage) out.usage = usage;
  if (!res.complete || res.bodyTruncated) out.incomplete = true;
  return out;
}

function parseV2Stream(res: HttpResponseRecord, out: ParsedAiResponse): ParsedAiResponse {
  const { events, dropped } = timedSseEvents(res.chunks, res.endTs);
  let bad = dropped;
  let ended = false;
  const blocks = new Map<number, { type: string; text: string }>();
  const calls = new Map<number, AiToolCall>();
  let plan = "";
  for (const ev of events) {
    const e = eventJson(ev);
    if (!e) {
      if (ev.data.trim() !== "") bad++;
      continue;
    }
    const type = str(e.type) ?? ev.event ?? "";
    const index = count(e.index) ?? 0;
    const message = isObject(e.delta) && isObject(e.delta.message) ? e.delta.message : {};
    let token = false;
    switch (type) {
      case "message-start":
        if (!out.providerRequestId && str(e.id)) out.providerRequestId = str(e.id);
        break;
      case "content-start":
      case "content-delta": {
        const c = isObject(message.content) ? message.content : {};
        if (!blocks.has(index) && blocks.size >= MAX_STREAM_ITEMS) break;
        const block = blocks.get(index) ?? { type: str(c.type) ?? "text", text: "" };
        const piece = str(c.text) ?? str(c.thinking) ?? "";
        if (str(c.thinking) !== undefined) block.type = "thinking";
        block.text += piece;
        blocks.set(index, block);
        token = piece !== "";
        break;
      }
      case "tool-plan-delta": {
        const piece = str(message.tool_plan) ?? "";
        plan += piece;
        token = piece !== ""; // the plan is generated text too
        break;
      }
      case "tool-call-start":
      case "tool-call-delta": {
        const tc = isObject(message.tool_calls) ? message.tool_calls : {};
        const f = isObject(tc.function) ? tc.function : {};
        let call = calls.get(index);
        if (!call) {
          if (calls.size >= MAX_STREAM_ITEMS) break;
          call = compact({ id: str(tc.id), name: str(f.name) ?? "", arguments: "" });
          calls.set(index, call);
        }
        call.arguments += str(f.arguments) ?? "";
        token = true;
        break;
      }
      case "message-end": {
        const d = isObject(e.delta) ? e.delta : {};
        setFinish(out, d.finish_reason, cohereFinish);
        const usage = cohereUsage(d.usage);
        if (usage) out.usage = usage;
        const error = str(d.error);
        if (error) {
          out.success = false;
          out.error = { type: "stream_error", message: error };
        }
        ended = true;
        break;
      }
      default:
        break; // content-end, tool-call-end, citation-start/-end, debug
    }
    if (token) out.firstTokenTs ??= ev.ts;
  }
  const ordered = byIndex(blocks);
  const text = ordered.filter((b) => b.type === "text").map((b) => b.text);
  const thinking = ordered.filter((b) => b.type === "thinking").map((b) => b.text);
  if (text.length > 0) out.content = text.join("");
  if (thinking.length > 0) out.thinking = thinking.join("\n");
  else if (plan !== "") out.thinking = plan;
  out.toolCalls = byIndex(calls);
  if (!ended || !res.complete || res.bodyTruncated) out.incomplete = true;
  if (bad > 0) out.parseError = `${bad} stream event(s) could not be decoded`;
  return out;
}

/** v1 chat stream: NDJSON of {event_type: stream-start | text-generation | tool-calls-generation | stream-end}. */
function parseV1Stream(res: HttpResponseRecord, out: ParsedAiResponse): ParsedAiResponse {
  const parser = new NdjsonParser();
  let bad = 0;
  let ended = false;
  let text: string | undefined;
  const handle = (value: unknown, ts: number) => {
    if (!isObject(value)) {
      bad++;
      return;
    }
    switch (value.event_type) {
      case "stream-start":
        if (!out.providerRequestId && str(value.generation_id)) out.providerRequestId = str(value.generation_id);
        break;
      case "text-generation":
        if (typeof value.text === "string") {
          text = (text ?? "") + value.text;
          if (value.text !== "") out.firstTokenTs ??= ts;
        }
        break;
      case "stream-end": {
        ended = true;
        setFinish(out, value.finish_reason, cohereFinish);
        const response = isObject(value.response) ? value.response : {};
        const usage = cohereUsage(response.meta);
        if (usage) out.usage = usage;
        out.toolCalls = arr(response.tool_calls).filter(isObject).map((c) => compact({ name: str(c.name) ?? "", arguments: JSON.stringify(c.parameters ?? {}) }));
        break;
      }
      default:
        break;
    }
  };
  for (const chunk of res.chunks) for (const item of parser.push(chunk.data)) item.type === "value" ? handle(item.value, chunk.ts) : bad++;
  for (const item of parser.end()) item.type === "value" ? handle(item.value, res.endTs) : bad++;
  if (text !== undefined) out.content = text;
  if (!ended || !res.complete || res.bodyTruncated) out.incomplete = true;
  if (bad > 0) out.parseError = `${bad} stream line(s) could not be decoded`;
  return out;
}
