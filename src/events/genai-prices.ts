// genai-prices' calcPrice, for the four token kinds the sensor prices, without its per-call cost.
// The library re-derives its unit bookkeeping (which priced units are leaves of which, validation of the
// price table) on every call, and matches the model by walking every pattern of the provider: ~11 % of the
// sensor's CPU per call. Here the model lookup is remembered per (provider, model) and each price table is
// compiled once into its few multiplications, in the library's own order of floating-point operations, so
// the amounts are the library's to the last bit (test/unit/events-genai-prices.test.ts checks every model
// and price period of the bundle, every token kind, against calcPrice).
//
// Why four kinds are enough: the usage given is input, output, cache read and cache write tokens, all
// non-negative integers. Every other unit of genai-prices (audio, image, tool tokens, 1h cache writes,
// searches, requests...) is more specific than these or of another family, so its leaf value is 0: it adds
// nothing to the input or output amount, and it takes nothing from input's leaf (input minus the cache
// reads and writes, when those are priced). What such units can still do is make the table invalid (a unit
// priced without its parents): that is asked of the library itself, once per table.
import type * as GenaiPrices from "@pydantic/genai-prices";

export interface TokenUsage {
  /** All input tokens, cache reads and writes included (genai-prices' input_tokens). */
  input: number;
  cacheRead: number;
  cacheWrite: number;
  output: number;
}

export interface GenaiPrice {
  inputUsd: number;
  outputUsd: number;
  /** The priced model id that matched. */
  modelId: string;
}

/**
 * Loaded on the first call priced, not at start: its table costs ~100 ms and ~15–30 MB of heap, which an
 * idle sensor (or a relay that never prices anything) should not carry.
 */
let lib: typeof GenaiPrices | undefined;
function genaiPrices(): typeof GenaiPrices {
  lib ??= require("@pydantic/genai-prices") as typeof GenaiPrices;
  return lib;
}

type ModelInfo = GenaiPrices.ModelInfo;
type ModelPrice = GenaiPrices.ModelPrice;
type Tiered = { base: number; tiers: Array<{ start: number; price: number }> };

/** Counts at or above this go to the library: its leaf check has a float tolerance that grows with them. */
const EXACT_BELOW = 2 ** 40;
/** (provider, model) lookups remembered; model names come from traffic, so the map is bounded. */
const MAX_LOOKUPS = 512;

const providers = new Map<string, boolean>();
/** The model a (provider, model id) resolves to: null when the library has no price for it. */
const lookups = new Map<string, ModelInfo | null>();

/**
 * What calcPrice(usage, model, { providerId, timestamp: new Date(atMs) }) says of the input and output
 * amounts: null when the provider or model has no price, undefined when the library throws (usage it
 * cannot price, e.g. more cache reads than input tokens).
 */
export function genaiPrice(usage: TokenUsage, model: string, providerId: string, atMs: number): GenaiPrice | null | undefined {
  if (!knownProvider(providerId)) return null;
  const key = `${providerId}\n${model}`;
  let info = lookups.get(key);
  if (info === undefined) {
    // The first call of a model is the library's own: it finds the model, which is all that is kept.
    const result = library(usage, model, providerId, atMs);
    if (result === undefined) return undefined;
    info = result && result.model;
    remember(key, info);
    return result && { inputUsd: result.input_price, outputUsd: result.output_price, modelId: result.model.id };
  }
  if (info === null) return null;
  const prices = pricesAt(info, atMs);
  const calc = prices === undefined ? undefined : compiled(prices);
  if (calc === undefined || !exactRange(usage)) {
    const result = library(usage, model, providerId, atMs);
    return result && { inputUsd: result.input_price, outputUsd: result.output_price, modelId: result.model.id };
  }
  const amounts = calc(usage);
  return amounts && { ...amounts, modelId: info.id };
}

function knownProvider(providerId: string): boolean {
  let known = providers.get(providerId);
  if (known === undefined) {
    known = genaiPrices().findProvider({ providerId }) !== undefined;
    // Provider ids come from the bundle (a few dozen), not from traffic.
    providers.set(providerId, known);
  }
  return known;
}

function remember(key: string, info: ModelInfo | null): void {
  if (lookups.size >= MAX_LOOKUPS) lookups.delete(lookups.keys().next().value!);
  lookups.set(key, info);
}

function library(usage: TokenUsage, model: string, providerId: string, atMs: number): GenaiPrices.PriceCalculationResult | undefined {
  try {
    return genaiPrices().calcPrice(libraryUsage(usage), model, { providerId, timestamp: new Date(atMs) });
  } catch {
    return undefined;
  }
}

/** The usage as the sensor has always handed it to calcPrice: cache kinds only when there are some. */
function libraryUsage(u: TokenUsage): GenaiPrices.Usage {
  return {
    input_tokens: u.input,
    output_tokens: u.output,
    ...(u.cacheRead > 0 && { cache_read_tokens: u.cacheRead }),
    ...(u.cacheWrite > 0 && { cache_write_tokens: u.cacheWrite }),
  };
}

function exactRange(u: TokenUsage): boolean {
  return u.input < EXACT_BELOW && u.output < EXACT_BELOW && u.cacheRead < EXACT_BELOW && u.cacheWrite < EXACT_BELOW;
}

// ---------------------------------------------------------------------------------------------
// the price in force at a time: the library's choice among a model's dated prices

interface Period {
  prices: ModelPrice;
  /** start_date: in force from this epoch ms (NaN: never). */
  fromMs?: number;
  /** time_of_date: in force between these seconds of the UTC day (end before start wraps midnight). */
  daySeconds?: [start: number, end: number];
}

/** A model's periods, last first as the library scans them; undefined when one is not understood. */
const periodCache = new WeakMap<ModelInfo, Period[] | "library">();

function pricesAt(info: ModelInfo, atMs: number): ModelPrice | undefined {
  if (!Array.isArray(info.prices)) return info.prices;
  let periods = periodCache.get(info);
  if (periods === undefined) {
    periods = compilePeriods(info.prices);
    periodCache.set(info, periods);
  }
  if (periods === "library") return undefined;
  const t = new Date(atMs);
  const ms = t.getTime();
  if (Number.isNaN(ms)) return undefined; // the library throws: let it
  for (const p of periods) {
    if (p.fromMs !== undefined) {
      if (ms >= p.fromMs) return p.prices;
    } else if (p.daySeconds !== undefined) {
      const now = t.getUTCHours() * 3600 + t.getUTCMinutes() * 60 + t.getUTCSeconds() + t.getUTCMilliseconds() / 1e3;
      const [start, end] = p.daySeconds;
      if (end < start ? now >= start || now < end : now >= start && now < end) return p.prices;
    } else return p.prices;
  }
  return info.prices[0]!.prices;
}

function compilePeriods(list: GenaiPrices.ConditionalPrice[]): Period[] | "library" {
  const out: Period[] = [];
  for (let i = list.length - 1; i >= 0; i--) {
    const { constraint, prices } = list[i]!;
    if (constraint === undefined) out.push({ prices });
    else if (constraint.type === "start_date") out.push({ prices, fromMs: new Date(constraint.start_date).getTime() });
    else if (constraint.type === "time_of_date") {
      const start = secondOfDay(constraint.start_time);
      const end = secondOfDay(constraint.end_time);
      if (start === undefined || end === undefined) return "library";
      out.push({ prices, daySeconds: [start, end] });
    } else return "library";
  }
  return out;
}

/** "HH:MM:SS[.fff](Z|±HH:MM)" → seconds after UTC midnight, as the library reads a time-of-day bound. */
function secondOfDay(text: string): number | undefined {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|([+-])(\d{2}):(\d{2}))$/.exec(text);
  if (!m) return undefined;
  const [, hh, mm, ss, frac = "", zone, sign, zh = "00", zm = "00"] = m;
  const h = Number(hh);
  const min = Number(mm);
  const s = Number(ss);
  const offset = (Number(zh) * 60 + Number(zm)) * 60;
  if (h > 23 || min > 59 || s > 59 || zh > "23" || zm > "59") return undefined;
  const local = h * 3600 + min * 60 + s + +`0.${frac}`;
  const shift = zone === "Z" ? 0 : sign === "+" ? offset : -offset;
  return (local - shift + 86400) % 86400;
}

// ---------------------------------------------------------------------------------------------
// one price table, compiled

type Calc = (u: TokenUsage) => { inputUsd: number; outputUsd: number } | undefined;

/** The four units the sensor reports, by price key: which count feeds them and which amount they add to. */
const TOKEN_UNITS: Record<string, { count: keyof TokenUsage; output: boolean }> = {
  input_mtok: { count: "input", output: false },
  cache_read_mtok: { count: "cacheRead", output: false },
  cache_write_mtok: { count: "cacheWrite", output: false },
  output_mtok: { count: "output", output: true },
};

const calcCache = new WeakMap<ModelPrice, Calc | "library">();

function compiled(prices: ModelPrice): Calc | undefined {
  let calc = calcCache.get(prices);
  if (calc === undefined) {
    calc = compile(prices);
    calcCache.set(prices, calc);
  }
  return calc === "library" ? undefined : calc;
}

function compile(prices: ModelPrice): Calc | "library" {
  if (!validTable(prices)) return "library";
  const terms: Array<{ count: keyof TokenUsage; output: boolean; price: number | Tiered }> = [];
  // The library sums the amounts in the table's own key order: so do we (float addition is not associative).
  for (const [key, value] of Object.entries(prices)) {
    const unit = TOKEN_UNITS[key];
    if (unit === undefined || value === undefined) continue;
    terms.push({ ...unit, price: typeof value === "number" ? value : sortedTiers(value as Tiered) });
  }
  const input = terms.find((t) => t.count === "input");
  const lessRead = prices.cache_read_mtok !== undefined;
  const lessWrite = prices.cache_write_mtok !== undefined;
  return (u) => {
    // A unit's leaf is its count less its priced descendants' leaves (integers here: exact in any order).
    const inputLeaf = u.input - ((lessRead ? u.cacheRead : 0) + (lessWrite ? u.cacheWrite : 0));
    if (input !== undefined && inputLeaf < 0) return undefined; // the library throws: more cache than input
    let inputUsd = 0;
    let outputUsd = 0;
    for (const t of terms) {
      const leaf = t.count === "input" ? inputLeaf : u[t.count];
      const amount = typeof t.price === "number" ? (t.price * leaf) / 1e6 : (tieredAmount(t.price, leaf, u.input) * 1e6) / 1e6;
      if (t.output) outputUsd += amount;
      else inputUsd += amount;
    }
    return { inputUsd, outputUsd };
  };
}

/** The library's check of a table (every unit's parents priced, valid tiers...), asked once: it throws or not. */
function validTable(prices: ModelPrice): boolean {
  const probe: GenaiPrices.Provider = { id: "oisp-probe", name: "probe", api_pattern: "", models: [{ id: "m", match: { equals: "m" }, prices }] };
  try {
    return genaiPrices().calcPrice({ input_tokens: 0, output_tokens: 0 }, "m", { provider: probe }) !== null;
  } catch {
    return false;
  }
}

function sortedTiers(t: Tiered): Tiered {
  return { base: t.base, tiers: [...t.tiers].sort((a, b) => a.start - b.start) };
}

/** A tiered price: the tier is chosen by the call's whole input, as the library does for every unit. */
function tieredAmount(t: Tiered, leaf: number, input: number): number {
  if (leaf <= 0) return 0;
  let price = t.base;
  for (const tier of t.tiers) if (input > tier.start) price = tier.price;
  return (price * leaf) / 1e6;
}
