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
import type { ParsedAiRequest, ParsedAiResponse, RequestType } from "./types.ts";

export type { ParsedAiRequest, ParsedAiResponse } from "./types.ts";

/** The API an exchange speaks; decides both parsers. */
export type ApiKind = "openai-chat" | "openai-completion" | "openai-responses" | "openai-embeddings" | "anthropic-messages";

const REQUEST_TYPE: Record<ApiKind, RequestType> = {
  "openai-chat": "chat",
  "openai-completion": "completion",
  "openai-responses": "chat",
  "openai-embeddings": "embedding",
  "anthropic-messages": "chat",
};

/**
 * The API a request path speaks. OpenAI-style paths are recognised whatever the provider's declared
 * format (Ollama, vLLM, Anthropic and Google all serve OpenAI-compatible routes too); Anthropic's
 * /v1/messages only for Anthropic-format providers or under an /anthropic/ prefix, since other
 * servers use "messages" for other things.
 */
export function apiKindOf(path: string, match: EndpointMatch): ApiKind | undefined {
  const p = pathOnly(path).replace(/\/+$/, "");
  if (/\/chat\/completions$/.test(p)) return "openai-chat";
  if (/\/embeddings$/.test(p)) return "openai-embeddings";
  if (/(?:^|\/)(?:v1|openai)\/responses$/.test(p) || p === "/responses") return "openai-responses";
  if (/(?:^|\/)(?:v1|openai|engines\/[^/]+|deployments\/[^/]+)\/completions$/.test(p) || p === "/completions") return "openai-completion";
  // Anthropic-compatible routes of other providers live under an /anthropic/ prefix (DeepSeek, Moonshot...).
  if ((match.apiFormat === "anthropic" || /\/anthropic\//.test(p)) && /(?:^|\/)v1\/messages$/.test(p)) return "anthropic-messages";
  // Claude on Vertex AI: the Messages body, the model in the path.
  if (/\/publishers\/anthropic\/models\/[^/]+:(?:stream)?rawPredict$/i.test(p)) return "anthropic-messages";
  return undefined;
}

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

/**
 * Providers with an API of their own. Their OpenAI-compatible routes (Ollama's /v1/chat/completions,
 * Gemini's /v1beta/openai/...) are recognised by apiKindOf first; only the rest reaches these.
 */
const NATIVE_PARSERS: Partial<
  Record<EndpointMatch["apiFormat"], {
    request: (req: HttpRequestRecord, match: EndpointMatch) => ParsedAiRequest | undefined;
    response: (request: ParsedAiRequest, res: HttpResponseRecord) => ParsedAiResponse;
  }>
> = {
  google: { request: parseGeminiRequest, response: parseGeminiResponse },
  bedrock: { request: parseBedrockRequest, response: parseBedrockResponse },
  cohere: { request: parseCohereRequest, response: parseCohereResponse },
  ollama: { request: parseOllamaRequest, response: parseOllamaResponse },
};

/** Parses one request; undefined when it is not an AI call (GET /v1/models, health checks...). */
export function parseAiRequest(req: HttpRequestRecord, match: EndpointMatch): ParsedAiRequest | undefined {
  try {
    if (req.method.toUpperCase() !== "POST") return undefined;
    const kind = apiKindOf(req.path, match);
    if (!kind) return NATIVE_PARSERS[match.apiFormat]?.request(req, match);
    const base = baseRequest(req, match, { requestType: REQUEST_TYPE[kind], streaming: false });
    const parsed = requestJson(req);
    if (parsed.value) Object.assign(base, fieldsOf(kind, parsed.value));
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

function fieldsOf(kind: ApiKind, body: Json): Partial<ParsedAiRequest> {
  switch (kind) {
    case "openai-chat":
      return chatRequestFields(body);
    case "openai-completion":
      return completionRequestFields(body);
    case "openai-responses":
      return responsesRequestFields(body);
    case "openai-embeddings":
      return embeddingRequestFields(body);
    case "anthropic-messages":
      return anthropicRequestFields(body);
  }
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
    const kind = kindOf(request);
    switch (kind) {
      case "openai-chat":
        return parseChatResponse(res, "chat");
      case "openai-completion":
        return parseChatResponse(res, "completion");
      case "openai-responses":
        return parseResponsesResponse(res);
      case "openai-embeddings":
        return parseEmbeddingResponse(res);
      case "anthropic-messages":
        return parseAnthropicResponse(res);
      default: {
        const native = NATIVE_PARSERS[request.apiFormat as EndpointMatch["apiFormat"]];
        if (native) return native.response(request, res);
        return { statusCode: res.status, success: res.status >= 200 && res.status < 300, toolCalls: [] };
      }
    }
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

/** The response is read the way its request was: the kind follows from the request's endpoint path. */
function kindOf(request: ParsedAiRequest): ApiKind | undefined {
  let path = "";
  try {
    path = new URL(request.endpoint).pathname;
  } catch {
    return undefined;
  }
  return apiKindOf(path, { provider: request.provider, apiFormat: request.apiFormat as EndpointMatch["apiFormat"], host: "" });
}
