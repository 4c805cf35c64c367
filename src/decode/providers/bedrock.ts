// AWS Bedrock runtime (bedrock-runtime.{region}.amazonaws.com): Converse and ConverseStream (one
// format for every model), InvokeModel and InvokeModelWithResponseStream (the model's own body:
// Anthropic Messages, Amazon Nova, Meta Llama, Mistral, OpenAI-style, Titan; embeddings). The model id
// is in the path, URL-encoded. Streams are AWS event streams (CRC-checked). SigV4 credentials are
// reduced to the access key id's kind (AKIA long-term, ASIA temporary) and a fingerprint.
import type { EndpointMatch } from "../../spec/types.ts";
import { EventStreamDecoder, type EventStreamMessage } from "../eventstream.ts";
import { headerValue, type HttpRequestRecord, type HttpResponseRecord, type TimedChunk } from "../types.ts";
import { anthropicRequestFields, parseAnthropicResponse } from "./anthropic.ts";
import {
  byIndex,
  arr,
  authFromHeaders,
  baseRequest,
  bodyText,
  compact,
  count,
  decodeText,
  isObject,
  jsonBody,
  jsonRequestBody,
  keyFingerprint,
  mapOpenAiFinish,
  num,
  parseJson,
  setFinish,
  statusLine,
  str,
  undecodedResponse,
  usageOf,
  type Json,
} from "./common.ts";
import type { AiAuth, AiMessage, AiToolCall, AiToolDefinition, AiUsage, ParsedAiRequest, ParsedAiResponse } from "./types.ts";

export type BedrockOperation = "invoke" | "invoke-with-response-stream" | "converse" | "converse-stream";

const ROUTE = /^\/model\/([^/]+)\/(invoke-with-response-stream|invoke|converse-stream|converse)\/?(?:[?#]|$)/;

export function bedrockRoute(path: string): { modelId: string; operation: BedrockOperation } | undefined {
  const m = ROUTE.exec(path);
  if (!m) return undefined;
  let modelId = m[1]!;
  try {
    modelId = decodeURIComponent(modelId);
  } catch {}
  return { modelId, operation: m[2] as BedrockOperation };
}

/** SigV4 `Credential=AKIA…/date/region/service/aws4_request` → the access key id's kind and fingerprint. */
export function bedrockAuth(req: HttpRequestRecord): AiAuth {
  const authorization = headerValue(req.headers, "authorization")?.trim() ?? "";
  const sigv4 = /^AWS4-HMAC-SHA256\s.*?Credential=([A-Z0-9]+)\//i.exec(authorization);
  if (sigv4) {
    const keyId = sigv4[1]!;
    const prefix = /^(AKIA|ASIA)/.exec(keyId)?.[1];
    return compact({ type: "api_key" as const, keyPrefix: prefix, keyHash: keyFingerprint(keyId) });
  }
  const auth = authFromHeaders(req.headers);
  // Bedrock API keys are bearer tokens starting "ABSK".
  const bearer = /^Bearer\s+(ABSK)\S+/i.exec(authorization);
  if (bearer && auth.keyPrefix === undefined) auth.keyPrefix = "ABSK";
  return auth;
}

/** Which request/response body an InvokeModel call carries, from the model id. */
type Family = "anthropic" | "nova" | "llama" | "mistral" | "titan-text" | "titan-embed" | "cohere-embed" | "openai" | "other";

function familyOf(modelId: string, body?: Json): Family {
  const id = modelId.toLowerCase();
  if (id.includes("anthropic.")) return "anthropic";
  if (id.includes("titan-embed") || id.includes("nova-2-multimodal-embeddings")) return "titan-embed";
  if (id.includes("cohere.embed")) return "cohere-embed";
  if (id.includes("amazon.nova")) return "nova";
  if (id.includes("amazon.titan")) return "titan-text";
  if (id.includes("meta.llama")) return "llama";
  if (id.includes("mistral.") && !(body && Array.isArray(body.messages))) return "mistral";
  if (body && Array.isArray(body.messages)) {
    // Nova-shaped bodies (content as an array of {text}) whatever the id (inference profiles, ARNs).
    const first = arr(body.messages).find(isObject);
    return first && Array.isArray(first.content) && arr(first.content).some((c) => isObject(c) && "text" in c && !("type" in c)) ? "nova" : "openai";
  }
  return "other";
}

export function parseBedrockRequest(req: HttpRequestRecord, match: EndpointMatch): ParsedAiRequest | undefined {
  if (req.method.toUpperCase() !== "POST") return undefined;
  const route = bedrockRoute(req.path);
  if (!route) return undefined;
  const out = baseRequest(req, match, {
    requestType: "chat",
    model: route.modelId,
    streaming: route.operation === "converse-stream" || route.operation === "invoke-with-response-stream",
    auth: bedrockAuth(req),
  });
  const body = jsonRequestBody(req, out);
  if (!body) return out;
  if (route.operation === "converse" || route.operation === "converse-stream") Object.assign(out, converseRequestFields(body));
  else Object.assign(out, invokeRequestFields(familyOf(route.modelId, body), body));
  out.model = route.modelId;
  return out;
}

function converseRequestFields(body: Json): Partial<ParsedAiRequest> {
  const inf = isObject(body.inferenceConfig) ? body.inferenceConfig : {};
  const system = arr(body.system)
    .filter(isObject)
    .map((b) => str(b.text))
    .filter((t): t is string => t !== undefined);
  const toolConfig = isObject(body.toolConfig) ? body.toolConfig : {};
  const tools: AiToolDefinition[] = arr(toolConfig.tools)
    .filter(isObject)
    .filter((t) => isObject(t.toolSpec))
    .map((t) => {
      const spec = t.toolSpec as Json;
      return compact({ name: str(spec.name) ?? "", type: "function" as const, description: str(spec.description) });
    });
  const choice = isObject(toolConfig.toolChoice) ? Object.keys(toolConfig.toolChoice)[0] : undefined;
  const extra = isObject(body.additionalModelRequestFields) ? body.additionalModelRequestFields : {};
  const thinking = isObject(extra.thinking) ? extra.thinking : isObject(extra.reasoningConfig) ? extra.reasoningConfig : undefined;
  return compact({
    messages: arr(body.messages).filter(isObject).flatMap(converseMessages),
    system: system.length > 0 ? system.join("\n") : undefined,
    tools,
    toolChoice: choice,
    parameters: parametersOf(inf.temperature, inf.topP, inf.maxTokens, inf.stopSequences),
    thinking: thinking ? compact({ enabled: thinking.type === "enabled" || thinking.type === "adaptive", budgetTokens: count(thinking.budget_tokens ?? thinking.maxReasoningEffort) }) : undefined,
  });
}

function parametersOf(temperature: unknown, topP: unknown, maxTokens: unknown, stop: unknown): ParsedAiRequest["parameters"] {
  const stops = arr(stop).filter((s): s is string => typeof s === "string");
  return compact({ temperature: num(temperature), top_p: num(topP), max_tokens: count(maxTokens), stop: stops.length > 0 ? stops : undefined });
}

/** A Converse/Nova message → the message, with toolResult blocks split out as tool messages. */
function converseMessages(m: Json): AiMessage[] {
  const role = m.role === "assistant" ? "assistant" : "user";
  const blocks = arr(m.content).filter(isObject);
  const texts = blocks.map((b) => str(b.text)).filter((t): t is string => t !== undefined);
  const message: AiMessage = { role };
  if (texts.length > 0) message.content = texts.join("\n");
  const images = blocks.filter((b) => isObject(b.image)).length;
  if (images > 0) message.imageCount = images;
  const calls = blocks.filter((b) => isObject(b.toolUse)).map((b) => toolUseCall(b.toolUse as Json));
  if (calls.length > 0) message.toolCalls = calls;
  const results = blocks.filter((b) => isObject(b.toolResult)).map((b) => b.toolResult as Json);
  const out: AiMessage[] = [];
  if (message.content !== undefined || calls.length > 0 || images > 0 || results.length === 0) out.push(message);
  for (const r of results) {
    const parts = arr(r.content)
      .filter(isObject)
      .map((c) => (typeof c.text === "string" ? c.text : c.json !== undefined ? JSON.stringify(c.json) : undefined))
      .filter((t): t is string => t !== undefined);
    const isError = r.status === "error" ? true : r.status === "success" ? false : undefined;
    out.push(compact({ role: "tool" as const, toolCallId: str(r.toolUseId), content: parts.join("\n"), isError }));
  }
  return out;
}

function toolUseCall(t: Json): AiToolCall {
  return compact({ id: str(t.toolUseId), name: str(t.name) ?? "", arguments: typeof t.input === "string" ? t.input : JSON.stringify(t.input ?? {}) });
}

function invokeRequestFields(family: Family, body: Json): Partial<ParsedAiRequest> {
  switch (family) {
    case "anthropic": {
      const fields = anthropicRequestFields(body);
      // InvokeModel picks streaming by operation, not by a body flag.
      const { streaming: _ignored, ...rest } = fields;
      return rest;
    }
    case "nova": {
      const inf = isObject(body.inferenceConfig) ? body.inferenceConfig : {};
      return { ...converseRequestFields({ ...body, inferenceConfig: {} }), parameters: parametersOf(inf.temperature, inf.topP ?? inf.top_p, inf.max_new_tokens ?? inf.maxTokens, inf.stopSequences) };
    }
    case "openai": {
      const messages: AiMessage[] = arr(body.messages)
        .filter(isObject)
        .map((m) => compact({ role: (["system", "assistant", "tool"].includes(String(m.role)) ? m.role : "user") as AiMessage["role"], content: typeof m.content === "string" ? m.content : undefined }));
      return { messages, parameters: parametersOf(body.temperature, body.top_p, body.max_tokens ?? body.max_completion_tokens, body.stop) };
    }
    case "llama":
    case "mistral":
      return { messages: promptMessages(body.prompt), parameters: parametersOf(body.temperature, body.top_p, body.max_gen_len ?? body.max_tokens, body.stop) };
    case "titan-text": {
      const cfg = isObject(body.textGenerationConfig) ? body.textGenerationConfig : {};
      return { messages: promptMessages(body.inputText), parameters: parametersOf(cfg.temperature, cfg.topP, cfg.maxTokenCount, cfg.stopSequences) };
    }
    case "titan-embed":
      return { requestType: "embedding", inputCount: body.inputText !== undefined || body.inputImage !== undefined ? 1 : undefined };
    case "cohere-embed":
      return { requestType: "embedding", inputCount: arr(body.texts).length || arr(body.images).length || undefined };
    case "other":
      return { messages: promptMessages(body.prompt ?? body.inputText) };
  }
}

function promptMessages(prompt: unknown): AiMessage[] {
  return typeof prompt === "string" ? [{ role: "user", content: prompt }] : [];
}

// ---------------------------------------------------------------------------------------------
// Response

function base(res: HttpResponseRecord): ParsedAiResponse {
  return compact({
    statusCode: res.status,
    success: res.status >= 200 && res.status < 300,
    providerRequestId: headerValue(res.headers, "x-amzn-requestid") ?? headerValue(res.headers, "x-amz-request-id"),
    toolCalls: [] as AiToolCall[],
  });
}

/** Bedrock errors: `{"message": "..."}` with the type in x-amzn-ErrorType ("ValidationException:http://…"). */
function bedrockError(res: HttpResponseRecord): NonNullable<ParsedAiResponse["error"]> {
  const text = bodyText(res);
  const parsed = parseJson(text);
  const body = parsed.ok && isObject(parsed.value) ? parsed.value : {};
  const type = headerValue(res.headers, "x-amzn-errortype")?.split(":")[0] ?? str(body.__type)?.split("#").pop();
  return compact({ type, message: str(body.message) ?? str(body.Message) ?? (text.trim().slice(0, 500) || statusLine(res)), code: String(res.status) });
}

const CONVERSE_STOP: Record<string, ParsedAiResponse["finishReason"]> = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  model_context_window_exceeded: "length",
  tool_use: "tool_calls",
  guardrail_intervened: "content_filter",
  content_filtered: "content_filter",
};

function setStop(out: ParsedAiResponse, raw: unknown): void {
  setFinish(out, raw, (r) => (Object.hasOwn(CONVERSE_STOP, r) ? CONVERSE_STOP[r]! : mapOpenAiFinish(r)));
}

function converseUsage(u: unknown): AiUsage {
  if (!isObject(u)) return {};
  return compact({
    promptTokens: count(u.inputTokens),
    completionTokens: count(u.outputTokens),
    totalTokens: count(u.totalTokens),
    cachedTokens: count(u.cacheReadInputTokens ?? u.cacheReadInputTokenCount),
    cacheWriteTokens: count(u.cacheWriteInputTokens ?? u.cacheWriteInputTokenCount),
  });
}

/** Token counts InvokeModel returns in headers, whatever the model. */
function headerUsage(res: HttpResponseRecord): AiUsage {
  const n = (name: string) => {
    const v = headerValue(res.headers, name);
    return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : undefined;
  };
  return compact({
    promptTokens: n("x-amzn-bedrock-input-token-count"),
    completionTokens: n("x-amzn-bedrock-output-token-count"),
    cachedTokens: n("x-amzn-bedrock-cache-read-input-token-count"),
    cacheWriteTokens: n("x-amzn-bedrock-cache-write-input-token-count"),
  });
}

function mergeUsage(out: ParsedAiResponse, extra: AiUsage): void {
  const merged = usageOf({ ...extra, ...(out.usage ?? {}) });
  if (merged) out.usage = merged;
}

export function parseBedrockResponse(request: ParsedAiRequest, res: HttpResponseRecord): ParsedAiResponse {
  const route = bedrockRoute(new URL(request.endpoint).pathname) ?? { modelId: request.model ?? "", operation: "invoke" as const };
  const out = base(res);
  if (res.decodeError !== undefined) return undecodedResponse(res, out);
  if (!out.success) {
    out.error = bedrockError(res);
    return out;
  }
  switch (route.operation) {
    case "converse":
      return converseWhole(res, out);
    case "converse-stream":
      return converseStream(res, out);
    case "invoke":
      return invokeWhole(route.modelId, res, out);
    case "invoke-with-response-stream":
      return invokeStream(route.modelId, res, out);
  }
}

/** Content blocks of a Converse / Nova output message. */
function applyContent(out: ParsedAiResponse, content: unknown): void {
  const texts: string[] = [];
  const thoughts: string[] = [];
  for (const b of arr(content).filter(isObject)) {
    if (typeof b.text === "string") texts.push(b.text);
    else if (isObject(b.toolUse)) out.toolCalls.push(toolUseCall(b.toolUse));
    else if (isObject(b.reasoningContent) && isObject(b.reasoningContent.reasoningText)) {
      const t = str(b.reasoningContent.reasoningText.text);
      if (t) thoughts.push(t);
    }
  }
  if (texts.length > 0) out.content = texts.join("");
  if (thoughts.length > 0) out.thinking = thoughts.join("\n");
}

function converseWhole(res: HttpResponseRecord, out: ParsedAiResponse): ParsedAiResponse {
  const body = jsonBody(res, out);
  if (!body) return out;
  const message = isObject(body.output) && isObject(body.output.message) ? body.output.message : {};
  applyContent(out, message.content);
  setStop(out, body.stopReason);
  const usage = usageOf(converseUsage(body.usage));
  if (usage) out.usage = usage;
  if (!res.complete || res.bodyTruncated) out.incomplete = true;
  return out;
}

interface TimedMessage {
  message: EventStreamMessage;
  ts: number;
}

/** The event-stream messages of a body, each stamped with the arrival of the chunk that completed it. */
function streamMessages(chunks: TimedChunk[]): { messages: TimedMessage[]; errors: string[]; fatal: boolean } {
  const dec = new EventStreamDecoder();
  const messages: TimedMessage[] = [];
  const errors: string[] = [];
  let fatal = false;
  const take = (items: ReturnType<EventStreamDecoder["push"]>, ts: number) => {
    for (const item of items) {
      if (item.type === "message") messages.push({ message: item.message, ts });
      else {
        errors.push(item.message);
        fatal ||= item.fatal;
      }
    }
  };
  for (const c of chunks) take(dec.push(c.data), c.ts);
  take(dec.end(), chunks[chunks.length - 1]?.ts ?? 0);
  return { messages, errors, fatal };
}

/** An exception message in the stream (throttling, validation, model errors) or undefined. */
function streamException(m: EventStreamMessage): NonNullable<ParsedAiResponse["error"]> | undefined {
  const kind = m.headers[":message-type"];
  if (kind !== "exception" && kind !== "error") return undefined;
  const parsed = parseJson(decodeText(m.payload));
  const body = parsed.ok && isObject(parsed.value) ? parsed.value : {};
  const type = String(m.headers[":exception-type"] ?? m.headers[":error-code"] ?? "exception");
  return compact({ type, message: str(body.message) ?? str(body.Message) ?? (m.headers[":error-message"] as string | undefined) });
}

function payloadJson(m: EventStreamMessage): Json | undefined {
  const parsed = parseJson(decodeText(m.payload));
  return parsed.ok && isObject(parsed.value) ? parsed.value : undefined;
}

function converseStream(res: HttpResponseRecord, out: ParsedAiResponse): ParsedAiResponse {
  const { messages, errors, fatal } = streamMessages(res.chunks);
  const texts = new Map<number, string>();
  const thoughts = new Map<number, string>();
  const calls = new Map<number, AiToolCall>();
  let stopped = false;
  let bad = errors.length;
  for (const { message, ts } of messages) {
    const exception = streamException(message);
    if (exception) {
      out.success = false;
      out.error = exception;
      out.finishReason = "error";
      stopped = true;
      continue;
    }
    const e = payloadJson(message);
    if (!e) {
      bad++;
      continue;
    }
    const index = count(e.contentBlockIndex) ?? 0;
    let token = false;
    switch (message.headers[":event-type"]) {
      case "contentBlockStart": {
        const start = isObject(e.start) ? e.start : {};
        if (isObject(start.toolUse) && calls.size < 256) {
          calls.set(index, compact({ id: str(start.toolUse.toolUseId), name: str(start.toolUse.name) ?? "", arguments: "" }));
          token = true;
        }
        break;
      }
      case "contentBlockDelta": {
        const d = isObject(e.delta) ? e.delta : {};
        if (typeof d.text === "string") {
          if (texts.size < 256 || texts.has(index)) texts.set(index, (texts.get(index) ?? "") + d.text);
          token = d.text !== "";
        } else if (isObject(d.toolUse)) {
          const call = calls.get(index);
          if (call) call.arguments += str(d.toolUse.input) ?? "";
          token = true;
        } else if (isObject(d.reasoningContent) && typeof d.reasoningContent.text === "string") {
          thoughts.set(index, (thoughts.get(index) ?? "") + d.reasoningContent.text);
          token = true;
        }
        break;
      }
      case "messageStop":
        setStop(out, e.stopReason);
        stopped = true;
        break;
      case "metadata": {
        const usage = usageOf(converseUsage(e.usage));
        if (usage) out.usage = usage;
        break;
      }
      default:
        break; // messageStart, contentBlockStop
    }
    if (token) out.firstTokenTs ??= ts;
  }
  if (texts.size > 0) out.content = byIndex(texts).join("");
  if (thoughts.size > 0) out.thinking = byIndex(thoughts).join("\n");
  out.toolCalls = byIndex(calls);
  if (!stopped || fatal || !res.complete || res.bodyTruncated) out.incomplete = true;
  if (bad > 0) out.parseError = `${bad} stream message(s) could not be decoded${errors[0] ? ` (${errors[0]})` : ""}`;
  return out;
}

function invokeWhole(modelId: string, res: HttpResponseRecord, out: ParsedAiResponse): ParsedAiResponse {
  const fromHeaders = headerUsage(res);
  const peek = parseJson(bodyText(res));
  const family = familyOf(modelId, undefined);
  if (family === "anthropic" || (peek.ok && isObject(peek.value) && peek.value.type === "message")) {
    const parsed = parseAnthropicResponse(res);
    parsed.providerRequestId = out.providerRequestId ?? parsed.providerRequestId;
    if (parsed.providerRequestId === undefined) delete parsed.providerRequestId;
    mergeUsage(parsed, fromHeaders);
    return parsed;
  }
  const body = jsonBody(res, out);
  if (!body) return out;
  applyModelBody(out, body);
  mergeUsage(out, fromHeaders);
  if (!res.complete || res.bodyTruncated) out.incomplete = true;
  return out;
}

/** Non-Anthropic InvokeModel bodies (whole, or one decoded stream chunk): text, stop and usage. */
function applyModelBody(out: ParsedAiResponse, body: Json): boolean {
  let token = false;
  const addText = (t: unknown) => {
    if (typeof t !== "string") return;
    out.content = (out.content ?? "") + t;
    if (t !== "") token = true;
  };
  if (isObject(body.output) && isObject(body.output.message)) {
    // Nova, whole.
    const before = out.toolCalls.length;
    const previous = out.content;
    applyContent(out, body.output.message.content);
    if (previous !== undefined && out.content !== undefined) out.content = previous + out.content;
    token = out.content !== previous || out.toolCalls.length > before;
    setStop(out, body.stopReason);
    mergeUsage(out, converseUsage(body.usage));
  } else if (isObject(body.contentBlockDelta)) {
    // Nova, streamed.
    const d = isObject(body.contentBlockDelta.delta) ? body.contentBlockDelta.delta : {};
    addText(d.text);
  } else if (isObject(body.messageStop)) {
    setStop(out, body.messageStop.stopReason);
  } else if (isObject(body.metadata)) {
    mergeUsage(out, converseUsage(body.metadata.usage));
  } else if (Array.isArray(body.choices)) {
    // OpenAI-style (gpt-oss, DeepSeek, Mistral chat): whole message or stream delta.
    const c = arr(body.choices).find(isObject) ?? {};
    const m = isObject(c.message) ? c.message : isObject(c.delta) ? c.delta : {};
    addText(m.content);
    if (str(c.finish_reason)) {
      out.rawFinishReason = str(c.finish_reason);
      out.finishReason = mapOpenAiFinish(out.rawFinishReason!);
    }
    if (isObject(body.usage)) mergeUsage(out, compact({ promptTokens: count(body.usage.prompt_tokens), completionTokens: count(body.usage.completion_tokens), totalTokens: count(body.usage.total_tokens) }));
  } else if ("generation" in body) {
    // Meta Llama.
    addText(body.generation);
    setStop(out, body.stop_reason);
    mergeUsage(out, compact({ promptTokens: count(body.prompt_token_count), completionTokens: count(body.generation_token_count) }));
  } else if (Array.isArray(body.outputs)) {
    // Mistral text completion.
    const o = arr(body.outputs).find(isObject) ?? {};
    addText(o.text);
    setStop(out, o.stop_reason);
  } else if (Array.isArray(body.results) || "outputText" in body) {
    // Titan text.
    const r = isObject(body.results) ? body.results : (arr(body.results).find(isObject) ?? body);
    addText(r.outputText);
    setStop(out, r.completionReason === "FINISH" ? "end_turn" : r.completionReason === "LENGTH" ? "max_tokens" : r.completionReason);
    mergeUsage(out, compact({ promptTokens: count(body.inputTextTokenCount), completionTokens: count(r.tokenCount ?? r.totalOutputTextTokenCount) }));
  } else if (Array.isArray(body.embedding)) {
    out.dimensions = body.embedding.length;
    mergeUsage(out, compact({ promptTokens: count(body.inputTextTokenCount) }));
  } else if (Array.isArray(body.embeddings) || isObject(body.embeddings)) {
    const e = isObject(body.embeddings) ? arr(body.embeddings.float)[0] : arr(body.embeddings)[0];
    if (Array.isArray(e)) out.dimensions = e.length;
  }
  return token;
}

/** Usage and stop reason Bedrock appends to the last chunk of every InvokeModel stream. */
function invocationMetrics(body: Json): AiUsage | undefined {
  const m = body["amazon-bedrock-invocationMetrics"];
  if (!isObject(m)) return undefined;
  return compact({
    promptTokens: count(m.inputTokenCount),
    completionTokens: count(m.outputTokenCount),
    cachedTokens: count(m.cacheReadInputTokenCount),
    cacheWriteTokens: count(m.cacheWriteInputTokenCount),
  });
}

function invokeStream(modelId: string, res: HttpResponseRecord, out: ParsedAiResponse): ParsedAiResponse {
  const { messages, errors, fatal } = streamMessages(res.chunks);
  let bad = errors.length;
  let exception: ParsedAiResponse["error"];
  let metrics: AiUsage | undefined;
  const decoded: Array<{ body: Json; ts: number }> = [];
  for (const { message, ts } of messages) {
    const ex = streamException(message);
    if (ex) {
      exception = ex;
      continue;
    }
    const e = payloadJson(message);
    const inner = e && typeof e.bytes === "string" ? parseJson(Buffer.from(e.bytes, "base64").toString("utf8")) : undefined;
    if (!inner?.ok || !isObject(inner.value)) {
      bad++;
      continue;
    }
    metrics = invocationMetrics(inner.value) ?? metrics;
    decoded.push({ body: inner.value, ts });
  }
  let result: ParsedAiResponse;
  if (familyOf(modelId) === "anthropic" || decoded.some((d) => d.body.type === "message_start")) {
    // The chunks are Anthropic stream events: replay them as the SSE stream they mirror.
    const chunks: TimedChunk[] = decoded.map((d) => ({ ts: d.ts, data: new TextEncoder().encode(`event: ${str(d.body.type) ?? "message"}\ndata: ${JSON.stringify(d.body)}\n\n`) }));
    result = parseAnthropicResponse({ ...res, headers: [["content-type", "text/event-stream"]], chunks, complete: res.complete && !fatal });
    delete result.providerRequestId;
    if (out.providerRequestId) result.providerRequestId = out.providerRequestId;
    if (result.parseError === undefined) delete result.parseError;
  } else {
    result = out;
    let stopped = false;
    for (const { body, ts } of decoded) {
      if (applyModelBody(result, body)) result.firstTokenTs ??= ts;
      if (result.rawFinishReason !== undefined) stopped = true;
    }
    if (!stopped && metrics === undefined) result.incomplete = true;
  }
  if (metrics) mergeUsage(result, metrics);
  if (exception) {
    result.success = false;
    result.error = exception;
    result.finishReason = "error";
  }
  if (fatal || !res.complete || res.bodyTruncated) result.incomplete = true;
  if (bad > 0) result.parseError = `${bad} stream message(s) could not be decoded${errors[0] ? ` (${errors[0]})` : ""}`;
  return result;
}

