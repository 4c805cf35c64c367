// Unknown hosts with --all-traffic: every TLS host is intercepted, and a call is reported as AI only when
// its body has the shape of one (a JSON `model` with messages / input / contents / prompt). Such events say
// so: medium confidence, ai_detection_method payload_inspection, provider "other", the real endpoint.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type http from "node:http";
import { eventsOfPid, ofType, runCurl, startE2e, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { fakeProviderHandler, sendJson, type ExtraRoute } from "../support/fake-providers.ts";
import { readEvents, waitFor } from "../support/oisp-process.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

const KEY = "sk-ShapeTestKey0123456789abcdefSECRET";

/** A company gateway speaking Chat Completions under its own path, and one non-AI JSON API. */
const gatewayRoute: ExtraRoute = (req, res, body) => {
  const url = new URL(req.url ?? "/", "https://x");
  if (url.pathname === "/inference/chat") {
    sendJson(req as http.IncomingMessage, res, 200, {
      id: "chatcmpl-gw-1",
      object: "chat.completion",
      created: 1_732_000_000,
      model: `${body.model}-gw`,
      choices: [{ index: 0, message: { role: "assistant", content: "Gateway answer." }, finish_reason: "stop" }],
      usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 },
    });
    return true;
  }
  if (url.pathname === "/api/orders") {
    sendJson(req as http.IncomingMessage, res, 201, { ok: true });
    return true;
  }
  return false;
};

let h: E2eHarness;
beforeAll(async () => {
  h = await startE2e({
    hosts: ["llm.internal.example", "shop.example", "api.openai.com"],
    handler: fakeProviderHandler({ extra: gatewayRoute }),
    h2: true,
    args: ["--all-traffic"],
  });
});
afterAll(async () => {
  await h?.close();
});

const post = (url: string, body: unknown, extra: string[] = []) =>
  runCurl(["--proxy", h.proxyUrl, "--cacert", h.caFile, url, "-H", `Authorization: Bearer ${KEY}`, "-H", "content-type: application/json", "-d", JSON.stringify(body), ...extra]);

function expectShapeConfidence(e: AnyEvent) {
  expect(e.confidence).toMatchObject({ level: "medium", ai_detection_method: "payload_inspection" });
  expect(e.confidence.reasons).toContain("unknown_host_ai_payload_shape");
}

describe("--all-traffic, unknown hosts", () => {
  test("OpenAI-compatible path on an unknown host: an AI call, marked as detected by shape", async () => {
    const r = await post("https://llm.internal.example/v1/chat/completions", { model: "llama-3.1-70b", messages: [{ role: "user", content: "hi gateway" }] }, ["--http2"]);
    expect(r.code).toBe(0);
    const events = await eventsOfPid(h.dbPath, r.pid);
    for (const e of events) validateOispEvent(e);
    const [req] = ofType(events, "ai.request") as [AnyEvent];
    const [res] = ofType(events, "ai.response") as [AnyEvent];
    expect(req.data.provider).toEqual({ name: "other", endpoint: "https://llm.internal.example/v1/chat/completions" });
    expect(req.data.model.id).toBe("llama-3.1-70b");
    expect(req.data.messages.map((m: any) => m.content)).toEqual(["hi gateway"]);
    expect(req.attrs.provider_id).toBe("unknown");
    expect(res.data.choices[0].message.content).toBe("Hello!");
    expect(res.data.usage).toMatchObject({ prompt_tokens: 82, completion_tokens: 17 });
    for (const e of [req, res]) expectShapeConfidence(e);
  });

  test("a gateway's own path carrying a Chat Completions body: parsed as one, reported with its real endpoint", async () => {
    const r = await post("https://llm.internal.example/inference/chat", { model: "mixtral", messages: [{ role: "system", content: "S" }, { role: "user", content: "via gateway" }] });
    expect(r.code).toBe(0);
    const events = await eventsOfPid(h.dbPath, r.pid);
    for (const e of events) validateOispEvent(e);
    const [req] = ofType(events, "ai.request") as [AnyEvent];
    const [res] = ofType(events, "ai.response") as [AnyEvent];
    expect(req.data.provider.endpoint).toBe("https://llm.internal.example/inference/chat");
    expect(res.data.provider.endpoint).toBe("https://llm.internal.example/inference/chat");
    expect(req.data.has_system_prompt).toBe(true);
    expect(res.data.model.id).toBe("mixtral-gw");
    expect(res.data.choices[0].message.content).toBe("Gateway answer.");
    expect(res.data.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 });
    expectShapeConfidence(res);
  });

  test("JSON that is not an AI call (no model, or no conversation) is relayed and not reported", async () => {
    const a = await post("https://shop.example/api/orders", { item: "book", quantity: 2 });
    const b = await post("https://shop.example/api/orders", { model: "T-800", color: "chrome" });
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(JSON.parse(a.out)).toEqual({ ok: true });
    // network.connect is stored when its connection closes, after the exchange on it was decoded: once
    // both are stored, anything else the sensor made of these two calls is stored too.
    const mine = await waitFor("both connections' network.connect", () => {
      const rows = readEvents(h.dbPath).filter((e) => [a.pid, b.pid].includes((e.process as any)?.pid));
      return rows.filter((e) => e.event_type === "network.connect").length >= 2 ? rows : undefined;
    });
    expect(mine.map((e) => e.event_type)).toEqual(["network.connect", "network.connect"]);
  });

  test("known hosts keep high confidence and their endpoint detection", async () => {
    const r = await post("https://api.openai.com/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "user", content: "known" }] });
    const events = await eventsOfPid(h.dbPath, r.pid);
    const [req] = ofType(events, "ai.request") as [AnyEvent];
    expect(req.data.provider.name).toBe("openai");
    expect(req.confidence).toMatchObject({ level: "high", ai_detection_method: "known_endpoint" });
  });
});
