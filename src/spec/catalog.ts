// Provider and model facts from the embedded bundle, for decoders, cost and the dashboard.
// Indexes are built once at module init; lookups are Map gets.
import { bundle, type BundleModel } from "./bundle.ts";
import type { ApiFormat } from "./types.ts";

const API_FORMATS: ReadonlySet<string> = new Set<ApiFormat>(["openai", "anthropic", "google", "bedrock", "cohere", "ollama"]);

/**
 * The bundle's api_format string as an ApiFormat. A format the sensor has no parser for counts as "openai" only
 * when the bundle calls it OpenAI-compatible; anything else is undefined (its hosts are then not matched).
 */
export function toApiFormat(raw: string): ApiFormat | undefined {
  const f = raw.trim().toLowerCase();
  if (API_FORMATS.has(f)) return f as ApiFormat;
  if (/^openai[-_ ]?compat(ible)?$/.test(f)) return "openai";
  return undefined;
}

export interface ProviderInfo {
  id: string;
  /** Display name ("OpenAI", "Amazon Bedrock"). */
  name: string;
  apiFormat: ApiFormat;
  /** Host of the documented endpoint, if the bundle has one ("*.openai.azure.com" for wildcard ones). */
  apiHost?: string;
  envVars: readonly string[];
}

const providers = new Map<string, ProviderInfo>();
for (const [id, p] of Object.entries(bundle.providers)) {
  const apiFormat = toApiFormat(p.api_format);
  if (!apiFormat) continue;
  providers.set(
    id,
    Object.freeze({ id, name: p.name, apiFormat, ...(p.api_host ? { apiHost: p.api_host } : {}), envVars: Object.freeze([...p.env_vars]) }),
  );
}

/** Provider facts by bundle id, or undefined for unknown ids and providers whose api_format has no parser. */
export function providerInfo(id: string): ProviderInfo | undefined {
  return providers.get(id);
}

export interface ModelInfo {
  provider: string;
  /** The bundle's model id that matched (may differ from the one asked for: case, date suffix). */
  id: string;
  family?: string;
  /** "chat", "embedding", "image", "audio_speech", ... */
  mode: string;
  /** USD per 1,000 tokens. Absent when the bundle has no price (not the same as 0, which means free). */
  inputCostPer1k?: number;
  outputCostPer1k?: number;
  cacheReadCostPer1k?: number;
  cacheWriteCostPer1k?: number;
  reasoningCostPer1k?: number;
  maxInputTokens?: number;
  maxOutputTokens?: number;
}

function toModelInfo(key: string, m: BundleModel): ModelInfo {
  const slash = key.indexOf("/");
  const out: ModelInfo = { provider: key.slice(0, slash), id: key.slice(slash + 1), mode: m.mode };
  if (m.family !== undefined) out.family = m.family;
  if (m.input_cost_per_1k !== undefined) out.inputCostPer1k = m.input_cost_per_1k;
  if (m.output_cost_per_1k !== undefined) out.outputCostPer1k = m.output_cost_per_1k;
  if (m.cache_read_cost_per_1k !== undefined) out.cacheReadCostPer1k = m.cache_read_cost_per_1k;
  if (m.cache_write_cost_per_1k !== undefined) out.cacheWriteCostPer1k = m.cache_write_cost_per_1k;
  if (m.reasoning_cost_per_1k !== undefined) out.reasoningCostPer1k = m.reasoning_cost_per_1k;
  if (m.max_input_tokens !== undefined) out.maxInputTokens = m.max_input_tokens;
  if (m.max_output_tokens !== undefined) out.maxOutputTokens = m.max_output_tokens;
  return Object.freeze(out);
}

// Lower-cased "provider/id" → ModelInfo. Built on the first lookup (the sensor's cost, the dashboard), not
// at import: `oisp up`'s relay thread imports this module for the endpoint matcher and never asks for a model
// (2,000 entries, ~1 MB kept). The first key wins if two differ only in case.
let modelIndex: Map<string, ModelInfo> | undefined;
function models(): Map<string, ModelInfo> {
  if (modelIndex) return modelIndex;
  modelIndex = new Map();
  for (const key of Object.keys(bundle.models).sort()) {
    const lower = key.toLowerCase();
    if (!modelIndex.has(lower)) modelIndex.set(lower, toModelInfo(key, bundle.models[key]!));
  }
  return modelIndex;
}

// Responses often name a dated snapshot ("gpt-4o-mini-2024-07-18") the bundle lists only undated.
const DATE_SUFFIX = /-(?:\d{4}-\d{2}-\d{2}|\d{8})$/;

/**
 * Model facts for a provider's model id: exact id first, then case-insensitive, then without a date suffix.
 * Undefined when the bundle does not know the model. Ids longer than 300 characters are not looked up.
 */
export function modelInfo(provider: string, modelId: string): ModelInfo | undefined {
  if (!provider || !modelId || modelId.length > 300) return undefined;
  const key = `${provider}/${modelId}`.toLowerCase();
  const index = models();
  const hit = index.get(key);
  if (hit) return hit;
  const undated = key.replace(DATE_SUFFIX, "");
  return undated !== key ? index.get(undated) : undefined;
}
