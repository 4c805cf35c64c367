// scripts/gen-spec.ts: the committed spec/bundle.json is what the generator makes from the upstream bundle,
// --check notices a stale file, and the transformation rejects inconsistent upstream data.
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildBundle, renderJson, tightenPattern } from "../../scripts/gen-spec.ts";

const repoRoot = path.resolve(import.meta.dir, "../..");
const script = path.join(repoRoot, "scripts/gen-spec.ts");
const upstreamDir = path.resolve(repoRoot, "../shared/oisp-spec");
const haveUpstream = fs.existsSync(path.join(upstreamDir, "bundle-v2.json"));

function runGen(args: string[]) {
  const p = Bun.spawnSync([process.execPath, script, ...args], { cwd: repoRoot, timeout: 20_000 });
  return { code: p.exitCode, out: p.stdout.toString() + p.stderr.toString() };
}

// The upstream copy lives outside the repository (../shared); without it there is nothing to compare against.
describe.skipIf(!haveUpstream)("gen-spec against the upstream bundle", () => {
  test("--check passes on the committed spec/bundle.json", () => {
    const r = runGen(["--check"]);
    expect(r.out).toContain("up to date");
    expect(r.code).toBe(0);
  });

  test("--check exits 1 on a stale bundle file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-spec-gen-"));
    try {
      const stale = path.join(dir, "bundle.json");
      const text = fs.readFileSync(path.join(repoRoot, "spec/bundle.json"), "utf8");
      fs.writeFileSync(stale, text.replace('"api.openai.com": "openai"', '"api.openai.com": "groq"'));
      const r = runGen(["--check", "--out", stale]);
      expect(r.code).toBe(1);
      expect(r.out).toContain("stale");
      // Writing to that path then makes it match the committed file byte for byte.
      expect(runGen(["--out", stale]).code).toBe(0);
      expect(fs.readFileSync(stale, "utf8")).toBe(text);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a missing source is a clear error, not a crash", () => {
    const r = runGen(["/nonexistent/oisp-spec", "--check"]);
    expect(r.code).toBe(2);
    expect(r.out).toContain("no upstream bundle");
  });
});

describe("gen-spec transformation", () => {
  const source = { repository: "r", commit: "c", path: "p", sha256: "s", license: "Apache-2.0" };
  const minimal = () => ({
    bundle_version: "9.9.9",
    generated_at: "2026-01-01T00:00:00Z",
    domain_lookup: { "api.openai.com": "openai" },
    domain_patterns: [{ pattern: ".*\\.openai\\.azure\\.com$", provider: "azure_openai" }],
    providers: Object.fromEntries(
      ["openai", "azure_openai", "ollama", "lmstudio", "google_vertex", "cohere", "mistral", "togetherai", "deepinfra", "vercel", "v0", "aws_bedrock", "openrouter", "huggingface"].map(
        (id) => [id, { name: id, api_format: "openai", api_endpoint: null, env_vars: [] }],
      ),
    ),
    models: { "openai/m1": { id: "m1", provider: "openai", family: null, mode: "chat", input_cost_per_1k: 0.001, output_cost_per_1k: null, max_input_tokens: 10, max_output_tokens: 5 } },
  });

  test("keeps what the product needs, drops nulls, adds the project's hosts", () => {
    const b = buildBundle(minimal(), source) as any;
    expect(b.bundle_version).toBe("9.9.9");
    expect(b.generated_at).toBe("2026-01-01T00:00:00Z");
    expect(b.models["openai/m1"]).toEqual({ mode: "chat", input_cost_per_1k: 0.001, max_input_tokens: 10, max_output_tokens: 5 });
    expect(b.domain_lookup["localhost:11434"]).toBe("ollama");
    expect(b.providers.ollama.api_format).toBe("ollama");
    // The seed's provider table: hosts and the Replicate provider upstream lacks, each marked with its reason.
    expect(b.domain_lookup["api.replicate.com"]).toBe("replicate");
    expect(b.providers.replicate).toMatchObject({ name: "Replicate", api_host: "api.replicate.com", project_addition: expect.stringContaining("seed") });
    expect(Object.keys(b.project_additions.domain_lookup)).toEqual(expect.arrayContaining(["api.together.ai", "api.openrouter.ai", "api-inference.huggingface.co", "api.replicate.com"]));
    expect(b.domain_patterns[0]).toEqual({ pattern: "^[a-z0-9-]+\\.openai\\.azure\\.com$", provider: "azure_openai", upstream_pattern: ".*\\.openai\\.azure\\.com$" });
  });

  test("rejects dangling provider references and malformed input", () => {
    const bad = minimal();
    (bad.domain_lookup as Record<string, string>)["api.example.ai"] = "nobody";
    expect(() => buildBundle(bad, source)).toThrow(/unknown provider nobody/);
    expect(() => buildBundle({ bundle_version: 1 }, source)).toThrow(/unexpected shape/);
  });

  test("tightenPattern anchors and pins wildcards to one label", () => {
    expect(tightenPattern("bedrock-runtime\\..*\\.amazonaws\\.com$")).toBe("^bedrock-runtime\\.[a-z0-9-]+\\.amazonaws\\.com$");
    expect(tightenPattern("^a|b$")).toBe("^(?:a|b)$");
  });

  test("renderJson sorts keys at every depth, so key order in the input does not matter", () => {
    expect(renderJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: null } })).toBe(renderJson({ a: { c: null, d: [2, { y: 2, z: 1 }] }, b: 1 }));
    expect(renderJson({ b: 1, a: 2 })).toBe('{\n  "a": 2,\n  "b": 1\n}\n');
  });
});
