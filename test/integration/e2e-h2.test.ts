// HTTP/2 end to end: the proxy mirrors ALPN (client offer upstream, upstream's choice back), so curl
// --http2 and node:http2 speak h2 through the byte relay to an h2-capable upstream, while --http1.1 still
// gets HTTP/1.1 from the same upstream. The sensor decodes frames + HPACK and pairs streams.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import path from "node:path";
import { eventsOfConnections, eventsOfPid, ofType, runClientScript, runCurl, startE2e, storedBytes, type E2eHarness } from "../support/e2e-harness.ts";
import { fakeProviderHandler, FIXED } from "../support/fake-providers.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

const KEY = "sk-proj-H2TestKey0123456789abcdefSECRET";
const h2Client = path.join(import.meta.dir, "../support/clients/h2-client.ts");

let h: E2eHarness;
beforeAll(async () => {
  h = await startE2e({ hosts: ["api.openai.com"], handler: fakeProviderHandler(), h2: true });
});
afterAll(async () => {
  await h?.close();
});

function curlChat(version: "--http2" | "--http1.1", body: object) {
  return runCurl([
    version, "--proxy", h.proxyUrl, "--cacert", h.caFile, "https://api.openai.com/v1/chat/completions",
    "-H", `Authorization: Bearer ${KEY}`, "-H", "content-type: application/json", "-d", JSON.stringify(body),
    "-w", "\n%{http_version}",
  ]);
}

function connectOf(events: ReturnType<typeof ofType>) {
  return ofType(events, "network.connect")[0]!;
}

describe("curl through oisp up to an h2-capable upstream", () => {
  for (const version of ["--http2", "--http1.1"] as const) {
    const wire = version === "--http2" ? "2" : "1.1";
    test(`${version}: plain chat completion`, async () => {
      const before = h.upstream.protocols!.length;
      const r = await curlChat(version, { model: "gpt-4o-mini", messages: [{ role: "user", content: `plain over ${wire}` }] });
      expect(r.code).toBe(0);
      const [json, httpVersion] = r.out.split("\n");
      expect(httpVersion).toBe(wire);
      expect(JSON.parse(json!).id).toBe(FIXED.openaiChatId);
      // ALPN mirrored: the upstream saw the same protocol the client got.
      expect(h.upstream.protocols!.slice(before)).toEqual([wire === "2" ? "h2" : "http/1.1"]);

      const events = await eventsOfPid(h.dbPath, r.pid);
      for (const e of events) validateOispEvent(e);
      const [req] = ofType(events, "ai.request");
      const [res] = ofType(events, "ai.response");
      expect(req!.data.messages).toEqual([expect.objectContaining({ role: "user", content: `plain over ${wire}` })]);
      expect(req!.data.auth.key_prefix).toBe("sk-proj-");
      expect(res!.data.request_id).toBe(req!.event_id);
      expect(res!.data.status_code).toBe(200);
      expect(res!.data.model.id).toBe("gpt-4o-mini-2024-07-18");
      expect(res!.data.choices[0].message.content).toBe("Hello!");
      expect(res!.data.usage).toMatchObject({ prompt_tokens: 82, completion_tokens: 17, total_tokens: 99, cached_tokens: 64 });
      expect(connectOf(events).data.tls).toEqual({ sni: "api.openai.com", alpn: wire === "2" ? "h2" : "http/1.1" });
      expect(storedBytes(h.dbPath)).not.toContain(KEY);
    });

    test(`${version}: streamed (SSE) chat completion`, async () => {
      const r = await curlChat(version, { model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: `stream over ${wire}` }] });
      expect(r.code).toBe(0);
      expect(r.out.trim().split("\n").pop()).toBe(wire);
      const events = await eventsOfPid(h.dbPath, r.pid);
      for (const e of events) validateOispEvent(e);
      const [req] = ofType(events, "ai.request");
      const [res] = ofType(events, "ai.response");
      expect(req!.data.streaming).toBe(true);
      expect(res!.data.request_id).toBe(req!.event_id);
      expect(res!.data.choices[0].message.content).toBe(FIXED.streamedText.join(""));
      expect(res!.data.finish_reason).toBe("stop");
      expect(res!.data.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 });
      expect(typeof res!.data.time_to_first_token_ms).toBe("number");
    });
  }
});

describe("node:http2 client, many concurrent streams on one connection", () => {
  for (const mode of ["plain", "stream"] as const) {
    test(`100 ${mode} streams: 100 request/response pairs, each answer paired with its own prompt`, async () => {
      const before = h.upstream.protocols!.length;
      const tag = `many-${mode}`;
      const run = await runClientScript(h2Client, ["100", mode], { OISP_PROXY: h.proxyUrl, OISP_CA_FILE: h.caFile, OPENAI_API_KEY: KEY, RUN_TAG: tag });
      expect(run.result.alpn).toBe("h2");
      expect(h.upstream.protocols!.slice(before)).toEqual(["h2"]);
      for (const r of run.result.results) expect(r.answer).toBe(`echo: ${r.prompt}`);

      const events = await eventsOfConnections(h.dbPath, (req) => String(req.data.messages?.[0]?.content).endsWith(`[${tag}]`), 100);
      expect(ofType(events, "network.connect")).toHaveLength(1);
      const requests = ofType(events, "ai.request");
      const responses = ofType(events, "ai.response");
      expect(requests).toHaveLength(100);
      expect(responses).toHaveLength(100);
      expect(ofType(events, "network.connect")[0]!.data.tls.alpn).toBe("h2");
      for (const req of requests) expect(req.data.streaming).toBe(mode === "stream");
      const promptOf = new Map(requests.map((r) => [r.event_id, r.data.messages[0].content as string]));
      expect(new Set(promptOf.values()).size).toBe(100);
      for (const res of responses) {
        const prompt = promptOf.get(res.data.request_id);
        expect(prompt).toBeDefined();
        expect(res.data.choices[0].message.content).toBe(`echo: ${prompt}`);
        expect(res.data.usage.prompt_tokens).toBe(`echo: ${prompt}`.length);
      }
      for (const e of [...requests.slice(0, 3), ...responses.slice(0, 3)]) validateOispEvent(e);
    }, 30_000);
  }
});

test("RST_STREAM: streams the client cancels mid-request give a failed ai.response; the others on the connection complete", async () => {
  const run = await runClientScript(h2Client, ["20", "reset"], { OISP_PROXY: h.proxyUrl, OISP_CA_FILE: h.caFile, OPENAI_API_KEY: KEY, RUN_TAG: "reset" });
  expect(run.result.results.filter((r: any) => r.answer === "(reset)")).toHaveLength(10);
  const events = await eventsOfConnections(h.dbPath, (req) => String(req.data.messages?.[0]?.content).endsWith("[reset]"), 20);
  for (const e of events) validateOispEvent(e);
  const requests = new Map(ofType(events, "ai.request").map((r) => [r.event_id, r]));
  const responses = ofType(events, "ai.response");
  expect(responses).toHaveLength(20);
  const failed = responses.filter((r) => !r.data.success);
  expect(failed).toHaveLength(10);
  for (const res of failed) {
    // The reset reaches the upstream too; depending on timing it answers the half request (400) before
    // it sees the reset, or not at all. The event says what happened on the wire either way.
    if (res.data.status_code === 0) expect(res.data.error).toEqual({ type: "no_response", message: "stream reset by client: CANCEL" });
    else expect(res.data).toMatchObject({ status_code: 400, error: { message: "body is not JSON" } });
    const req = requests.get(res.data.request_id)!;
    // Half a body: the model is salvaged from it, and the request says it is partial.
    expect(req.data.model.id).toBe("echo-model");
    expect(req.confidence.completeness).toBe("partial");
    expect(req.attrs.exchange_seq % 4).toBe(3); // streams 3, 7, 11, …: the odd-numbered prompts
  }
  for (const res of responses.filter((r) => r.data.success)) {
    expect(res.data.choices[0].message.content).toBe(`echo: ${requests.get(res.data.request_id)!.data.messages[0].content}`);
  }
}, 30_000);
