// OpenAI-format embeddings (/v1/embeddings): how many inputs went in, the model, and the tokens and
// vector size that came back.
import type { HttpResponseRecord } from "../types.ts";
import {
  applyBodyError,
  applyIdAndModel,
  arr,
  baseResponse,
  compact,
  count,
  isObject,
  jsonBody,
  str,
  unparsedResponse,
  usageOf,
  type Json,
} from "./common.ts";
import type { ParsedAiRequest, ParsedAiResponse } from "./types.ts";

type RequestFields = Pick<ParsedAiRequest, "model" | "streaming" | "messages" | "tools" | "parameters" | "inputCount">;

export function embeddingRequestFields(body: Json): RequestFields {
  const input = body.input;
  let inputCount: number | undefined;
  let text: string | undefined;
  if (typeof input === "string") {
    inputCount = 1;
    text = input;
  } else if (Array.isArray(input)) {
    // A list of strings or of token arrays is many inputs; one flat token array is a single input.
    inputCount = input.length > 0 && input.every((x) => typeof x === "number") ? 1 : input.length;
    const strings = input.filter((x): x is string => typeof x === "string");
    if (strings.length > 0) text = strings.join("\n");
  }
  return compact({
    model: str(body.model),
    streaming: false,
    messages: text !== undefined ? [{ role: "user" as const, content: text }] : [],
    tools: [],
    parameters: {},
    inputCount,
  });
}

export function parseEmbeddingResponse(res: HttpResponseRecord): ParsedAiResponse {
  const out = baseResponse(res);
  const early = unparsedResponse(res, out);
  if (early) return early;
  const body = jsonBody(res, out);
  if (!body) return out;
  applyBodyError(out, body);
  applyIdAndModel(out, body);
  const dimensions = vectorLength(arr(body.data)[0]);
  if (dimensions !== undefined) out.dimensions = dimensions;
  if (isObject(body.usage)) {
    const usage = usageOf({ promptTokens: count(body.usage.prompt_tokens), totalTokens: count(body.usage.total_tokens) });
    if (usage) out.usage = usage;
  }
  if (!res.complete || res.bodyTruncated) out.incomplete = true;
  return out;
}

/** Floats, or base64 of little-endian float32s (encoding_format: "base64", the SDK default). */
function vectorLength(item: unknown): number | undefined {
  if (!isObject(item)) return undefined;
  const e = item.embedding;
  if (Array.isArray(e)) return e.length > 0 ? e.length : undefined;
  if (typeof e === "string" && e.length > 0) {
    const padding = e.endsWith("==") ? 2 : e.endsWith("=") ? 1 : 0;
    const bytes = (e.length * 3) / 4 - padding;
    return Number.isInteger(bytes / 4) ? bytes / 4 : undefined;
  }
  return undefined;
}
