// The endpoint matcher and catalog against the committed, embedded bundle (spec/bundle.json).
import { describe, expect, test } from "bun:test";
import committed from "../../spec/bundle.json" with { type: "json" };
import { bundleInfo, isAiHost, matchEndpoint, modelInfo, parseHost, providerInfo, toApiFormat } from "../../src/spec/endpoints.ts";

const data = committed as unknown as {
  domain_lookup: Record<string, string>;
  domain_patterns: Array<{ pattern: string; provider: string }>;
  providers: Record<string, { api_format: string }>;
  models: Record<string, unknown>;
};

describe("matchEndpoint", () => {
  const cases: Array<[string, number | undefined, string, string, string]> = [
    // host, port, provider, apiFormat, matched host
    ["api.openai.com", 443, "openai", "openai", "api.openai.com"],
    ["API.OpenAI.com.", 443, "openai", "openai", "api.openai.com"],
    ["api.anthropic.com", undefined, "anthropic", "anthropic", "api.anthropic.com"],
    ["myres.openai.azure.com", 443, "azure_openai", "openai", "myres.openai.azure.com"],
    ["bedrock-runtime.us-east-1.amazonaws.com", 443, "aws_bedrock", "bedrock", "bedrock-runtime.us-east-1.amazonaws.com"],
    ["us-central1-aiplatform.googleapis.com", 443, "google_vertex", "google", "us-central1-aiplatform.googleapis.com"],
    ["europe-west4-aiplatform.googleapis.com", 443, "google_vertex", "google", "europe-west4-aiplatform.googleapis.com"],
    ["aiplatform.googleapis.com", 443, "google_vertex", "google", "aiplatform.googleapis.com"],
    ["my-proj.services.ai.azure.com", 443, "azure_openai", "openai", "my-proj.services.ai.azure.com"],
    ["myres.cognitiveservices.azure.com", 443, "azure_openai", "openai", "myres.cognitiveservices.azure.com"],
    ["api.cohere.com", 443, "cohere", "cohere", "api.cohere.com"],
    ["generativelanguage.googleapis.com", 443, "google", "google", "generativelanguage.googleapis.com"],
    ["localhost", 11434, "ollama", "ollama", "localhost"],
    ["127.0.0.1", 11434, "ollama", "ollama", "127.0.0.1"],
    ["[::1]", 11434, "ollama", "ollama", "::1"],
    ["::1", 11434, "ollama", "ollama", "::1"],
    ["localhost:11434", undefined, "ollama", "ollama", "localhost"],
    ["[::1]:1234", undefined, "lmstudio", "openai", "::1"],
    ["127.0.0.1", 1234, "lmstudio", "openai", "127.0.0.1"],
    ["LOCALHOST", 1234, "lmstudio", "openai", "localhost"],
  ];
  for (const [host, port, provider, apiFormat, matched] of cases) {
    test(`${host}${port ? `:${port}` : ""} → ${provider}`, () => {
      expect(matchEndpoint(host, port)).toEqual({ provider, apiFormat: apiFormat as never, host: matched });
      expect(isAiHost(host, port)).toBe(true);
    });
  }

  const misses: Array<[string, number | undefined]> = [
    ["127.0.0.1", 8080],
    ["localhost", undefined], // local servers only on their port
    ["localhost", 443],
    ["example.com", 443],
    ["evil-api.openai.com.attacker.net", 443],
    ["api.openai.com.attacker.net", 443],
    ["xapi.openai.com", 443],
    ["openai.azure.com", 443],
    ["a.b.openai.azure.com.evil.net", 443],
    ["bedrock-runtime.x.s3.amazonaws.com", 443], // a user's S3 bucket, not Bedrock (upstream `.*` spanned dots)
    ["evilbedrock-runtime.us-east-1.amazonaws.com", 443],
    ["aiplatform.googleapis.com.evil.net", 443],
    ["", 443],
    [".", 443],
    ["a".repeat(400) + ".openai.azure.com", 443],
  ];
  for (const [host, port] of misses) {
    test(`${host.slice(0, 40)}${port ? `:${port}` : ""} → undefined`, () => {
      expect(matchEndpoint(host, port)).toBeUndefined();
      expect(isAiHost(host, port)).toBe(false);
    });
  }

  test("an explicit port wins over one in the host string; bad ports are ignored", () => {
    expect(matchEndpoint("localhost:8080", 11434)?.provider).toBe("ollama");
    expect(matchEndpoint("localhost", 70000)).toBeUndefined();
    expect(matchEndpoint("api.openai.com", -1)?.provider).toBe("openai");
  });

  test("every domain_lookup entry of the committed bundle matches its provider", () => {
    const entries = Object.entries(data.domain_lookup);
    expect(entries.length).toBeGreaterThan(60);
    for (const [key, provider] of entries) {
      const m = matchEndpoint(key);
      expect({ key, provider: m?.provider, apiFormat: m?.apiFormat }).toEqual({
        key,
        provider,
        apiFormat: toApiFormat(data.providers[provider]!.api_format),
      });
      expect(m!.host).toBe(parseHost(key).host);
    }
  });

  test("every bundle pattern is anchored and is used by the matcher", () => {
    for (const { pattern, provider } of data.domain_patterns) {
      expect(pattern.startsWith("^") && pattern.endsWith("$")).toBe(true);
      // Build a host the pattern accepts by replacing each one-label wildcard with a label.
      const host = pattern.slice(1, -1).replaceAll("[a-z0-9-]+", "zz9").replaceAll("\\.", ".");
      expect(matchEndpoint(host, 443)?.provider).toBe(provider);
      expect(matchEndpoint(`${host}.attacker.net`, 443)).toBeUndefined();
    }
  });
});

describe("parseHost", () => {
  test("splits ports, drops brackets and one trailing dot, lower-cases", () => {
    expect(parseHost("Example.COM.")).toEqual({ host: "example.com" });
    expect(parseHost("[::1]:1234")).toEqual({ host: "::1", port: 1234 });
    expect(parseHost("[::1]")).toEqual({ host: "::1" });
    expect(parseHost("::1")).toEqual({ host: "::1" });
    expect(parseHost("fe80::1:1234")).toEqual({ host: "fe80::1:1234" });
    expect(parseHost("localhost:11434")).toEqual({ host: "localhost", port: 11434 });
    expect(parseHost("localhost:99999")).toEqual({ host: "localhost" });
  });
});

describe("catalog", () => {
  test("modelInfo for openai/gpt-4o-mini has prices per 1k tokens", () => {
    const m = modelInfo("openai", "gpt-4o-mini");
    expect(m).toBeDefined();
    expect(m!.provider).toBe("openai");
    expect(m!.id).toBe("gpt-4o-mini");
    expect(m!.family).toBe("gpt-4o-mini");
    expect(m!.mode).toBe("chat");
    // Same figures as the committed bundle (not hard-coded here), and plausible: output dearer than input.
    const raw = data.models["openai/gpt-4o-mini"] as { input_cost_per_1k: number; output_cost_per_1k: number };
    expect(m!.inputCostPer1k).toBe(raw.input_cost_per_1k);
    expect(m!.outputCostPer1k).toBe(raw.output_cost_per_1k);
    expect(m!.inputCostPer1k!).toBeGreaterThan(0);
    expect(m!.outputCostPer1k!).toBeGreaterThan(m!.inputCostPer1k!);
    expect(m!.maxInputTokens!).toBeGreaterThan(1000);
  });

  test("modelInfo falls back to case-insensitive and undated ids, and misses cleanly", () => {
    expect(modelInfo("openai", "GPT-4o-mini")?.id).toBe("gpt-4o-mini");
    expect(modelInfo("openai", "gpt-4o-mini-2024-07-18")?.id).toBe("gpt-4o-mini");
    expect(modelInfo("openai", "no-such-model")).toBeUndefined();
    expect(modelInfo("nope", "gpt-4o-mini")).toBeUndefined();
    expect(modelInfo("openai", "")).toBeUndefined();
    expect(modelInfo("openai", "x".repeat(1000))).toBeUndefined();
    // Model ids with slashes (gateways) resolve too.
    expect(modelInfo("openrouter", "openai/gpt-4o-mini")?.provider).toBe("openrouter");
  });

  test("providerInfo maps api_format to the sensor's formats", () => {
    expect(providerInfo("openai")).toMatchObject({ name: "OpenAI", apiFormat: "openai", apiHost: "api.openai.com" });
    expect(providerInfo("anthropic")?.apiFormat).toBe("anthropic");
    expect(providerInfo("aws_bedrock")?.apiFormat).toBe("bedrock");
    expect(providerInfo("ollama")?.apiFormat).toBe("ollama");
    expect(providerInfo("no_such_provider")).toBeUndefined();
    for (const id of Object.keys(data.providers)) expect(providerInfo(id)?.id).toBe(id);
  });

  test("toApiFormat accepts known formats and openai-compatible only", () => {
    expect(toApiFormat("OpenAI")).toBe("openai");
    expect(toApiFormat("openai-compatible")).toBe("openai");
    expect(toApiFormat("openai_compatible")).toBe("openai");
    expect(toApiFormat("grpc")).toBeUndefined();
    expect(toApiFormat("")).toBeUndefined();
  });

  test("bundleInfo describes the embedded bundle", () => {
    const info = bundleInfo();
    expect(info.version).toBe((committed as { bundle_version: string }).bundle_version);
    expect(info.generatedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(info.providers).toBe(Object.keys(data.providers).length);
    expect(info.models).toBe(Object.keys(data.models).length);
    expect(info.source).toContain("OximyHQ/oisp-spec@");
  });
});
