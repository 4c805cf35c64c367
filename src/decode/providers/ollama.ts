// Ollama's native API (usually http://localhost:11434): /api/chat, /api/generate, /api/embed and the
// older /api/embeddings. Streaming is on unless the body says "stream": false, and streams are NDJSON
// (one JSON object per line, the last with "done": true and the counts). prompt_eval_count and
// eval_count are the prompt and completion tokens. Its OpenAI-compatible /v1/* routes are not here.
import type { EndpointMatch } from "../../spec/types.ts";
import { NdjsonParser } from "../ndjson.ts";
import type { HttpRequestRecord, HttpResponseRecord } from "../types.ts";
import { arr, baseRequest, baseResponse, compact, count, functionTool, functionToolCall, isObject, jsonRequestBody, num, pathOnly, statusError, str, undecodedResponse, usageOf, type Json } from "./common.ts";
import type { AiMessage, AiToolCall, FinishReason, ParsedAiRequest, ParsedAiResponse } from "./types.ts";

type OllamaRoute = "chat" | "generate" | "embed" | "embeddings";

export function ollamaRoute(path: string): OllamaRoute | undefined {
  const m = /(?:^|\/)api\/(chat|generate|embed|embeddings)$/.exec(pathOnly(path).replace(/\/+$/, ""));
  return m ? (m[1] as OllamaRoute) : undefined;
}

export function parseOllamaRequest(req: HttpRequestRecord, match: EndpointMatch): ParsedAiRequest | undefined {
  if (req.method.toUpperCase() !== "POST") return undefined;
  const route = ollamaRoute(req.path);
  if (!route) return undefined;
  const embedding = route === "embed" || route === "embeddings";
  const out = baseRequest(req, match, { requestType: embedding ? "embedding" : route === "generate" ? "completion" : "chat", streaming: !embedding });
  const body = jsonRequestBody(req, out);
  if (!body) return out;
  const model = str(body.model);
  if (model) out.model = model;
  if (embedding) {
    const input = body.input ?? body.prompt;
    out.inputCount = Array.isArray(input) ? input.length : input !== undefined ? 1 : 0;
    return out;
  }
  // Ollama streams unless told not to.
  out.streaming = body.stream !== false;
  const options = isObject(body.options) ? body.options : {};
  const stop = arr(options.stop).filter((s): s is string => typeof s === "string");
  out.parameters = compact({
    temperature: num(options.temperature),
    top_p: num(options.top_p),
    max_tokens: typeof options.num_predict === "number" && options.num_predict >= 0 ? options.num_predict : undefined,
    frequency_penalty: num(options.frequency_penalty),
    presence_penalty: num(options.presence_penalty),
    stop: stop.length > 0 ? stop : undefined,
  });
  if (body.think !== undefined) {
    out.thinking = compact({ enabled: body.think !== false, effort: typeof body.think === "string" ? body.think : undefined });
  }
  if (route === "chat") {
    const messages = arr(body.messages).filter(isObject).map(messageOf);
    const system = messages.filter((m) => m.role === "system").map((m) => m.content ?? "");
    if (system.length > 0) out.system = system.join("\n");
    out.messages = messages.filter((m) => m.role !== "system");
    out.tools = arr(body.tools).filter(isObject).map(functionTool);
  } else {
    const system = str(body.system);
    if (system) out.system = system;
    const prompt = str(body.prompt);
    const images = arr(body.images).length;
    if (prompt !== undefined) out.messages = [compact({ role: "user" as const, content: prompt, imageCount: images > 0 ? images : undefined })];
  }
  return out;
}

function messageOf(m: Json): AiMessage {
  const role = (["system", "assistant", "tool"].includes(String(m.role)) ? m.role : "user") as AiMessage["role"];
  const calls = arr(m.tool_calls).filter(isObject).map(functionToolCall);
  const images = arr(m.images).length;
  return compact({
    role,
    content: str(m.content),
    name: str(m.tool_name) ?? str(m.name),
    toolCallId: str(m.tool_call_id),
    toolCalls: calls.length > 0 ? calls : undefined,
    imageCount: images > 0 ? images : undefined,
  });
}

// ---------------------------------------------------------------------------------------------
// Response

const DONE: Record<string, FinishReason> = { stop: "stop", length: "length", load: "other", unload: "other" };

export function parseOllamaResponse(request: ParsedAiRequest, res: HttpResponseRecord): ParsedAiResponse {
  const out = baseResponse(res);
  if (res.decodeError !== undefined) return undecodedResponse(res, out);
  const parser = new NdjsonParser();
  const state = { done: false, bad: 0, text: undefined as string | undefined, thinking: undefined as string | undefined, calls: [] as AiToolCall[] };
  // A plain JSON body (stream: false, embeddings, errors) is one NDJSON line too: same code path.
  for (const chunk of res.chunks) for (const item of parser.push(chunk.data)) item.type === "value" ? apply(out, state, item.value, chunk.ts, request) : state.bad++;
  for (const item of parser.end()) item.type === "value" ? apply(out, state, item.value, res.endTs, request) : state.bad++;
  if (state.text !== undefined) out.content = state.text;
  if (state.thinking !== undefined && state.thinking !== "") out.thinking = state.thinking;
  out.toolCalls = state.calls;
  if (!out.success && !out.error) out.error = statusError(res);
  if (!request.streaming) delete out.firstTokenTs;
  const chat = request.requestType !== "embedding";
  if ((chat && out.success && !state.done) || !res.complete || res.bodyTruncated) out.incomplete = true;
  if (state.bad > 0) out.parseError = `${state.bad} line(s) of the body could not be decoded`;
  return out;
}

function apply(out: ParsedAiResponse, state: { done: boolean; text?: string; thinking?: string; calls: AiToolCall[] }, value: unknown, ts: number, request: ParsedAiRequest): void {
  if (!isObject(value)) return;
  if (typeof value.error === "string") {
    out.success = false;
    out.error = { type: "error", message: value.error };
    out.finishReason = "error";
    return;
  }
  if (str(value.model)) out.model = str(value.model);
  let token = false;
  const message = isObject(value.message) ? value.message : undefined;
  const text = message ? str(message.content) : str(value.response);
  if (text !== undefined) {
    state.text = (state.text ?? "") + text;
    if (text !== "") token = true;
  }
  const thinking = message ? str(message.thinking) : str(value.thinking);
  if (thinking !== undefined) {
    state.thinking = (state.thinking ?? "") + thinking;
    if (thinking !== "") token = true;
  }
  if (message && state.calls.length < 256) {
    const calls = arr(message.tool_calls).filter(isObject).map(functionToolCall);
    if (calls.length > 0) token = true;
    state.calls.push(...calls);
  }
  if (token) out.firstTokenTs ??= ts;
  const embeddings = Array.isArray(value.embeddings) ? arr(value.embeddings)[0] : value.embedding;
  if (Array.isArray(embeddings)) out.dimensions = embeddings.length;
  if (value.done === true || (request.requestType === "embedding" && (embeddings !== undefined || value.prompt_eval_count !== undefined))) {
    state.done = true;
    const raw = str(value.done_reason);
    if (raw) {
      out.rawFinishReason = raw;
      out.finishReason = Object.hasOwn(DONE, raw) ? DONE[raw]! : "other";
      if (out.finishReason === "stop" && state.calls.length > 0) out.finishReason = "tool_calls";
    }
    const promptTokens = count(value.prompt_eval_count);
    const completionTokens = count(value.eval_count);
    const usage = usageOf({ promptTokens, completionTokens, totalTokens: promptTokens !== undefined && completionTokens !== undefined ? promptTokens + completionTokens : undefined });
    if (usage) out.usage = usage;
  }
}
