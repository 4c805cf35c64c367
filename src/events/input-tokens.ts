// One definition of "input tokens" for every view (dashboard, TUI, analyze, exports): ALL prompt tokens,
// cache reads and cache writes included (as OpenAI and Gemini count them). Anthropic and Bedrock Converse
// report cache reads/writes beside their input count; the sensor adds them back when it builds the event
// (data.usage.prompt_tokens, the provider's own number kept in attrs.prompt_tokens_raw), and readers of
// events stored before that use eventInputTokens, which applies the same rule.

import { count, isObj } from "./read.ts";

/** Wire formats whose prompt count leaves cache reads and writes out. */
const CACHE_EXCLUSIVE_FORMATS: ReadonlySet<string> = new Set(["anthropic", "bedrock"]);

/** All input tokens from a provider's prompt count, cache reads and cache writes. */
export function totalInputTokens(prompt: number, cacheRead: number, cacheWrite: number, apiFormat: string | undefined): number {
  // Cache writes, or more cache reads than prompt tokens, only exist where the prompt count excludes them
  // (an Anthropic-format API behind a host matched as another format, e.g. a gateway).
  const exclusive = (apiFormat !== undefined && CACHE_EXCLUSIVE_FORMATS.has(apiFormat)) || cacheWrite > 0 || cacheRead > prompt;
  return exclusive ? prompt + cacheRead + cacheWrite : prompt;
}

/**
 * Input tokens of a stored ai.response (its data.usage and attrs), undefined when it has no prompt count.
 * Events that carry attrs.prompt_tokens_raw are normalised already; older ones get the rule applied here.
 */
export function eventInputTokens(usage: unknown, attrs: unknown): number | undefined {
  const u = isObj(usage) ? usage : {};
  const a = isObj(attrs) ? attrs : {};
  const prompt = count(u.prompt_tokens);
  if (prompt === undefined) return undefined;
  if (count(a.prompt_tokens_raw) !== undefined) return prompt;
  return totalInputTokens(prompt, count(u.cached_tokens) ?? 0, count(a.cache_write_tokens) ?? 0, typeof a.api_format === "string" ? a.api_format : undefined);
}
