// Cost per call. Every figure below is worked out by hand from the provider's published price per
// million tokens (the arithmetic is in the comment beside it), not copied from the code's output.
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { billedTokens, computeCost, GENAI_PRICES_VERSION, type FallbackPrices } from "../../src/events/cost.ts";

const AT = Date.parse("2026-06-01T12:00:00Z");

function cost(provider: string, apiFormat: string, model: string, usage: Parameters<typeof computeCost>[0]["usage"], fallback?: FallbackPrices) {
  return computeCost({ provider, apiFormat, model, usage, atMs: AT }, fallback);
}

describe("genai-prices, checked against published prices", () => {
  test("OpenAI gpt-4o-mini with cached prompt tokens (prompt_tokens include the cached ones)", () => {
    // $0.15 /M input, $0.075 /M cached input, $0.60 /M output.
    // 1000 prompt of which 400 cached: 600 × 0.15 + 400 × 0.075 = 90 + 30 = 120 µ$ = $0.00012
    // 100 completion: 100 × 0.60 = 60 µ$ = $0.00006; total $0.00018
    const c = cost("openai", "openai", "gpt-4o-mini", { promptTokens: 1000, completionTokens: 100, totalTokens: 1100, cachedTokens: 400 });
    expect(c).toMatchObject({ input_cost_usd: 0.00012, output_cost_usd: 0.00006, total_cost_usd: 0.00018 });
    expect(c?.price_source).toBe(`genai-prices@${GENAI_PRICES_VERSION}`);
    expect(c?.price_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(c?.price_model).toBe("gpt-4o-mini");
  });

  test("a dated snapshot id is priced as its model (gpt-4o-2024-11-20 → gpt-4o)", () => {
    // $2.50 /M input, $1.25 /M cached, $10 /M output.
    // 120 prompt, 64 cached: 56 × 2.50 + 64 × 1.25 = 140 + 80 = 220 µ$; 30 × 10 = 300 µ$; total 520 µ$
    const c = cost("openai", "openai", "gpt-4o-2024-11-20", { promptTokens: 120, completionTokens: 30, totalTokens: 150, cachedTokens: 64, reasoningTokens: 8 });
    expect(c).toMatchObject({ input_cost_usd: 0.00022, output_cost_usd: 0.0003, total_cost_usd: 0.00052, price_model: "gpt-4o" });
  });

  test("OpenAI reasoning tokens are already inside completion_tokens: not counted twice", () => {
    // o3-mini: $1.10 /M input, $4.40 /M output. total 2500 = 2000 + 500, so the 300 reasoning are inside the 500.
    // 2000 × 1.10 = 2200 µ$; 500 × 4.40 = 2200 µ$; total $0.0044
    const c = cost("openai", "openai", "o3-mini", { promptTokens: 2000, completionTokens: 500, totalTokens: 2500, reasoningTokens: 300 });
    expect(c).toMatchObject({ input_cost_usd: 0.0022, output_cost_usd: 0.0022, total_cost_usd: 0.0044 });
  });

  test("Anthropic input_tokens exclude cache reads and writes: each is billed at its own rate", () => {
    // claude-sonnet-4-5: $3 /M input, $0.30 /M cache read, $3.75 /M cache write (5 min), $15 /M output.
    // input_tokens 500 (uncached) + 400 read + 100 written:
    // 500 × 3 + 400 × 0.30 + 100 × 3.75 = 1500 + 120 + 375 = 1995 µ$; 100 × 15 = 1500 µ$; total 3495 µ$
    const c = cost("anthropic", "anthropic", "claude-sonnet-4-5-20250929", { promptTokens: 500, completionTokens: 100, cachedTokens: 400, cacheWriteTokens: 100 });
    expect(c).toMatchObject({ input_cost_usd: 0.001995, output_cost_usd: 0.0015, total_cost_usd: 0.003495, price_model: "claude-sonnet-4-5" });
    expect(billedTokens({ promptTokens: 500, completionTokens: 100, cachedTokens: 400, cacheWriteTokens: 100 }, "anthropic")).toEqual({
      input: 1000,
      cacheRead: 400,
      cacheWrite: 100,
      output: 100,
    });
  });

  test("Anthropic-style usage behind a host matched as another format: cache reads larger than the prompt", () => {
    // A gateway speaking Anthropic's API but matched as "openai": 50 uncached + 2000 read can only be exclusive.
    // claude-sonnet-4-5: 50 × 3 + 2000 × 0.30 = 150 + 600 = 750 µ$; 10 × 15 = 150 µ$; total 900 µ$
    const c = cost("anthropic", "openai", "claude-sonnet-4-5", { promptTokens: 50, completionTokens: 10, cachedTokens: 2000 });
    expect(c).toMatchObject({ input_cost_usd: 0.00075, output_cost_usd: 0.00015, total_cost_usd: 0.0009 });
  });

  test("Gemini thoughts are billed as output even when the total also counts tool-use prompt tokens", () => {
    // gemini-2.5-flash: 1000 × 0.30 = 300 µ$; (200 + 300) × 2.50 = 1250 µ$ (total 1600 includes 100 tool-use tokens)
    const c = cost("google", "google", "gemini-2.5-flash", { promptTokens: 1000, completionTokens: 200, reasoningTokens: 300, totalTokens: 1600 });
    expect(c).toMatchObject({ input_cost_usd: 0.0003, output_cost_usd: 0.00125 });
  });

  test("Gemini thoughts reported beside the candidates are billed as output", () => {
    // gemini-2.5-flash: $0.30 /M input, $2.50 /M output (thinking included).
    // total 1500 = 1000 prompt + 200 candidates + 300 thoughts, so the thoughts are extra output:
    // 1000 × 0.30 = 300 µ$; (200 + 300) × 2.50 = 1250 µ$; total 1550 µ$
    const c = cost("google", "google", "gemini-2.5-flash", { promptTokens: 1000, completionTokens: 200, reasoningTokens: 300, totalTokens: 1500 });
    expect(c).toMatchObject({ input_cost_usd: 0.0003, output_cost_usd: 0.00125, total_cost_usd: 0.00155 });
  });

  test("tiered prices: Gemini 2.5 Pro above 200k prompt tokens", () => {
    // gemini-2.5-pro, prompts > 200k tokens: $2.50 /M input, $15 /M output.
    // 300 000 × 2.50 = 0.75 $; 100 × 15 = 1500 µ$; total 0.7515 $
    const c = cost("google", "google", "gemini-2.5-pro", { promptTokens: 300_000, completionTokens: 100 });
    expect(c).toMatchObject({ input_cost_usd: 0.75, output_cost_usd: 0.0015, total_cost_usd: 0.7515 });
  });

  test("bundle provider ids are mapped to genai-prices ids (azure_openai → azure, aws_bedrock → aws)", () => {
    // Azure gpt-4o: $2.50 /M in, $10 /M out. 500 × 2.5 = 1250 µ$; 100 × 10 = 1000 µ$
    expect(cost("azure_openai", "openai", "gpt-4o", { promptTokens: 500, completionTokens: 100 })).toMatchObject({
      input_cost_usd: 0.00125,
      output_cost_usd: 0.001,
      total_cost_usd: 0.00225,
    });
    // Bedrock Claude 3.5 Sonnet: $3 /M in, $15 /M out. 500 × 3 = 1500 µ$; 100 × 15 = 1500 µ$
    expect(cost("aws_bedrock", "bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", { promptTokens: 500, completionTokens: 100 })).toMatchObject({
      input_cost_usd: 0.0015,
      output_cost_usd: 0.0015,
      total_cost_usd: 0.003,
    });
  });
});

describe("unknown stays unknown, never 0", () => {
  test("a model no price list knows", () => {
    expect(cost("openai", "openai", "gpt-nonexistent-9000", { promptTokens: 10, completionTokens: 10 }, () => undefined)).toBeUndefined();
    expect(cost("openai", "openai", "gpt-nonexistent-9000", { promptTokens: 10, completionTokens: 10 })).toBeUndefined();
  });
  test("a local runtime is not priced by model name alone", () => {
    expect(cost("ollama", "ollama", "llama3", { promptTokens: 10, completionTokens: 10 })).toBeUndefined();
  });
  test("no model, or no token counts", () => {
    expect(computeCost({ provider: "openai", apiFormat: "openai", usage: { promptTokens: 10 }, atMs: AT })).toBeUndefined();
    expect(cost("openai", "openai", "gpt-4o", { cachedTokens: 10 })).toBeUndefined();
  });
  test("zero tokens is a real $0 for a known model, not unknown", () => {
    expect(cost("openai", "openai", "gpt-4o", { promptTokens: 0, completionTokens: 0 })).toMatchObject({ total_cost_usd: 0 });
  });
});

describe("fallback: the bundle's per-1k prices", () => {
  const prices: FallbackPrices = (provider, model) =>
    provider === "acme" && model === "m1" ? { inputCostPer1k: 0.5, outputCostPer1k: 1.5, cacheReadCostPer1k: 0.25, priceDate: "2026-01-06" } : undefined;

  test("used when genai-prices has no price", () => {
    // 1000 prompt, 200 cached: (800 × 0.5 + 200 × 0.25) / 1000 = (400 + 50) / 1000 = $0.45
    // 100 completion × 1.5 / 1000 = $0.15; total $0.60
    const c = cost("acme", "openai", "m1", { promptTokens: 1000, completionTokens: 100, cachedTokens: 200 }, prices);
    expect(c).toEqual({ input_cost_usd: 0.45, output_cost_usd: 0.15, total_cost_usd: 0.6, price_source: "oisp-bundle", price_date: "2026-01-06", price_model: "m1" });
  });

  test("not used when genai-prices knows the model", () => {
    const everything: FallbackPrices = () => ({ inputCostPer1k: 1000, outputCostPer1k: 1000 });
    expect(cost("openai", "openai", "gpt-4o-mini", { promptTokens: 1000, completionTokens: 100 }, everything)?.price_source).toStartWith("genai-prices@");
  });

  test("the embedded bundle is the default fallback", () => {
    // Whatever genai-prices lacks but the bundle prices: pick a bundle model genai-prices does not know.
    const c = cost("abacus", "openai", "Qwen-QwQ-32B", { promptTokens: 1000, completionTokens: 1000 });
    // bundle: abacus/Qwen-QwQ-32B at $0.0004 /1k in and out: 1000 × 0.0004 / 1000 × 2 = $0.0008
    expect(c).toMatchObject({ input_cost_usd: 0.0004, output_cost_usd: 0.0004, total_cost_usd: 0.0008, price_source: "oisp-bundle" });
    expect(c?.price_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  test("a bundle entry without an output price is unknown", () => {
    const half: FallbackPrices = () => ({ inputCostPer1k: 0.5 });
    expect(cost("acme", "openai", "m2", { promptTokens: 1000, completionTokens: 100 }, half)).toBeUndefined();
  });
});

test("GENAI_PRICES_VERSION matches the installed package", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(import.meta.dir, "../../node_modules/@pydantic/genai-prices/package.json"), "utf8"));
  expect(pkg.version).toBe(GENAI_PRICES_VERSION);
});
