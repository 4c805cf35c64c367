// Entry point of the provider parsers: which API a request speaks (from the provider's wire format
// and the path), and the matching request and response parsers. Never throws: anything unreadable
// comes back as what could be salvaged, marked with parseError / incomplete.
import type { EndpointMatch } from "../../spec/types.ts";
import type { HttpRequestRecord, HttpResponseRecord } from "../types.ts";
import { anthropicRequestFields, parseAnthropicResponse } from "./anthropic.ts";
import { baseRequest, pathOnly, requestJson, salvageScalars, type Json } from "./common.ts";
import { chatRequestFields, completionRequestFields, parseChatResponse } from "./openai-chat.ts";
import { embeddingRequestFields, parseEmbeddingResponse } from "./openai-embeddings.ts";
import { parseResponsesResponse, responsesRequestFields } from "./openai-responses.ts";
import { parseBedrockRequest, parseBedrockResponse } from "./bedrock.ts";
import { parseCohereRequest, parseCohereResponse } from "./cohere.ts";
import { parseGeminiRequest, parseGeminiResponse } from "./gemini.ts";
import { parseOllamaRequest, parseOllamaResponse } from "./ollama.ts";
import type { ApiKind, ParsedAiRequest, ParsedAiResponse, RequestType } from "./types.ts";

export type { ApiKind, ParsedAiRequest, ParsedAiResponse } from "./types.ts";

/** The routes recognised by their path, whatever the provider's own format. */
export type RouteApiKind = Extract<ApiKind, "openai-chat" | "openai-completion" | "openai-responses" | "openai-embeddings" | "anthropic-messages">;

interface Api {
  /** undefined when the request is not a call of this API (GET /v1/models, health checks...). */
  request(req: HttpRequestRecord, match: EndpointMatch): ParsedAiRequest | undefined;
  response(request: ParsedAiRequest, res: HttpResponseRecord): ParsedAiResponse;
}

/** The routes whose body is one JSON object: the common request fields, then the API's own. */
function jsonRoute(requestType: RequestType, fields: (body: Json) => Partial<ParsedAiRequest>, response: (res: HttpResponseRecord) => ParsedAiResponse): Api {
  return { request: (req, match) => parseJsonRouteRequest(req, match, requestType, fields), response: (_, res) => response(res) };
}

/** Every API, keyed by kind: the one place that says which parsers read it. */
const APIS: Record<ApiKind, Api> = {
  "openai-chat": jsonRoute("chat", chatRequestFields, (res) => parseChatResponse(res, "chat")),
  "openai-completion": jsonRoute("completion", completionRequestFields, (res) => parseChatResponse(res, "completion")),
  "openai-responses": jsonRoute("chat", responsesRequestFields, parseResponsesResponse),
  "openai-embeddings": jsonRoute("embedding", embeddingRequestFields, parseEmbeddingResponse),
  "anthropic-messages": jsonRoute("chat", anthropicRequestFields, parseAnthropicResponse),
  gemini: { request: parseGeminiRequest, response: parseGeminiResponse },
  bedrock: { request: parseBedrockRequest, response: parseBedrockResponse },
  cohere: { request: parseCohereRequest, response: parseCohereResponse },
  ollama: { request: parseOllamaRequest, response: parseOllamaResponse },
};

/**
 * Providers with an API of their own, by the bundle's apiFormat. Their OpenAI-compatible routes (Ollama's
 * /v1/chat/completions, Gemini's /v1beta/openai/...) are recognised by apiKindOf first; only the rest
 * reaches these.
 */
const NATIVE_API: Partial<Record<EndpointMatch["apiFormat"], ApiKind>> = {
  google: "gemini",
  bedrock: "bedrock",
  cohere: "cohere",
  ollama: "ollama",
};

/**
 * The API a request path speaks. OpenAI-style paths are recognised whatever the provider's declared
 * format (Ollama, vLLM, Anthropic and Google all serve OpenAI-compatible routes too); Anthropic's
 * /v1/messages only for Anthropic-format providers or under an /anthropic/ prefix, since other
 * servers use "messages" for other things.
 */
export function apiKindOf(path: string, match: EndpointMatch): RouteApiKind | undefined {
  const p = pathOnly(path).replace(TRAILING_SLASHES, "");
  if (ROUTES.chat.test(p)) return "openai-chat";
  if (ROUTES.embeddings.test(p)) return "openai-embeddings";
  if (ROUTES.responses.test(p) || p === "/responses") return "openai-responses";
  if (ROUTES.completions.test(p) || p === "/completions") return "openai-completion";
  // Anthropic-compatible routes of other providers live under an /anthropic/ prefix (DeepSeek, Moonshot...).
  if ((match.apiFormat === "anthropic" || ROUTES.anthropicPrefix.test(p)) && ROUTES.messages.test(p)) return "anthropic-messages";
  // Claude on Vertex AI: the Messages body, the model in the path.
  if (ROUTES.vertexClaude.test(p)) return "anthropic-messages";
  return undefined;
}

// Made once: a regex literal in a function is a new RegExp object per call (none has a g or y flag).
const TRAILING_SLASHES = /\/+$/;
const ROUTES = {
  chat: /\/chat\/completions$/,
  embeddings: /\/embeddings$/,
  responses: /(?:^|\/)(?:v1|openai)\/responses$/,
  completions: /(?:^|\/)(?:v1|openai|engines\/[^/]+|deployments\/[^/]+)\/completions$/,
  anthropicPrefix: /\/anthropic\//,
  messages: /(?:^|\/)v1\/messages$/,
  vertexClaude: /\/publishers\/anthropic\/models\/[^/]+:(?:stream)?rawPredict$/i,
};

/**
 * The model named by the path when the body has none: the deployment on Azure OpenAI
 * (/openai/deployments/{deployment}/...), the model on Vertex AI (.../models/{model}:rawPredict).
 */
function modelFromPath(path: string): string | undefined {
  const m = /\/deployments\/([^/?#]+)\//.exec(path) ?? /\/models\/([^/?#:]+):[A-Za-z]+(?:[?#]|$)/.exec(path);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return m[1];
  }
}

/** Parses one request; undefined when it is not an AI call (GET /v1/models, health checks...). */
export function parseAiRequest(req: HttpRequestRecord, match: EndpointMatch): ParsedAiRequest | undefined {
  try {
    if (req.method.toUpperCase() !== "POST") return undefined;
    const api = apiKindOf(req.path, match) ?? NATIVE_API[match.apiFormat];
    if (!api) return undefined;
    const parsed = APIS[api].request(req, match);
    if (parsed) parsed.api = api;
    return parsed;
  } catch (err) {
    // A parser bug must not lose the call: report it bare rather than not at all.
    return {
      provider: match.provider,
      apiFormat: match.apiFormat,
      endpoint: `https://${match.host}`,
      requestType: "other",
      streaming: false,
      messages: [],
      tools: [],
      parameters: {},
      auth: { type: "unknown" },
      parseError: `internal parser error: ${(err as Error).message}`,
    };
  }
}

function parseJsonRouteRequest(req: HttpRequestRecord, match: EndpointMatch, requestType: RequestType, fields: (body: Json) => Partial<ParsedAiRequest>): ParsedAiRequest {
  const base = baseRequest(req, match, { requestType, streaming: false });
  const parsed = requestJson(req);
  if (parsed.value) Object.assign(base, fields(parsed.value));
  else {
    // Still an AI call on a known route: report it with what the text reveals.
    const salvage = salvageScalars(parsed.text);
    if (salvage.model !== undefined) base.model = salvage.model;
    if (salvage.stream !== undefined) base.streaming = salvage.stream;
    base.parseError = parsed.error;
  }
  if (base.model === undefined) {
    const fromPath = modelFromPath(req.path);
    if (fromPath !== undefined) base.model = fromPath;
  }
  return base;
}

/**
 * Parses the response to a request this module parsed. A response whose connection ended before its body
 * did (upstream reset, client abort) is never a success, whatever the provider parser made of the part seen.
 */
export function parseAiResponse(request: ParsedAiRequest, res: HttpResponseRecord): ParsedAiResponse {
  const parsed = parseAiResponseBody(request, res);
  if (res.complete || !parsed.success) return parsed;
  return { ...parsed, success: false, incomplete: true, error: parsed.error ?? { type: "connection_closed", message: "the connection ended before the response did" } };
}

function parseAiResponseBody(request: ParsedAiRequest, res: HttpResponseRecord): ParsedAiResponse {
  try {
    // The response is read the way its request was (request.api); a request parsed elsewhere gets the status.
    if (request.api) return APIS[request.api].response(request, res);
    return { statusCode: res.status, success: res.status >= 200 && res.status < 300, toolCalls: [] };
  } catch (err) {
    return {
      statusCode: res.status,
      success: res.status >= 200 && res.status < 300,
      toolCalls: [],
      incomplete: true,
      parseError: `internal parser error: ${(err as Error).message}`,
    };
  }
}
