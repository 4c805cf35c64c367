// eBPF capture against the proxy and under load: the same calls through `oisp up` (proxy) and
// `oisp up --capture ebpf` give the same events field for field (capture method and confidence aside);
// SSE with pauses, curl --http2, a 1 MB request body, 50 concurrent connections. Capture is filtered in the
// kernel to this test's process tree.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type http from "node:http";
import { startEbpfE2e, type EbpfHarness } from "../support/ebpf-harness.ts";
import { ebpfSkipReason } from "../support/ebpf.ts";
import { eventsOfConnections, eventsOfPid, ofType, runCurl, startE2e, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { fakeProviderHandler, startSse, type Json } from "../support/fake-providers.ts";
import { waitFor } from "../support/oisp-process.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

const KEY = "sk-proj-EbpfEqualityKey0123456789SECRETxyz";
const HOSTS = ["api.openai.com", "api.anthropic.com"];
const PAUSE_MS = 400;

/** A stream with pauses between its chunks (model "paused-stream"), else the usual fake routes. */
function pausedStream(_req: http.IncomingMessage, res: http.ServerResponse, body: Json): boolean {
  if (body.model !== "paused-stream") return false;
  const send = startSse(res);
  const base = { id: "chatcmpl-paused", object: "chat.completion.chunk", created: 1_732_000_000, model: "paused-stream" };
  const parts = ["one ", "two ", "three"];
  let i = 0;
  const next = () => {
    if (i < parts.length) {
      send({ ...base, choices: [{ index: 0, delta: { content: parts[i++] }, finish_reason: null }] });
      setTimeout(next, PAUSE_MS);
      return;
    }
    send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
    res.end("data: [DONE]\n\n");
  };
  next();
  return true;
}
const handler = fakeProviderHandler({ extra: pausedStream });

let ebpf: EbpfHarness;
let proxy: E2eHarness;
beforeAll(async () => {
  if (ebpfSkipReason) return;
  [ebpf, proxy] = await Promise.all([startEbpfE2e({ hosts: HOSTS, handler, h2: true }), startE2e({ hosts: HOSTS, handler, h2: true, redaction: "full" })]);
});
afterAll(async () => {
  await Promise.all([ebpf?.close(), proxy?.close()]);
});

const TOOLS_BODY = JSON.stringify({
  model: "gpt-4o-mini",
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Weather in Paris?" }],
  tools: [{ type: "function", function: { name: "get_weather", description: "Current weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
  temperature: 0.2,
});
const STREAM_BODY = JSON.stringify({ model: "gpt-4o", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Stream, please" }] });

/** What may differ between two captures of the same call: ids, times, the process, how it was captured. */
function comparable(e: AnyEvent): unknown {
  const drop = new Set(["event_id", "ts", "request_id", "process", "actor", "source", "confidence", "host", "related_events", "conversation_id", "parent_id", "response_id"]);
  const clean = (v: unknown, key = ""): unknown => {
    if (Array.isArray(v)) return v.map((x) => clean(x));
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>)
          .filter(([k]) => !drop.has(k) && !/latency|_ms$|time_to|conn_id|_event_id$|call_event/.test(k))
          .map(([k, x]) => [k, clean(x, k)]),
      );
    }
    void key;
    return v;
  };
  return clean(e);
}

/** network.connect differs by design (the proxy's leg vs the client's own socket); the rest in a stable order. */
const SKIP = (events: AnyEvent[]) =>
  events
    .filter((e) => e.event_type !== "network.connect")
    .map(comparable)
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

/** The pid's events once every type in `types` is stored (a response's tool calls may land in a later write). */
async function eventsWith(dbPath: string, pid: number, types: string[]): Promise<AnyEvent[]> {
  await eventsOfPid(dbPath, pid);
  return waitFor(`events ${types.join(", ")} of pid ${pid}`, async () => {
    const events = await eventsOfPid(dbPath, pid);
    return types.every((t) => events.some((e) => e.event_type === t)) ? events : undefined;
  });
}

async function curlBoth(args: string[], types: string[]) {
  const viaProxy = await runCurl(["--proxy", proxy.proxyUrl, "--cacert", proxy.caFile, ...args]);
  const viaEbpf = await runCurl([...ebpf.curlArgs(), ...args]);
  expect([viaProxy.code, viaEbpf.code]).toEqual([0, 0]);
  expect(viaEbpf.out).toBe(viaProxy.out);
  return [await eventsWith(proxy.dbPath, viaProxy.pid, types), await eventsWith(ebpf.dbPath, viaEbpf.pid, types)] as const;
}

describe.skipIf(!!ebpfSkipReason)("eBPF capture gives the proxy's events", () => {
  test("curl: chat completion with a tool call", async () => {
    const [p, e] = await curlBoth(["https://api.openai.com/v1/chat/completions", "-H", `authorization: Bearer ${KEY}`, "-H", "content-type: application/json", "-d", TOOLS_BODY], ["ai.request", "ai.response", "agent.tool_call"]);
    for (const ev of e) validateOispEvent(ev);
    expect(ofType(e, "agent.tool_call")).toHaveLength(1);
    expect(SKIP(e)).toEqual(SKIP(p));
    expect(e.every((x) => (x.source as { capture_method?: string })?.capture_method === "ebpf_uprobe")).toBe(true);
    expect(p.every((x) => (x.source as { capture_method?: string })?.capture_method === "mitm_proxy")).toBe(true);
  });

  test("curl: SSE stream with usage", async () => {
    const [p, e] = await curlBoth(["https://api.openai.com/v1/chat/completions", "-H", `authorization: Bearer ${KEY}`, "-H", "content-type: application/json", "-d", STREAM_BODY], ["ai.request", "ai.response"]);
    expect(ofType(e, "ai.response")[0]!.data.usage).toBeDefined();
    expect(SKIP(e)).toEqual(SKIP(p));
  });

  test("Python urllib: chat completion", async () => {
    const script = (url: string) => `import json, urllib.request
req = urllib.request.Request("${url}", data=${JSON.stringify(TOOLS_BODY)}.encode(), headers={"authorization": "Bearer ${KEY}", "content-type": "application/json"})
print(json.load(urllib.request.urlopen(req))["id"])`;
    const run = async (env: Record<string, string>) => {
      const proc = Bun.spawn(["python3", "-c", script("https://api.openai.com/v1/chat/completions")], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      expect({ code, err }).toEqual({ code: 0, err: "" });
      return { pid: proc.pid, out };
    };
    const viaProxy = await run({ HTTPS_PROXY: proxy.proxyUrl, https_proxy: proxy.proxyUrl, SSL_CERT_FILE: proxy.caFile });
    const viaEbpf = await run(ebpf.clientEnv());
    expect(viaEbpf.out).toBe(viaProxy.out);
    const types = ["ai.request", "ai.response", "agent.tool_call"];
    const [p, e] = [await eventsWith(proxy.dbPath, viaProxy.pid, types), await eventsWith(ebpf.dbPath, viaEbpf.pid, types)];
    expect(SKIP(e)).toEqual(SKIP(p));
  });
});

describe.skipIf(!!ebpfSkipReason)("eBPF capture under load", () => {
  test("SSE with pauses: every chunk, time to first token before the end", async () => {
    const body = JSON.stringify({ model: "paused-stream", stream: true, messages: [{ role: "user", content: "slowly" }] });
    const run = await runCurl([...ebpf.curlArgs(), "-N", "https://api.openai.com/v1/chat/completions", "-H", `authorization: Bearer ${KEY}`, "-H", "content-type: application/json", "-d", body]);
    expect(run.code).toBe(0);
    const events = await eventsOfPid(ebpf.dbPath, run.pid);
    const [res] = ofType(events, "ai.response") as [AnyEvent];
    expect(res.data.messages?.[0]?.content ?? res.data.choices?.[0]?.message?.content).toBe("one two three");
    expect(res.data.success).toBe(true);
    // Chunks arrived as sent: the first token well before the last pause ended.
    if (res.data.time_to_first_token_ms !== undefined) expect(res.data.time_to_first_token_ms).toBeLessThan(res.data.latency_ms - PAUSE_MS);
    expect(res.data.latency_ms).toBeGreaterThanOrEqual(3 * PAUSE_MS - 50);
  });

  test("curl --http2: two calls multiplexed on one connection", async () => {
    const args = ["-H", `authorization: Bearer ${KEY}`, "-H", "content-type: application/json", "-d", TOOLS_BODY];
    const url = "https://api.openai.com/v1/chat/completions";
    const run = await runCurl([...ebpf.curlArgs(), "--http2", "--parallel", url, ...args, "--next", ...ebpf.curlArgs(), "--http2", url, ...args]);
    expect(run.code).toBe(0);
    const events = await eventsOfPid(ebpf.dbPath, run.pid, 2);
    expect(ofType(events, "ai.request")).toHaveLength(2);
    expect(ofType(events, "ai.response").every((r) => r.data.success)).toBe(true);
    expect(new Set(ofType(events, "ai.request").map((r) => r.attrs?.conn_id)).size).toBe(1);
  });

  test("a 1 MB request body and its 1 MB echo arrive complete", async () => {
    const text = "x".repeat(1024 * 1024);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "oisp-ebpf-")), "body.json");
    fs.writeFileSync(file, JSON.stringify({ model: "echo-model", messages: [{ role: "user", content: text }] }));
    const run = await runCurl([...ebpf.curlArgs(), "--http1.1", "https://api.openai.com/v1/chat/completions", "-H", `authorization: Bearer ${KEY}`, "-H", "content-type: application/json", "--data-binary", `@${file}`]);
    expect(run.code).toBe(0);
    const events = await eventsOfPid(ebpf.dbPath, run.pid);
    const [req] = ofType(events, "ai.request") as [AnyEvent];
    const [res] = ofType(events, "ai.response") as [AnyEvent];
    expect(req.data.messages[0].content).toBe(text);
    expect(res.data.messages?.[0]?.content ?? res.data.choices?.[0]?.message?.content).toBe(`echo: ${text}`);
    expect(res.data.success).toBe(true);
  });

  test("50 concurrent connections: 50 complete calls", async () => {
    const tag = `run-${Date.now()}`;
    const runs = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        runCurl([...ebpf.curlArgs(), "--http1.1", "https://api.openai.com/v1/chat/completions", "-H", `authorization: Bearer ${KEY}`, "-H", "content-type: application/json", "-d", JSON.stringify({ model: "echo-model", messages: [{ role: "user", content: `${tag} #${i}` }] })]),
      ),
    );
    expect(runs.every((r) => r.code === 0)).toBe(true);
    const events = await eventsOfConnections(ebpf.dbPath, (req) => String(req.data.messages?.[0]?.content ?? "").startsWith(tag), 50, 30_000);
    const contents = ofType(events, "ai.response").map((r) => r.data.messages?.[0]?.content ?? r.data.choices?.[0]?.message?.content);
    expect(contents.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `echo: ${tag} #${i}`).sort());
  });
});
