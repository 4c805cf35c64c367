// What the seeds' users see, end to end through `oisp up`: providers OISP's enum calls "other" (xAI,
// DeepSeek, Perplexity, OpenRouter) are shown and grouped by their bundle id in the store the dashboard
// and TUI read and in `oisp analyze`, while the event keeps the schema's provider.name.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { analyzeFile } from "../../src/analyze/index.ts";
import { openWebQueries } from "../../src/store/queries.ts";
import { eventsOfPid, ofType, runCurl, startE2e, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

// Each provider's real chat path; the fake answers them all as OpenAI chat completions.
const OTHER_PROVIDERS = [
  { id: "xai", url: "https://api.x.ai/v1/chat/completions", model: "grok-3" },
  { id: "deepseek", url: "https://api.deepseek.com/chat/completions", model: "deepseek-chat" },
  { id: "perplexity", url: "https://api.perplexity.ai/chat/completions", model: "sonar" },
  { id: "openrouter", url: "https://openrouter.ai/api/v1/chat/completions", model: "openai/gpt-4o-mini" },
];
const HOSTS = OTHER_PROVIDERS.map((p) => new URL(p.url).hostname);

let h: E2eHarness;
beforeAll(async () => {
  const handler = fakeProviderHandler({
    extra: (req) => {
      if (req.url?.endsWith("/chat/completions")) req.url = "/v1/chat/completions";
      return false;
    },
  });
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
      const shown = q.providers().map((u) => u.provider);
      expect(shown.sort()).toEqual(OTHER_PROVIDERS.map((p) => p.id).sort());
      expect(q.distinct("provider").sort()).toEqual(OTHER_PROVIDERS.map((p) => p.id).sort());
      const timeline = q.timeline({}, { limit: 100 }).rows;
      expect(timeline.filter((r) => r.event_type === "ai.response").map((r) => r.provider).sort()).toEqual(OTHER_PROVIDERS.map((p) => p.id).sort());
    } finally {
      q.close();
    }

    const report = await analyzeFile(h.dbPath);
    expect(report.providers.map((p) => p.provider).sort()).toEqual(OTHER_PROVIDERS.map((p) => p.id).sort());
    for (const p of report.providers) expect(p.responses).toBe(1);
  });
});
