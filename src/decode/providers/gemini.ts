// Google Gemini API (generativelanguage.googleapis.com) and Gemini on Vertex AI
// (…/publishers/google/models/{model}:…): generateContent, streamGenerateContent (SSE with
// alt=sse, else one JSON array streamed element by element), embedContent, batchEmbedContents.
// The model is in the path. The API key (x-goog-api-key or ?key=) is reduced to a fingerprint and
// the query string never reaches the endpoint URL.
import type { EndpointMatch } from "../../spec/types.ts";
import { JsonArrayStreamParser } from "../json-array-stream.ts";
import { headerValue, type HttpRequestRecord, type HttpResponseRecord } from "../types.ts";
import {
  arr,
  authFromHeaders,
  baseRequest,
  baseResponse,
  bodyText,
  compact,
  count,
  decodeText,
  describeKey,
  errorFromJson,
  eventJson,
  isEventStream,
  isObject,
  jsonRequestBody,
  num,
  parseJson,
  str,
  timedSseEvents,
  unparsedResponse,
  usageOf,
  type Json,
} from "./common.ts";
import type { AiAuth, AiMessage, AiToolCall, AiToolDefinition, AiUsage, FinishReason, ParsedAiRequest, ParsedAiResponse } from "./types.ts";

type GeminiAction = "generateContent" | "streamGenerateContent" | "embedContent" | "batchEmbedContents";

const ACTION = /\/models\/([^/?#:]+):(generateContent|streamGenerateContent|embedContent|batchEmbedContents)(?:[?#]|$)/;

/** Model and action named by a Gemini path, e.g. /v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse. */
export function geminiRoute(path: string): { model: string; action: GeminiAction } | undefined {
  const m = ACTION.exec(path);
  if (!m) return undefined;
  let model = m[1]!;
  try {
    model = decodeURIComponent(model);
  } catch {}
  return { model, action: m[2] as GeminiAction };
}

/** x-goog-api-key, then ?key=, then Authorization (Vertex uses OAuth access tokens). */
export function geminiAuth(req: HttpRequestRecord): AiAuth {
  const header = headerValue(req.headers, "x-goog-api-key")?.trim();
  const query = queryParam(req.path, "key");
  const key = header || query;
  if (key) return describeKey(key, "api_key");
  return authFromHeaders(req.headers);
}

function queryParam(path: string, name: string): string | undefined {
  const q = path.indexOf("?");
  if (q === -1) return undefined;
  try {
    return new URLSearchParams(path.slice(q + 1).replace(/#.*$/, "")).get(name) ?? undefined;
  } catch {
    return undefined;
  }
}

export function parseGeminiRequest(req: HttpRequestRecord, match: EndpointMatch): ParsedAiRequest | undefined {
  if (req.method.toUpperCase() !== "POST") return undefined;
  const route = geminiRoute(req.path);
  if (!route) return undefined;
  const embedding = route.action === "embedContent" || route.action === "batchEmbedContents";
  const out = baseRequest(req, match, {
    requestType: embedding ? "embedding" : "chat",
    model: route.model,
    streaming: route.action === "streamGenerateContent",
    auth: geminiAuth(req),
  });
  const body = jsonRequestBody(req, out);
  if (!body) return out;
  if (route.action === "embedContent") {
    out.inputCount = 1;
    out.messages = contentToMessages(body.content);
    return out;
  }
  if (route.action === "batchEmbedContents") {
    const requests = arr(body.requests).filter(isObject);
    out.inputCount = requests.length;
    return out;
  }
  out.messages = contentsToMessages(body.contents);
  const system = partsText(isObject(body.systemInstruction) ? body.systemInstruction.parts : body.systemInstruction);
  if (system !== undefined) out.system = system;
  out.tools = arr(body.tools).filter(isObject).flatMap(toolsOf);
  const mode = isObject(body.toolConfig) && isObject(body.toolConfig.functionCallingConfig) ? str(body.toolConfig.functionCallingConfig.mode) : undefined;
  if (mode) out.toolChoice = mode.toLowerCase();
  const gen = isObject(body.generationConfig) ? body.generationConfig : {};
  const stop = arr(gen.stopSequences).filter((s): s is string => typeof s === "string");
  out.parameters = compact({
    temperature: num(gen.temperature),
    top_p: num(gen.topP),
    max_tokens: count(gen.maxOutputTokens),
    frequency_penalty: num(gen.frequencyPenalty),
    presence_penalty: num(gen.presencePenalty),
    stop: stop.length > 0 ? stop : undefined,
  });
  if (isObject(gen.thinkingConfig)) {
    const t = gen.thinkingConfig;
    const budget = typeof t.thinkingBudget === "number" ? t.thinkingBudget : undefined;
    out.thinking = compact({ enabled: budget !== 0, budgetTokens: budget !== undefined && budget > 0 ? budget : undefined, effort: str(t.thinkingLevel)?.toLowerCase() });
  }
  return out;
}

/** Text parts joined; undefined when there is no text at all. */
function partsText(parts: unknown): string | undefined {
  if (typeof parts === "string") return parts;
  const texts = arr(parts)
    .filter(isObject)
    .filter((p) => typeof p.text === "string" && p.thought !== true)
    .map((p) => p.text as string);
  return texts.length > 0 ? texts.join("\n") : undefined;
}

function contentsToMessages(contents: unknown): AiMessage[] {
  if (typeof contents === "string") return [{ role: "user", content: contents }];
  if (isObject(contents)) return contentToMessages(contents);
  return arr(contents).flatMap(contentToMessages);
}

/** One Content → its message, plus one tool message per functionResponse part. */
function contentToMessages(content: unknown): AiMessage[] {
  if (!isObject(content)) return [];
  const role = content.role === "model" ? "assistant" : content.role === "function" || content.role === "tool" ? "tool" : "user";
  const parts = arr(content.parts).filter(isObject);
  const out: AiMessage[] = [];
  const message: AiMessage = { role };
  const text = partsText(parts);
  if (text !== undefined) message.content = text;
  const images = parts.filter((p) => mimeOf(p)?.startsWith("image/")).length;
  if (images > 0) message.imageCount = images;
  const calls: AiToolCall[] = parts.filter((p) => isObject(p.functionCall)).map((p) => callOf(p.functionCall as Json));
  if (calls.length > 0) message.toolCalls = calls;
  const responses = parts.filter((p) => isObject(p.functionResponse)).map((p) => p.functionResponse as Json);
  if (message.content !== undefined || message.toolCalls || message.imageCount || responses.length === 0) out.push(message);
  for (const r of responses) {
    out.push(compact({ role: "tool" as const, name: str(r.name), toolCallId: str(r.id), content: JSON.stringify(r.response ?? {}) }));
  }
  return out;
}

function mimeOf(part: Json): string | undefined {
  const blob = isObject(part.inlineData) ? part.inlineData : isObject(part.fileData) ? part.fileData : undefined;
  return blob ? str(blob.mimeType ?? blob.mime_type) : undefined;
}

function callOf(fc: Json): AiToolCall {
  return compact({ id: str(fc.id), name: str(fc.name) ?? "", arguments: JSON.stringify(fc.args ?? {}) });
}

function toolsOf(tool: Json): AiToolDefinition[] {
  const out: AiToolDefinition[] = [];
  for (const key of ["functionDeclarations", "function_declarations"]) {
    for (const f of arr(tool[key]).filter(isObject)) out.push(compact({ name: str(f.name) ?? "", type: "function" as const, description: str(f.description) }));
  }
  if ("codeExecution" in tool || "code_execution" in tool) out.push({ name: "code_execution", type: "code_interpreter" });
  for (const builtin of ["googleSearch", "googleSearchRetrieval", "urlContext", "googleMaps", "computerUse", "fileSearch"]) {
    if (builtin in tool) out.push({ name: builtin, type: builtin === "computerUse" ? "computer_use" : builtin === "fileSearch" ? "file_search" : "other" });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Response

const FINISH: Record<string, FinishReason> = {
  STOP: "stop",
  MAX_TOKENS: "length",
  SAFETY: "content_filter",
  RECITATION: "content_filter",
  BLOCKLIST: "content_filter",
  PROHIBITED_CONTENT: "content_filter",
  SPII: "content_filter",
  IMAGE_SAFETY: "content_filter",
  MALFORMED_FUNCTION_CALL: "error",
  UNEXPECTED_TOOL_CALL: "error",
};

/** Accumulates GenerateContentResponse objects (one for a plain call, many for a stream). */
class GeminiAccumulator {
  texts: string[] = [];
  thoughts: string[] = [];
  calls: AiToolCall[] = [];
  usage: AiUsage = {};
  rawFinish?: string;
  model?: string;
  responseId?: string;
  firstTokenTs?: number;
  blockReason?: string;
  error?: ParsedAiResponse["error"];
  dimensions?: number;

  add(body: Json, ts: number): void {
    const error = errorFromJson(body);
    if (error) this.error = error;
    this.model ??= str(body.modelVersion);
    this.responseId ??= str(body.responseId);
    if (isObject(body.promptFeedback) && str(body.promptFeedback.blockReason)) this.blockReason = str(body.promptFeedback.blockReason);
    const candidate = arr(body.candidates).filter(isObject)[0];
    if (candidate) {
      let token = false;
      for (const part of arr(isObject(candidate.content) ? candidate.content.parts : undefined).filter(isObject)) {
        if (typeof part.text === "string") {
          (part.thought === true ? this.thoughts : this.texts).push(part.text);
          if (part.text !== "") token = true;
        } else if (isObject(part.functionCall)) {
          this.calls.push(callOf(part.functionCall));
          token = true;
        }
      }
      if (token) this.firstTokenTs ??= ts;
      if (str(candidate.finishReason)) this.rawFinish = str(candidate.finishReason);
    }
    const u = body.usageMetadata;
    if (isObject(u)) {
      // Each streamed chunk carries the running totals: the last one wins.
      const set = (k: keyof AiUsage, v: unknown) => {
        const n = count(v);
        if (n !== undefined) this.usage[k] = n;
      };
      set("promptTokens", u.promptTokenCount);
      set("completionTokens", u.candidatesTokenCount);
      set("totalTokens", u.totalTokenCount);
      set("cachedTokens", u.cachedContentTokenCount);
      set("reasoningTokens", u.thoughtsTokenCount);
    }
    const embedding = isObject(body.embedding) ? body.embedding : isObject(arr(body.embeddings)[0]) ? (arr(body.embeddings)[0] as Json) : undefined;
    if (embedding) this.dimensions = arr(embedding.values).length;
  }

  finish(out: ParsedAiResponse): void {
    if (this.model) out.model = this.model;
    if (!out.providerRequestId && this.responseId) out.providerRequestId = this.responseId;
    if (this.texts.length > 0) out.content = this.texts.join("");
    if (this.thoughts.length > 0) out.thinking = this.thoughts.join("");
    out.toolCalls = this.calls;
    if (this.rawFinish) {
      out.rawFinishReason = this.rawFinish;
      const mapped = Object.hasOwn(FINISH, this.rawFinish) ? FINISH[this.rawFinish]! : "other";
      // Gemini ends a function-calling turn with STOP; the caller has tools to run.
      out.finishReason = mapped === "stop" && this.calls.length > 0 ? "tool_calls" : mapped;
    }
    if (this.blockReason) {
      out.rawFinishReason ??= this.blockReason;
      out.finishReason = "content_filter";
    }
    if (this.error) {
      out.success = false;
      out.error = this.error;
      out.finishReason = "error";
    }
    const usage = usageOf(this.usage);
    if (usage) out.usage = usage;
    if (this.dimensions !== undefined) out.dimensions = this.dimensions;
    if (this.firstTokenTs !== undefined) out.firstTokenTs = this.firstTokenTs;
  }
}

export function parseGeminiResponse(request: ParsedAiRequest, res: HttpResponseRecord): ParsedAiResponse {
  const out = baseResponse(res);
  if (!out.providerRequestId) {
    const id = headerValue(res.headers, "x-goog-request-id");
    if (id) out.providerRequestId = id;
  }
  const early = unparsedResponse(res, out);
  if (early) return early;
  const acc = new GeminiAccumulator();
  let bad = 0;
  let ended = true;
  if (isEventStream(res)) {
    const { events, dropped } = timedSseEvents(res.chunks, res.endTs);
    bad += dropped;
    for (const ev of events) {
      const body = eventJson(ev);
      if (body) acc.add(body, ev.ts);
      else if (ev.data.trim() !== "") bad++;
    }
    ended = acc.rawFinish !== undefined || acc.error !== undefined;
  } else if (request.streaming && firstNonSpace(res) === "[") {
    const parser = new JsonArrayStreamParser();
    for (const chunk of res.chunks) {
      for (const item of parser.push(chunk.data)) {
        if (item.type === "value" && isObject(item.value)) acc.add(item.value, chunk.ts);
        else bad++;
      }
    }
    for (const item of parser.end()) if (item.type === "error") bad++;
    ended = parser.complete;
  } else {
    const parsed = parseJson(bodyText(res));
    const values = parsed.ok ? (Array.isArray(parsed.value) ? parsed.value : [parsed.value]) : [];
    if (!parsed.ok) {
      out.parseError = `malformed JSON: ${parsed.error}`;
      ended = false;
    }
    for (const v of values) {
      if (isObject(v)) acc.add(v, res.firstBodyTs ?? res.endTs);
      else bad++;
    }
  }
  acc.finish(out);
  if (!request.streaming) delete out.firstTokenTs;
  if (bad > 0) out.parseError = `${bad} stream element(s) could not be decoded`;
  if (!ended || !res.complete || res.bodyTruncated) out.incomplete = true;
  return out;
}

function firstNonSpace(res: HttpResponseRecord): string | undefined {
  for (const chunk of res.chunks) {
    const m = /\S/.exec(decodeText(chunk.data.subarray(0, 64)));
    if (m) return m[0];
  }
  return undefined;
}
