// What an AI call cost, from its token usage. Pure: the prices are tables embedded at build time
// (@pydantic/genai-prices' bundled data, then the OISP bundle's per-1k prices), the call's own time
// picks among dated prices, and nothing is fetched. An unknown model or provider gives no cost at all,
// never a guessed 0.
import type { AiUsage } from "../decode/providers/types.ts";
import { bundleInfo, modelInfo } from "../spec/endpoints.ts";
import { genaiPrice } from "./genai-prices.ts";
import { totalInputTokens } from "./input-tokens.ts";

/**
 * The genai-prices release whose bundled table we use, and the day it was published (npm). A unit
 * test checks the version against node_modules so an upgrade cannot leave this stale.
 */
export const GENAI_PRICES_VERSION = "0.1.8";
export const GENAI_PRICES_DATE = "2026-09-23";

/** Per-1k-token prices from the OISP bundle (spec/endpoints.ts `modelInfo`). */
export interface FallbackPrice {
  /** The bundle's model id that matched. */
  id?: string;
  inputCostPer1k?: number;
  outputCostPer1k?: number;
  /** Price of a cache-read input token; without it cached tokens are charged at the input price. */
  cacheReadCostPer1k?: number;
  /** Price of a cache-write input token; without it they are charged at the input price. */
  cacheWriteCostPer1k?: number;
  /** Date of the bundle's price table (YYYY-MM-DD). */
  priceDate?: string;
}

export type FallbackPrices = (provider: string, modelId: string) => FallbackPrice | undefined;

/** The embedded bundle's prices, dated by the bundle's generation day. */
export const bundlePrices: FallbackPrices = (provider, modelId) => {
  const info = modelInfo(provider, modelId);
  return info && { ...info, priceDate: bundleInfo().generatedAt.slice(0, 10) };
};

export interface CostInput {
  /** Bundle provider id: openai, anthropic, azure_openai, aws_bedrock, groq, ... */
  provider: string;
  /** Wire format (spec/types.ts ApiFormat): says whether prompt tokens include cache tokens. */
  apiFormat?: string;
  model?: string;
  usage: AiUsage;
  /** When the call was made (epoch ms): picks the price in force then. */
  atMs: number;
}

export interface Cost {
  input_cost_usd: number;
  output_cost_usd: number;
  total_cost_usd: number;
  /** "genai-prices@0.1.8" or "oisp-bundle". */
  price_source: string;
  /** Date of the price table used (YYYY-MM-DD), when known. */
  price_date?: string;
  /** The priced model id the call's model matched (e.g. gpt-4o-2024-11-20 → gpt-4o). */
  price_model?: string;
}

/** Token counts as the provider bills them: input includes cache reads/writes, output includes reasoning. */
export interface BilledTokens {
  input: number;
  cacheRead: number;
  cacheWrite: number;
  output: number;
}

/** Bundle provider ids that genai-prices names differently. Others are looked up as they are. */
const GENAI_PROVIDER_ALIASES: Record<string, string> = {
  azure_openai: "azure",
  aws_bedrock: "aws",
  google_vertex: "google",
  google_ai: "google",
  gemini: "google",
  togetherai: "together",
  xai: "x-ai",
  x_ai: "x-ai",
};

/**
 * Normalises a call's usage to what the provider bills:
 * - OpenAI/Google `prompt_tokens` already include cached tokens; Anthropic `input_tokens` exclude cache
 *   reads and writes, so those are added back (genai-prices wants the total input, split by cache kind).
 * - Reasoning tokens are part of OpenAI/Anthropic output tokens already. Gemini reports thoughts beside
 *   the candidates (its total = prompt + candidates + thoughts): only then are they added to output.
 */
export function billedTokens(usage: AiUsage, apiFormat?: string): BilledTokens {
  const prompt = count(usage.promptTokens);
  const completion = count(usage.completionTokens);
  const cacheRead = count(usage.cachedTokens);
  const cacheWrite = count(usage.cacheWriteTokens);
  const reasoning = count(usage.reasoningTokens);
  const input = totalInputTokens(prompt, cacheRead, cacheWrite, apiFormat);
  const total = usage.totalTokens;
  // Gemini's candidates never include its thoughts; elsewhere a total that adds them up says the same.
  const reasoningBeside = reasoning > 0 && (apiFormat === "google" || (total !== undefined && total === prompt + completion + reasoning));
  return { input, cacheRead, cacheWrite, output: completion + (reasoningBeside ? reasoning : 0) };
}

/**
 * The cost of one call, or undefined when the model has no known price (or there is no usage to price).
 * genai-prices first (maintained; cache and tiered prices), then the bundle's per-1k prices.
 */
export function computeCost(input: CostInput, fallback: FallbackPrices = bundlePrices): Cost | undefined {
  if (!input.model) return undefined;
  const u = input.usage;
  if (u.promptTokens === undefined && u.completionTokens === undefined) return undefined;
  const tokens = billedTokens(u, input.apiFormat);
  return fromGenaiPrices(input, tokens) ?? fromBundle(input, tokens, fallback);
}

function fromGenaiPrices(input: CostInput, t: BilledTokens): Cost | undefined {
  const providerId = GENAI_PROVIDER_ALIASES[input.provider] ?? input.provider;
  // An unknown provider (local runtimes, in-house gateways) is not matched by model name alone: "llama3" on
  // Ollama costs nothing that any hosted price list would say. With a provider, the library matches within
  // it (or its declared fallbacks, e.g. Azure → OpenAI). Usage it cannot price is "unknown", not a wrong figure.
  const price = genaiPrice(t, input.model!, providerId, Number.isFinite(input.atMs) ? input.atMs : 0);
  if (!price) return undefined;
  return {
    ...amounts(price.inputUsd, price.outputUsd),
    price_source: `genai-prices@${GENAI_PRICES_VERSION}`,
    price_date: GENAI_PRICES_DATE,
    price_model: price.modelId,
  };
}

function fromBundle(input: CostInput, t: BilledTokens, fallback: FallbackPrices | undefined): Cost | undefined {
  const p = fallback?.(input.provider, input.model!);
  if (!p || !isPrice(p.inputCostPer1k) || !isPrice(p.outputCostPer1k)) return undefined;
  const uncached = t.input - t.cacheRead - t.cacheWrite;
  const inputUsd =
    (uncached * p.inputCostPer1k +
      t.cacheRead * (isPrice(p.cacheReadCostPer1k) ? p.cacheReadCostPer1k : p.inputCostPer1k) +
      t.cacheWrite * (isPrice(p.cacheWriteCostPer1k) ? p.cacheWriteCostPer1k : p.inputCostPer1k)) /
    1000;
  const outputUsd = (t.output * p.outputCostPer1k) / 1000;
  return {
    ...amounts(inputUsd, outputUsd),
    price_source: "oisp-bundle",
    ...(p.priceDate !== undefined && { price_date: p.priceDate }),
    price_model: p.id ?? input.model!,
  };
}

/** USD rounded to 1e-10 (a hundred-millionth of a cent): hides float noise such as 0.00020999999999999998. */
function amounts(inputUsd: number, outputUsd: number): Pick<Cost, "input_cost_usd" | "output_cost_usd" | "total_cost_usd"> {
  const input_cost_usd = roundUsd(inputUsd);
  const output_cost_usd = roundUsd(outputUsd);
  return { input_cost_usd, output_cost_usd, total_cost_usd: roundUsd(inputUsd + outputUsd) };
}

export function roundUsd(n: number): number {
  return Math.round(n * 1e10) / 1e10;
}

function count(v: number | undefined): number {
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : 0;
}

function isPrice(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}
