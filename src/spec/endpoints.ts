// Endpoint matcher: is this host (and port) an AI provider's API, and which one?
//
// It runs for every proxied connection (the intercept-or-pass decision) and again in the sensor, so it is built
// to be cheap: the bundle is indexed once at module init; an exact host is one Map lookup with no regex; only
// a miss tries the few precompiled, anchored patterns, each behind an endsWith() check on its literal suffix.
// Hit results for exact hosts are shared frozen objects (no allocation).
import { bundle } from "./bundle.ts";
import { providerInfo } from "./catalog.ts";
import type { EndpointMatch } from "./types.ts";

export type { ApiFormat, EndpointMatch } from "./types.ts";
export { bundleInfo, type BundleInfo } from "./bundle.ts";
export { modelInfo, providerInfo, toApiFormat, type ModelInfo, type ProviderInfo } from "./catalog.ts";

/** Longer inputs are not host names (DNS caps a name at 253); they match nothing. */
const MAX_HOST_LENGTH = 300;

interface HostPort {
  host: string;
  port?: number;
}

function validPort(p: number | undefined): number | undefined {
  return p !== undefined && Number.isInteger(p) && p > 0 && p <= 65535 ? p : undefined;
}

/**
 * "API.OpenAI.com." → api.openai.com; "[::1]:11434" → ::1 + 11434; "localhost:1234" → localhost + 1234.
 * A bare IPv6 address ("::1", several colons) has no port. Lower-cases, drops one trailing dot and brackets.
 */
export function parseHost(input: string): HostPort {
  let host = input;
  let port: number | undefined;
  if (host.startsWith("[")) {
    const close = host.indexOf("]");
    if (close > 0) {
      const rest = host.slice(close + 1);
      if (/^:\d{1,5}$/.test(rest)) port = validPort(Number(rest.slice(1)));
      host = host.slice(1, close);
    }
  } else {
    const colon = host.indexOf(":");
    if (colon >= 0 && colon === host.lastIndexOf(":") && /^\d{1,5}$/.test(host.slice(colon + 1))) {
      port = validPort(Number(host.slice(colon + 1)));
      host = host.slice(0, colon);
    }
  }
  host = host.toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  return port === undefined ? { host } : { host, port };
}

/** Index key of a host on a port: "localhost:1234", "[::1]:1234". */
function portKey(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

// ---- index, built once ----

const exact = new Map<string, EndpointMatch>();
for (const [key, provider] of Object.entries(bundle.domain_lookup)) {
  const apiFormat = providerInfo(provider)?.apiFormat;
  if (!apiFormat) continue; // provider without a parser-backed api_format: leave its traffic alone
  const { host, port } = parseHost(key);
  exact.set(port === undefined ? host : portKey(host, port), Object.freeze({ provider, apiFormat, host }));
}

interface CompiledPattern {
  re: RegExp;
  /** Literal tail every match must end with ("" when it cannot be derived safely): a cheap pre-check. */
  suffix: string;
  provider: string;
  apiFormat: EndpointMatch["apiFormat"];
}

/** The literal end of a pattern ("\.openai\.azure\.com$" → ".openai.azure.com"), or "" if not provably literal. */
function literalSuffix(pattern: string): string {
  if (pattern.includes("|")) return "";
  const m = /((?:\\\.|[A-Za-z0-9_-])*)\$$/.exec(pattern);
  if (!m?.[1]) return "";
  if (pattern[m.index - 1] === "\\") return ""; // the run starts inside an escape such as \d
  return m[1].replaceAll("\\.", ".").toLowerCase();
}

const patterns: CompiledPattern[] = [];
for (const p of bundle.domain_patterns) {
  const apiFormat = providerInfo(p.provider)?.apiFormat;
  if (!apiFormat) continue;
  let re: RegExp;
  try {
    // Anchored here too, whatever the bundle says: a pattern must never match inside a longer host.
    re = new RegExp(`^(?:${p.pattern})$`, "i");
  } catch {
    continue; // the generator rejects bad patterns; a hand-edited bundle must not crash the proxy
  }
  patterns.push({ re, suffix: literalSuffix(p.pattern), provider: p.provider, apiFormat });
}

// ---- lookups ----

/**
 * The AI provider behind host (and port), or undefined. `host` may carry the port ("localhost:11434",
 * "[::1]:1234") when `port` is not given. Exact hosts first, then the bundle's host patterns.
 * Local servers are listed with their port; public hosts match on any port.
 */
export function matchEndpoint(host: string, port?: number): EndpointMatch | undefined {
  if (typeof host !== "string" || host.length === 0 || host.length > MAX_HOST_LENGTH) return undefined;
  const parsed = parseHost(host);
  const h = parsed.host;
  if (!h) return undefined;
  const p = validPort(port) ?? parsed.port;
  if (p !== undefined) {
    const hit = exact.get(portKey(h, p));
    if (hit) return hit;
  }
  const hit = exact.get(h);
  if (hit) return hit;
  for (const pat of patterns) {
    if ((pat.suffix === "" || h.endsWith(pat.suffix)) && pat.re.test(h)) {
      return { provider: pat.provider, apiFormat: pat.apiFormat, host: h };
    }
  }
  return undefined;
}

/** Whether connections to host:port should be intercepted as AI traffic. */
export function isAiHost(host: string, port?: number): boolean {
  return matchEndpoint(host, port) !== undefined;
}
