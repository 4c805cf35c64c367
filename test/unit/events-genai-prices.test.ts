// The compiled price calculator (src/events/genai-prices.ts) against genai-prices' own calcPrice, over the
// whole bundled table: every provider, every model, every price period, every token kind the sensor
// reports, alone and together, across tier boundaries and with more cache than input. The amounts must be
// the library's to the last bit, and where the library throws or knows no price, so must ours.
import { describe, expect, test } from "bun:test";
import { calcPrice, findProvider, waitForUpdate, type ModelInfo, type Provider } from "@pydantic/genai-prices";
import { genaiPrice, type TokenUsage } from "../../src/events/genai-prices.ts";

const providers = (await waitForUpdate()) as Provider[];

/** Times inside each of a model's price periods (and one before them all). */
function timesFor(model: ModelInfo): number[] {
  const base = [Date.parse("2024-01-01T12:00:00Z"), Date.parse("2026-06-01T12:00:00Z")];
  if (!Array.isArray(model.prices)) return base;
  const out = [...base];
  for (const { constraint } of model.prices) {
    if (constraint?.type === "start_date") {
      const from = Date.parse(`${constraint.start_date}T00:00:00Z`);
      out.push(from - 1, from, from + 3_600_000);
    } else if (constraint?.type === "time_of_date") {
      // Inside, on and just outside the daily window, on a day after every start date.
      for (const hhmm of [constraint.start_time, constraint.end_time]) {
        const at = Date.parse(`2027-06-01T${hhmm.replace(/Z$/, "")}Z`);
        out.push(at - 1, at, at + 1, at + 1_800_000);
      }
    }
  }
  return out;
}

/** Usage shapes: each kind alone and together, tier edges (128k, 200k, 272k...), more cache than input. */
const USAGES: TokenUsage[] = [
  { input: 0, cacheRead: 0, cacheWrite: 0, output: 0 },
  { input: 1234, cacheRead: 0, cacheWrite: 0, output: 0 },
  { input: 0, cacheRead: 0, cacheWrite: 0, output: 777 },
  { input: 1234, cacheRead: 0, cacheWrite: 0, output: 567 },
  { input: 1234, cacheRead: 1000, cacheWrite: 0, output: 567 },
  { input: 1234, cacheRead: 0, cacheWrite: 200, output: 567 },
  { input: 1234, cacheRead: 700, cacheWrite: 300, output: 567 },
  { input: 1234, cacheRead: 1234, cacheWrite: 0, output: 1 },
  { input: 100, cacheRead: 2000, cacheWrite: 0, output: 10 },
  { input: 100, cacheRead: 60, cacheWrite: 60, output: 10 },
  { input: 0, cacheRead: 5, cacheWrite: 0, output: 0 },
  { input: 3_000_001, cacheRead: 1_234_567, cacheWrite: 89_123, output: 98_765 },
  ...[32_000, 128_000, 200_000, 272_000, 1_000_000].flatMap((edge) => [
    { input: edge, cacheRead: 0, cacheWrite: 0, output: 1000 },
    { input: edge + 1, cacheRead: 17, cacheWrite: 0, output: 1000 },
    { input: edge + 1, cacheRead: 0, cacheWrite: 33, output: 1000 },
  ]),
];

function reference(u: TokenUsage, model: string, providerId: string, atMs: number) {
  if (!findProvider({ providerId })) return null; // cost.ts never prices a provider genai-prices does not know
  try {
    const r = calcPrice(
      {
        input_tokens: u.input,
        output_tokens: u.output,
        ...(u.cacheRead > 0 && { cache_read_tokens: u.cacheRead }),
        ...(u.cacheWrite > 0 && { cache_write_tokens: u.cacheWrite }),
      },
      model,
      { providerId, timestamp: new Date(atMs) },
    );
    return r && { inputUsd: r.input_price, outputUsd: r.output_price, modelId: r.model.id };
  } catch {
    return undefined;
  }
}

describe("genaiPrice is calcPrice, over the whole bundle", () => {
  test("every provider, model, price period and token kind", () => {
    let compared = 0;
    let priced = 0;
    let thrown = 0;
    const mismatches: string[] = [];
    for (const provider of providers) {
      for (const model of provider.models) {
        for (const atMs of timesFor(model)) {
          // Twice each: the first call of a model goes to the library, later ones to the compiled table.
          for (const pass of [1, 2]) {
            for (const u of USAGES) {
              const want = reference(u, model.id, provider.id, atMs);
              const got = genaiPrice(u, model.id, provider.id, atMs);
              compared++;
              if (want) priced++;
              if (want === undefined) thrown++;
              if (!Object.is(got?.inputUsd, want?.inputUsd) || !Object.is(got?.outputUsd, want?.outputUsd) || got?.modelId !== want?.modelId || (got === null) !== (want === null)) {
                mismatches.push(`${provider.id}/${model.id} pass ${pass} at ${new Date(atMs).toISOString()} ${JSON.stringify(u)}: ${JSON.stringify(got)} ≠ ${JSON.stringify(want)}`);
              }
            }
          }
        }
      }
    }
    expect(mismatches.slice(0, 10)).toEqual([]);
    // The comparison covered real prices, and the cases the library refuses.
    expect(providers.length).toBeGreaterThan(30);
    expect(priced).toBeGreaterThan(compared * 0.8);
    expect(thrown).toBeGreaterThan(0);
    // Tens of thousands of library calls: ~4 s of CPU on a quiet machine, 14 s seen under load.
  }, 120_000);

  test("fallback providers and aliases resolve as the library resolves them", () => {
    // Azure prices OpenAI's models through its fallback providers; a dated snapshot matches its model.
    const cases: Array<[string, string]> = [
      ["azure", "gpt-4o-mini"],
      ["azure", "claude-sonnet-4-5"],
      ["openai", "gpt-4o-2024-11-20"],
      ["openai", "GPT-4o-Mini "],
      ["anthropic", "claude-sonnet-4-5-20250929"],
      ["google", "gemini-2.5-pro"],
      ["openai", "no-such-model"],
      ["ollama", "llama3"],
      ["litellm", "openai/gpt-4o"],
    ];
    const u = { input: 250_000, cacheRead: 1000, cacheWrite: 500, output: 4000 };
    const at = Date.parse("2026-06-01T12:00:00Z");
    for (const [providerId, model] of cases) {
      for (let pass = 0; pass < 2; pass++) expect(genaiPrice(u, model, providerId, at)).toEqual(reference(u, model, providerId, at));
    }
    expect(genaiPrice(u, "gpt-4o-mini", "azure", at)?.modelId).toBe("gpt-4o-mini");
    expect(genaiPrice(u, "llama3", "ollama", at)).toBeNull();
  });

  test("counts beyond the exact range go to the library", () => {
    const u = { input: 2 ** 45, cacheRead: 2 ** 44, cacheWrite: 0, output: 2 ** 41 };
    const at = Date.parse("2026-06-01T12:00:00Z");
    for (let pass = 0; pass < 2; pass++) expect(genaiPrice(u, "gpt-4o", "openai", at)).toEqual(reference(u, "gpt-4o", "openai", at));
  });
});
