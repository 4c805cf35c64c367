// AI traffic to hosts the bundle does not know (seen with --all-traffic, or plain HTTP through the proxy):
// recognised by the shape of the request body instead of the host. A POSTed JSON object with a `model`
// string and `messages`, `input`, `contents` or `prompt` is an AI call; which API it speaks follows from
// those fields (and the path, when it is a well-known one). Events of such calls carry a lower confidence.
import type { HttpRequestRecord } from "../decode/types.ts";
import { headerValue } from "../decode/types.ts";
import { apiKindOf } from "../decode/providers/index.ts";
import type { EndpointMatch } from "../spec/types.ts";

/** Provider id given to shape-detected calls (OISP provider "other"). */
export const UNKNOWN_PROVIDER = "unknown";

export interface ShapeMatch {
  match: EndpointMatch;
  /**
   * The path the provider parsers should read the call under, when the real path is not one they know
   * (a gateway's /inference/chat carrying a Chat Completions body). Undefined: the real path works.
   */
  parsePath?: string;
}

/** Bodies larger than this are not parsed just to look at their shape. */
const MAX_SHAPE_BYTES = 4 * 1024 * 1024;

export function detectAiShape(req: HttpRequestRecord, host: string): ShapeMatch | undefined {
  if (req.method.toUpperCase() !== "POST" || req.body.length < 2 || req.body.length > MAX_SHAPE_BYTES || req.decodeError) return undefined;
  const type = headerValue(req.headers, "content-type")?.toLowerCase();
  if (type !== undefined && !type.includes("json")) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(req.body.buffer, req.body.byteOffset, req.body.length).toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || b.model === "" || b.model.length > 512) return undefined;

  const path = req.path.split(/[?#]/)[0] ?? "";
  const make = (apiFormat: EndpointMatch["apiFormat"], parsePath: string): ShapeMatch => {
    const match: EndpointMatch = { provider: UNKNOWN_PROVIDER, apiFormat, host };
    // Keep the real path when the parsers already read it as the API the body speaks.
    const known = apiKindOf(req.path, match) !== undefined && apiKindOf(parsePath, match) === apiKindOf(req.path, match);
    return known ? { match } : { match, parsePath };
  };

  if (Array.isArray(b.contents)) {
    const match: EndpointMatch = { provider: UNKNOWN_PROVIDER, apiFormat: "google", host };
    if (/\/models\/[^/:]+:(?:generateContent|streamGenerateContent)$/.test(path)) return { match };
    const stream = /stream/i.test(path) || /[?&]alt=sse\b/.test(req.path);
    return { match, parsePath: `/v1beta/models/${encodeURIComponent(b.model)}:${stream ? "streamGenerateContent?alt=sse" : "generateContent"}` };
  }
  if (Array.isArray(b.messages)) {
    if (looksAnthropic(b, req, path)) return make("anthropic", "/v1/messages");
    return make("openai", "/v1/chat/completions");
  }
  if (typeof b.input === "string" || Array.isArray(b.input)) {
    return /embed/i.test(path) ? make("openai", "/v1/embeddings") : make("openai", "/v1/responses");
  }
  if (typeof b.prompt === "string") return make("openai", "/v1/completions");
  return undefined;
}

/** Anthropic's Messages API: its path, its version header, or a top-level system with max_tokens. */
function looksAnthropic(b: Record<string, unknown>, req: HttpRequestRecord, path: string): boolean {
  if (/\/messages\/?$/.test(path)) return true;
  if (headerValue(req.headers, "anthropic-version") !== undefined) return true;
  const messages = b.messages as unknown[];
  const systemInMessages = messages.some((m) => typeof m === "object" && m !== null && (m as { role?: unknown }).role === "system");
  return b.system !== undefined && typeof b.max_tokens === "number" && !systemInMessages;
}
