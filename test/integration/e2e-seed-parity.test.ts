// What the seeds' users see, end to end through `oisp up`: providers OISP's enum calls "other" (xAI,
// DeepSeek, Perplexity, OpenRouter) are shown and grouped by their bundle id in the store the dashboard
// and TUI read and in `oisp analyze`, while the event keeps the schema's provider.name. And one definition
// of input tokens (all prompt tokens, cache reads and writes included) shown the same everywhere.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { analyzeFile } from "../../src/analyze/index.ts";
import { openWebQueries } from "../../src/store/queries.ts";
import { GenAiCorrelator } from "../../src/sinks/genai.ts";
import { eventsOfPid, ofType, runCurl, startE2e, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { anyChatCompletionsPath, fakeProviderHandler } from "../support/fake-providers.ts";
import { readEvents, waitFor } from "../support/oisp-process.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

// Each provider's real chat path; the fake answers them all as OpenAI chat completions.
const OTHER_PROVIDERS = [
  { id: "xai", url: "https://api.x.ai/v1/chat/completions", model: "grok-3" },
  { id: "deepseek", url: "https://api.deepseek.com/chat/completions", model: "deepseek-chat" },
  { id: "perplexity", url: "https://api.perplexity.ai/chat/completions", model: "sonar" },
  { id: "openrouter", url: "https://openrouter.ai/api/v1/chat/completions", model: "openai/gpt-4o-mini" },
];
// Hosts of the seed's provider table the upstream bundle lacked (scripts/gen-spec.ts ADDED_DOMAINS).
const SEED_HOSTS = [
  { id: "togetherai", oisp: "together", url: "https://api.together.ai/v1/chat/completions", model: "meta-llama/Llama-3.3-70B-Instruct-Turbo" },
  { id: "openrouter", oisp: "other", url: "https://api.openrouter.ai/api/v1/chat/completions", model: "openai/gpt-4o-mini" },
  { id: "huggingface", oisp: "huggingface", url: "https://api-inference.huggingface.co/models/meta-llama/Llama-3.1-8B-Instruct/v1/chat/completions", model: "meta-llama/Llama-3.1-8B-Instruct" },
];
const HOSTS = [...OTHER_PROVIDERS.map((p) => new URL(p.url).hostname), "api.anthropic.com", ...SEED_HOSTS.map((p) => new URL(p.url).hostname), "api.replicate.com"];

let h: E2eHarness;
beforeAll(async () => {
  const handler = fakeProviderHandler({ extra: anyChatCompletionsPath });
  h = await startE2e({ hosts: HOSTS, handler });
});
afterAll(async () => {
  await h?.close();
});

async function single(pid: number) {
  const events = await eventsOfPid(h.dbPath, pid);
  for (const e of events) validateOispEvent(e);
  return { events, req: ofType(events, "ai.request")[0] as AnyEvent, res: ofType(events, "ai.response")[0] as AnyEvent };
}

const curlJson = (url: string, auth: string, body: unknown) =>
  runCurl(["--proxy", h.proxyUrl, "--cacert", h.caFile, url, "-H", auth, "-H", "content-type: application/json", "-d", JSON.stringify(body)]);

describe("providers OISP calls 'other'", () => {
  test("xAI, DeepSeek, Perplexity, OpenRouter: event keeps provider.name other; store, dashboard/TUI queries and analyze show the bundle id", async () => {
    for (const p of OTHER_PROVIDERS) {
      const r = await curlJson(p.url, "Authorization: Bearer test-key-0123456789", { model: p.model, messages: [{ role: "user", content: `hi ${p.id}` }] });
      expect(r.code).toBe(0);
      const { req, res } = await single(r.pid);
      expect(req.data.provider.name).toBe("other");
      expect(res.data.provider.name).toBe("other");
      expect(req.attrs.provider_id).toBe(p.id);
    }

    const q = openWebQueries(h.dbPath);
    try {
      const ids = OTHER_PROVIDERS.map((p) => p.id);
      const shown = q.providers().map((u) => u.provider);
      expect(shown).toEqual(expect.arrayContaining(ids));
      expect(shown).not.toContain("other");
      expect(q.distinct("provider")).toEqual(expect.arrayContaining(ids));
      const timeline = q.timeline({}, { limit: 100 }).rows;
      expect(timeline.filter((r) => r.event_type === "ai.response").map((r) => r.provider)).toEqual(expect.arrayContaining(ids));
    } finally {
      q.close();
    }

    const report = await analyzeFile(h.dbPath);
    const byId = new Map(report.providers.map((p) => [p.provider, p]));
    expect(byId.has("other")).toBe(false);
    for (const p of OTHER_PROVIDERS) expect(byId.get(p.id)?.responses).toBe(1);
  });
});

describe("provider hosts of the seed's table are intercepted", () => {
  test("api.together.ai, api.openrouter.ai, api-inference.huggingface.co: decoded as their provider", async () => {
    for (const p of SEED_HOSTS) {
      const r = await curlJson(p.url, "Authorization: Bearer test-key-0123456789", { model: p.model, messages: [{ role: "user", content: `hi ${p.id}` }] });
      expect(r.code).toBe(0);
      const { events, req } = await single(r.pid);
      expect(ofType(events, "network.connect")[0]!.attrs.mode).toBe("mitm");
      expect(req.attrs.provider_id).toBe(p.id);
      expect(req.data.provider).toEqual({ name: p.oisp, endpoint: p.url });
      expect(req.data.model.id).toBe(p.model);
    }
  });

  test("api.replicate.com: intercepted (its predictions API has no parser: the connection is recorded, decrypted)", async () => {
    const r = await curlJson("https://api.replicate.com/v1/predictions", "Authorization: Bearer r8_test0123456789abcdefghij", { version: "abc", input: { prompt: "hi" } });
    expect(r.code).toBe(0);
    const connect = await waitFor("replicate's network.connect", () =>
      (readEvents(h.dbPath) as AnyEvent[]).find((e) => e.event_type === "network.connect" && e.process?.pid === r.pid),
    );
    expect(connect.data.tls?.sni ?? connect.data.dest?.host ?? "").toContain("api.replicate.com");
    expect(connect.attrs.mode).toBe("mitm");
  });
});

describe("input tokens: one definition everywhere", () => {
  test("an Anthropic call with 472 input + 128 cache-read tokens is 600 input tokens in the event, store, dashboard/TUI, analyze and OTLP", async () => {
    const r = await curlJson("https://api.anthropic.com/v1/messages", "x-api-key: sk-ant-api03-tokensTestKey0123456789abcdef", {
      model: "claude-sonnet-4-5",
      max_tokens: 100,
      messages: [{ role: "user", content: "count my tokens" }],
    });
    expect(r.code).toBe(0);
    const { req, res } = await single(r.pid);
    // The event: prompt_tokens includes the cache reads; the provider's own count is kept beside.
    expect(res.data.usage).toMatchObject({ prompt_tokens: 600, cached_tokens: 128 });
    expect(res.attrs.prompt_tokens_raw).toBe(472);

    const q = openWebQueries(h.dbPath);
    try {
      const row = q.timeline({ provider: "anthropic" }, { limit: 10 }).rows.find((x) => x.event_id === res.event_id)!;
      expect(row.input_tokens).toBe(600); // timeline (dashboard and TUI)
      expect(q.providers().find((p) => p.provider === "anthropic")!.input_tokens).toBe(600); // inventory rollups
    } finally {
      q.close();
    }
    const report = await analyzeFile(h.dbPath);
    expect(report.providers.find((p) => p.provider === "anthropic")!.input_tokens).toBe(600);

    const otlp = new GenAiCorrelator({ includeContent: false });
    otlp.add(req);
    expect(otlp.add(res)!.attributes["gen_ai.usage.input_tokens"]).toBe(600);
  });
});
