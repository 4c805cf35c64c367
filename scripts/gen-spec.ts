// Writes spec/bundle.json (and spec/LICENSE-oisp-spec) from the OISP provider bundle of OximyHQ/oisp-spec.
// The output is committed and embedded in the binary; the app never reads the upstream copy at run time.
//   bun scripts/gen-spec.ts [SOURCE]            write spec/bundle.json, spec/LICENSE-oisp-spec, spec/oisp-schema/
//   bun scripts/gen-spec.ts [SOURCE] --check    exit 1 if either committed file differs from a fresh run
//   --out FILE                                  write/check another bundle file instead (tests)
// SOURCE is the oisp-spec folder or its bundle-v2.json; default ../shared/oisp-spec (from the repo root).
// Output is deterministic (sorted keys, no clock): rerunning on the same source gives identical bytes.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";

const repoRoot = path.resolve(import.meta.dir, "..");

// ---- upstream shape (the edge: validate what we read, fail with a clear message) ----

const UpstreamProvider = z.object({
  name: z.string().min(1),
  api_format: z.string().min(1),
  api_endpoint: z.string().nullable().optional(),
  env_vars: z.array(z.string()).default([]),
});

const cost = z.number().nonnegative().nullable().optional();
const tokens = z.number().int().nonnegative().nullable().optional();
const UpstreamModel = z.object({
  id: z.string().min(1),
  provider: z.string().min(1),
  family: z.string().nullable().optional(),
  mode: z.string().min(1),
  input_cost_per_1k: cost,
  output_cost_per_1k: cost,
  cache_read_cost_per_1k: cost,
  cache_write_cost_per_1k: cost,
  reasoning_cost_per_1k: cost,
  max_input_tokens: tokens,
  max_output_tokens: tokens,
});

const UpstreamBundle = z.object({
  bundle_version: z.string().min(1),
  version: z.string().optional(),
  generated_at: z.string().min(1),
  source: z.string().optional(),
  source_url: z.string().optional(),
  domain_lookup: z.record(z.string(), z.string()),
  domain_patterns: z.array(z.object({ pattern: z.string().min(1), provider: z.string().min(1) })),
  providers: z.record(z.string(), UpstreamProvider),
  models: z.record(z.string(), UpstreamModel),
});
export type UpstreamBundle = z.infer<typeof UpstreamBundle>;

// ---- project additions (facts the upstream bundle lacks; each one is marked in the output) ----

/** Exact hosts ("host" or "host:port" for local servers) the upstream bundle lacks. */
export const ADDED_DOMAINS: Record<string, { provider: string; why: string }> = {
  "localhost:11434": { provider: "ollama", why: "local Ollama server (default port)" },
  "127.0.0.1:11434": { provider: "ollama", why: "local Ollama server (default port)" },
  "[::1]:11434": { provider: "ollama", why: "local Ollama server (default port)" },
  "localhost:1234": { provider: "lmstudio", why: "local LM Studio server (upstream lists 127.0.0.1 only)" },
  "[::1]:1234": { provider: "lmstudio", why: "local LM Studio server (upstream lists 127.0.0.1 only)" },
  "aiplatform.googleapis.com": { provider: "google_vertex", why: "Vertex AI global endpoint" },
  "api.cohere.com": { provider: "cohere", why: "Cohere's current API host (upstream has api.cohere.ai only)" },
  "codestral.mistral.ai": { provider: "mistral", why: "Mistral's Codestral endpoint" },
  "api.together.xyz": { provider: "togetherai", why: "Together AI API host (upstream provider has no endpoint)" },
  "api.deepinfra.com": { provider: "deepinfra", why: "DeepInfra API host (upstream provider has no endpoint)" },
  "ai-gateway.vercel.sh": { provider: "vercel", why: "Vercel AI Gateway host (upstream provider has no endpoint)" },
  "api.v0.dev": { provider: "v0", why: "v0 API host (upstream provider has no endpoint)" },
  // Hosts from the Windows seed's provider table (its README) that the upstream bundle lacks.
  "api.together.ai": { provider: "togetherai", why: "Together AI host in the seed's provider table (current docs use api.together.xyz)" },
  "api.openrouter.ai": { provider: "openrouter", why: "OpenRouter host in the seed's provider table (upstream has openrouter.ai)" },
  "api-inference.huggingface.co": { provider: "huggingface", why: "Hugging Face serverless Inference API, in the seed's provider table (upstream has router.huggingface.co)" },
  "api.replicate.com": { provider: "replicate", why: "Replicate API host, in the seed's provider table" },
};

/** Providers the upstream bundle lacks entirely. */
export const ADDED_PROVIDERS: Record<string, { name: string; api_format: string; api_host: string; env_vars: string[]; why: string }> = {
  replicate: {
    name: "Replicate",
    api_format: "openai",
    api_host: "api.replicate.com",
    env_vars: ["REPLICATE_API_TOKEN"],
    why:
      "in the seed's provider table, absent upstream (OISP's provider enum has replicate). api_format openai: its " +
      "OpenAI-style routes are decoded; its own /v1/predictions API has no parser, so those calls are recorded as " +
      "intercepted connections without an ai.request",
  },
};

/** Host patterns the upstream bundle lacks. Anchored; `[a-z0-9-]+` is one DNS label. */
export const ADDED_PATTERNS: Array<{ pattern: string; provider: string; why: string }> = [
  { pattern: "^[a-z0-9-]+-aiplatform\\.googleapis\\.com$", provider: "google_vertex", why: "regional Vertex AI endpoints (REGION-aiplatform)" },
  { pattern: "^[a-z0-9-]+\\.services\\.ai\\.azure\\.com$", provider: "azure_openai", why: "Azure AI Foundry resources" },
  { pattern: "^[a-z0-9-]+\\.cognitiveservices\\.azure\\.com$", provider: "azure_openai", why: "Azure OpenAI on Cognitive Services resources" },
  { pattern: "^bedrock-runtime-fips\\.[a-z0-9-]+\\.amazonaws\\.com$", provider: "aws_bedrock", why: "Bedrock FIPS endpoints" },
];

/** Upstream provider fields the project changes, with the reason. */
export const PROVIDER_OVERRIDES: Record<string, { name?: string; api_format?: string; why: string }> = {
  ollama: {
    name: "Ollama",
    api_format: "ollama",
    why:
      "upstream describes only Ollama Cloud (ollama.com, OpenAI-compatible /v1); the project also maps local Ollama " +
      "servers to this provider, and both local and cloud serve the native /api/* API besides /v1",
  },
};

// ---- transformation ----

export interface SourceInfo {
  repository: string;
  commit: string;
  path: string;
  sha256: string;
  license: string;
}

/** "https://*.openai.azure.com/openai" → "*.openai.azure.com"; keeps a port ("127.0.0.1:1234"). */
export function endpointHost(endpoint: string | null | undefined): string | null {
  if (!endpoint) return null;
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(endpoint);
  return m?.[1] ? m[1].toLowerCase() : null;
}

/**
 * Upstream patterns are unanchored at the start and use `.*`, which also spans dots: `bedrock-runtime\..*\.amazonaws\.com$`
 * matches a user's S3 bucket host `bedrock-runtime.x.s3.amazonaws.com`. Pin `.*` to one DNS label and anchor both ends.
 */
export function tightenPattern(upstream: string): string {
  let body = upstream;
  if (body.startsWith("^")) body = body.slice(1);
  if (body.endsWith("$") && !body.endsWith("\\$")) body = body.slice(0, -1);
  body = body.replaceAll(".*", "[a-z0-9-]+");
  return body.includes("|") ? `^(?:${body})$` : `^${body}$`;
}

export function buildBundle(upstreamJson: unknown, source: SourceInfo): Record<string, unknown> {
  const parsed = UpstreamBundle.safeParse(upstreamJson);
  if (!parsed.success) throw new Error(`upstream bundle has an unexpected shape: ${z.prettifyError(parsed.error)}`);
  const up = parsed.data;
  const problems: string[] = [];

  const providers: Record<string, unknown> = {};
  for (const [id, p] of Object.entries(up.providers)) {
    const o = PROVIDER_OVERRIDES[id];
    providers[id] = {
      name: o?.name ?? p.name,
      api_format: o?.api_format ?? p.api_format,
      api_host: endpointHost(p.api_endpoint),
      env_vars: [...p.env_vars].sort(),
      ...(o ? { project_override: o.why } : {}),
    };
  }
  for (const id of Object.keys(PROVIDER_OVERRIDES)) if (!up.providers[id]) problems.push(`override of unknown provider ${id}`);
  for (const [id, a] of Object.entries(ADDED_PROVIDERS)) {
    if (up.providers[id]) problems.push(`added provider ${id} exists upstream`);
    providers[id] = { name: a.name, api_format: a.api_format, api_host: a.api_host, env_vars: [...a.env_vars].sort(), project_addition: a.why };
  }

  const domainLookup: Record<string, string> = { ...up.domain_lookup };
  for (const [host, a] of Object.entries(ADDED_DOMAINS)) {
    const existing = up.domain_lookup[host];
    if (existing !== undefined && existing !== a.provider) problems.push(`added host ${host} → ${a.provider} conflicts with upstream ${existing}`);
    domainLookup[host] = a.provider;
  }

  const patterns = [
    ...up.domain_patterns.map((p) => ({ pattern: tightenPattern(p.pattern), provider: p.provider, upstream_pattern: p.pattern })),
    ...ADDED_PATTERNS.map((p) => ({ pattern: p.pattern, provider: p.provider, project_addition: p.why })),
  ];
  for (const p of patterns) {
    try {
      new RegExp(p.pattern);
    } catch (e) {
      problems.push(`pattern ${p.pattern} does not compile: ${(e as Error).message}`);
    }
  }

  for (const [host, provider] of Object.entries(domainLookup)) if (!providers[provider]) problems.push(`host ${host} → unknown provider ${provider}`);
  for (const p of patterns) if (!providers[p.provider]) problems.push(`pattern ${p.pattern} → unknown provider ${p.provider}`);

  const models: Record<string, unknown> = {};
  for (const [key, m] of Object.entries(up.models)) {
    if (key !== `${m.provider}/${m.id}`) problems.push(`model key ${key} is not provider/id (${m.provider}/${m.id})`);
    if (!providers[m.provider]) problems.push(`model ${key} → unknown provider ${m.provider}`);
    const out: Record<string, unknown> = { mode: m.mode };
    if (m.family) out.family = m.family;
    for (const f of ["input_cost_per_1k", "output_cost_per_1k", "cache_read_cost_per_1k", "cache_write_cost_per_1k", "reasoning_cost_per_1k", "max_input_tokens", "max_output_tokens"] as const) {
      const v = m[f];
      if (v !== null && v !== undefined) out[f] = v;
    }
    models[key] = out;
  }

  if (problems.length) throw new Error(`upstream bundle is inconsistent:\n  ${problems.join("\n  ")}`);

  return {
    bundle_version: up.bundle_version,
    // The upstream generation time, not ours: keeps the output byte-identical across reruns.
    generated_at: up.generated_at,
    oisp_version: up.version ?? null,
    source: {
      ...source,
      upstream_generator: up.source ?? null,
      upstream_data_url: up.source_url ?? null,
      generated_by: "scripts/gen-spec.ts (bun run spec)",
    },
    project_additions: {
      domain_lookup: Object.fromEntries(Object.entries(ADDED_DOMAINS).map(([h, a]) => [h, a.why])),
      domain_patterns: Object.fromEntries(ADDED_PATTERNS.map((p) => [p.pattern, p.why])),
      provider_overrides: Object.fromEntries(Object.entries(PROVIDER_OVERRIDES).map(([id, o]) => [id, o.why])),
      providers: Object.fromEntries(Object.entries(ADDED_PROVIDERS).map(([id, a]) => [id, a.why])),
    },
    domain_lookup: domainLookup,
    domain_patterns: patterns,
    providers,
    models,
  };
}

/** JSON with sorted object keys; objects/arrays nested deeper than `prettyDepth` go on one line (one model per line). */
export function renderJson(value: unknown, prettyDepth = 2): string {
  const render = (v: unknown, depth: number): string => {
    if (v === null || typeof v !== "object") return JSON.stringify(v);
    const pretty = depth < prettyDepth;
    const pad = pretty ? "\n" + "  ".repeat(depth + 1) : "";
    const end = pretty ? "\n" + "  ".repeat(depth) : "";
    if (Array.isArray(v)) {
      if (v.length === 0) return "[]";
      return "[" + v.map((x) => pad + render(x, depth + 1)).join(",") + end + "]";
    }
    const keys = Object.keys(v).sort();
    if (keys.length === 0) return "{}";
    const colon = pretty ? ": " : ":";
    return "{" + keys.map((k) => pad + JSON.stringify(k) + colon + render((v as Record<string, unknown>)[k], depth + 1)).join(",") + end + "}";
  };
  return render(value, 0) + "\n";
}

function resolveSource(arg: string | undefined): { bundleFile: string; dir: string } {
  const given = path.resolve(repoRoot, arg ?? "../shared/oisp-spec");
  const isFile = fs.existsSync(given) && fs.statSync(given).isFile();
  return isFile ? { bundleFile: given, dir: path.dirname(given) } : { bundleFile: path.join(given, "bundle-v2.json"), dir: given };
}

/** The upstream commit, from SOURCE.md next to the bundle ("at commit c044fe2"). */
function upstreamCommit(dir: string): string {
  const sourceMd = path.join(dir, "SOURCE.md");
  if (!fs.existsSync(sourceMd)) return "unknown";
  return /\bcommit\s+([0-9a-f]{7,40})\b/i.exec(fs.readFileSync(sourceMd, "utf8"))?.[1] ?? "unknown";
}

/**
 * The OISP event JSON Schemas and example events, copied verbatim under spec/oisp-schema/: tests validate
 * every event against them (test/support/oisp-validate.ts) and must not depend on ../shared at run time.
 */
function schemaFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (from: string, to: string) => {
    if (!fs.existsSync(from)) throw new Error(`no OISP schema data at ${from}`);
    for (const name of fs.readdirSync(from).sort()) {
      const child = path.join(from, name);
      if (fs.statSync(child).isDirectory()) walk(child, path.join(to, name));
      else if (name.endsWith(".json")) out[path.join(to, name)] = fs.readFileSync(child, "utf8");
    }
  };
  walk(path.join(dir, "schema", "v0.1"), "v0.1");
  walk(path.join(dir, "examples"), "examples");
  return out;
}

export function generate(sourceArg?: string): { bundle: string; license: string; schemas: Record<string, string> } {
  const { bundleFile, dir } = resolveSource(sourceArg);
  if (!fs.existsSync(bundleFile)) throw new Error(`no upstream bundle at ${bundleFile} (pass the oisp-spec folder as an argument)`);
  const raw = fs.readFileSync(bundleFile);
  const licenseFile = path.join(dir, "LICENSE");
  if (!fs.existsSync(licenseFile)) throw new Error(`no LICENSE beside ${bundleFile}: the Apache-2.0 data must ship with its license`);
  const source: SourceInfo = {
    repository: "OximyHQ/oisp-spec",
    commit: upstreamCommit(dir),
    path: path.basename(bundleFile),
    sha256: createHash("sha256").update(raw).digest("hex"),
    license: "Apache-2.0",
  };
  const bundle = renderJson(buildBundle(JSON.parse(raw.toString("utf8")), source));
  return { bundle, license: fs.readFileSync(licenseFile, "utf8"), schemas: schemaFiles(dir) };
}

function main(argv: string[]): number {
  const check = argv.includes("--check");
  const outIdx = argv.indexOf("--out");
  const outArg = outIdx >= 0 ? argv[outIdx + 1] : undefined;
  const positional = argv.filter((a, i) => !a.startsWith("--") && (outIdx < 0 || i !== outIdx + 1));
  const targets = {
    bundle: path.resolve(outArg ?? path.join(repoRoot, "spec/bundle.json")),
    license: path.join(repoRoot, "spec/LICENSE-oisp-spec"),
  };
  let fresh: ReturnType<typeof generate>;
  try {
    fresh = generate(positional[0]);
  } catch (e) {
    console.error(`gen-spec: ${(e as Error).message}`);
    return 2;
  }
  const files: Array<readonly [string, string]> = [
    [targets.bundle, fresh.bundle],
    [targets.license, fresh.license],
    ...Object.entries(fresh.schemas).map(([rel, text]) => [path.join(repoRoot, "spec/oisp-schema", rel), text] as const),
  ];
  if (check) {
    let stale = 0;
    for (const [file, text] of files) {
      const current = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
      if (current !== text) {
        console.error(`${path.relative(process.cwd(), file)} is stale: run bun run spec`);
        stale++;
      }
    }
    if (stale) return 1;
    console.log("spec/bundle.json is up to date");
    return 0;
  }
  for (const [file, text] of files) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    console.log(`wrote ${path.relative(process.cwd(), file)} (${text.length} bytes)`);
  }
  return 0;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
