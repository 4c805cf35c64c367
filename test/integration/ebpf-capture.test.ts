// eBPF capture end to end: `oisp up --capture ebpf` (probes filtered in the kernel to this test's process
// tree), real clients (curl, Python urllib, Node https and fetch, the openai SDK on Node) calling a local TLS
// fake provider directly, with no proxy variables and no CA given to oisp. Events are read from the store.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import path from "node:path";
import { startEbpfE2e, type EbpfHarness } from "../support/ebpf-harness.ts";
import { ebpfSkipReason } from "../support/ebpf.ts";
import { eventsOfPid, ofType, type AnyEvent } from "../support/e2e-harness.ts";
import { FIXED, fakeProviderHandler } from "../support/fake-providers.ts";
import { runOispOnce, waitFor } from "../support/oisp-process.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

const KEY = "sk-proj-EbpfTestKey0123456789SECRETabcdef";
const HOSTS = ["api.openai.com", "api.anthropic.com"];
const chatBody = (content: string, extra: object = {}) => JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], ...extra });

let h: EbpfHarness;
beforeAll(async () => {
  if (ebpfSkipReason) return;
  h = await startEbpfE2e({ hosts: HOSTS, handler: fakeProviderHandler(), h2: true });
});
afterAll(async () => {
  await h?.close();
});

async function run(cmd: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...h.clientEnv(), ...env } });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${cmd.slice(0, 2).join(" ")} failed (${code}): ${err}\n${out}`);
  return { pid: proc.pid, out };
}

async function single(pid: number) {
  const events = await eventsOfPid(h.dbPath, pid);
  for (const e of events) validateOispEvent(e);
  const reqs = ofType(events, "ai.request");
  expect(reqs).toHaveLength(1);
  const [req] = reqs as [AnyEvent];
  const [res] = ofType(events, "ai.response") as [AnyEvent];
  expect(res.data.request_id).toBe(req.event_id);
  for (const e of events) expect(e.source).toMatchObject({ capture_method: "ebpf_uprobe" });
  return { events, req, res };
}

describe.skipIf(!!ebpfSkipReason)("oisp up --capture ebpf", () => {
  test("curl: chat completion, process from the probe", async () => {
    const { pid, out } = await run(["curl", "-sS", ...h.curlArgs(), "https://api.openai.com/v1/chat/completions", "-H", `authorization: Bearer ${KEY}`, "-H", "content-type: application/json", "-d", chatBody("Hi from curl")]);
    expect(JSON.parse(out).id).toBe(FIXED.openaiChatId);
    const { events, req, res } = await single(pid);
    expect(req.data.provider).toEqual({ name: "openai", endpoint: "https://api.openai.com/v1/chat/completions" });
    expect(req.data.messages.map((m: any) => m.content)).toEqual(["Hi from curl"]);
    expect(req.process).toMatchObject({ pid, name: "curl", exe: "/usr/bin/curl" });
    expect(req.confidence).toMatchObject({ content_source: "tls_boundary", process_attribution: "direct" });
    expect(res.data.success).toBe(true);
    const [connect] = ofType(events, "network.connect") as [AnyEvent];
    expect(connect.data.dest).toMatchObject({ ip: h.addr, port: 443, domain: "api.openai.com" });
    expect(connect.data.tls).toEqual({ sni: "api.openai.com", alpn: "h2" }); // curl and the upstream speak h2: seen in the first bytes
    expect(JSON.stringify(events)).not.toContain(KEY);
  });

  test("Python urllib (SSL_write_ex / SSL_read_ex)", async () => {
    const script = `import json, urllib.request
req = urllib.request.Request("https://api.openai.com/v1/chat/completions", data=${JSON.stringify(chatBody("Hi from Python"))}.encode(), headers={"authorization": "Bearer ${KEY}", "content-type": "application/json"})
print(json.load(urllib.request.urlopen(req))["id"])`;
    const { pid, out } = await run(["python3", "-c", script]);
    expect(out.trim()).toBe(FIXED.openaiChatId);
    const { req } = await single(pid);
    expect(req.data.messages.map((m: any) => m.content)).toEqual(["Hi from Python"]);
    expect(req.process.name).toMatch(/^python3/);
  });

  test("Node https (OpenSSL inside the node binary)", async () => {
    const script = `const https = require("node:https");
const body = ${JSON.stringify(chatBody("Hi from Node"))};
const r = https.request("https://api.openai.com/v1/chat/completions", { method: "POST", headers: { authorization: "Bearer ${KEY}", "content-type": "application/json" } }, (res) => {
  let t = ""; res.on("data", (d) => (t += d)); res.on("end", () => console.log(JSON.parse(t).id));
});
r.end(body);`;
    const { pid, out } = await run(["node", "-e", script]);
    expect(out.trim()).toBe(FIXED.openaiChatId);
    const { req, res } = await single(pid);
    expect(req.data.messages.map((m: any) => m.content)).toEqual(["Hi from Node"]);
    expect(req.process).toMatchObject({ pid, name: "node" });
    expect(res.data.success).toBe(true);
  });

  test("Node: 20 concurrent connections on one thread, each bound to its own socket", async () => {
    const script = `const https = require("node:https");
const agent = new https.Agent({ keepAlive: false, maxSockets: 100 });
const one = (i) => new Promise((resolve, reject) => {
  const r = https.request("https://api.openai.com/v1/chat/completions", { agent, method: "POST", headers: { authorization: "Bearer ${KEY}", "content-type": "application/json" } }, (res) => {
    let t = ""; res.on("data", (d) => (t += d)); res.on("end", () => resolve(JSON.parse(t).choices[0].message.content));
  });
  r.on("error", reject);
  r.end(JSON.stringify({ model: "echo-model", messages: [{ role: "user", content: "node #" + i }] }));
});
Promise.all(Array.from({ length: 20 }, (_, i) => one(i))).then((a) => console.log(JSON.stringify(a)));`;
    const { pid, out } = await run(["node", "-e", script]);
    expect(JSON.parse(out)).toHaveLength(20);
    const events = await eventsOfPid(h.dbPath, pid, 20);
    const reqs = ofType(events, "ai.request");
    expect(reqs.map((r) => r.data.messages[0].content).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `node #${i}`).sort());
    // Each connection's network.connect names its own client port: no session was bound to another's socket.
    const connects = ofType(events, "network.connect");
    expect(connects).toHaveLength(20);
    expect(new Set(connects.map((c) => c.data.src.port)).size).toBe(20);
    expect(connects.every((c) => c.data.src.port > 0 && c.data.dest.port === 443)).toBe(true);
  });

  test("TLS to a host that is not an AI endpoint is muted in the kernel after its SNI is seen", async () => {
    const snapshot = async (after: number) =>
      waitFor("a fresh status snapshot", async () => {
        const { code, output } = await runOispOnce(["status", "--json"], { home: h.oisp.home });
        const s = code === 0 ? JSON.parse(output).sensor.snapshot : undefined;
        return s && Date.parse(s.updated_at) > after ? s.ebpf : undefined;
      });
    const before = await snapshot(Date.now());
    const script = `import socket, ssl, time
c = ssl._create_unverified_context()
s = c.wrap_socket(socket.create_connection(("not-ai.example", 443)), server_hostname="not-ai.example")
s.sendall(b"POST /upload HTTP/1.1\\r\\nHost: not-ai.example\\r\\nContent-Length: 204800\\r\\n\\r\\n")
for i in range(50):
    s.sendall(b"x" * 4096)
    time.sleep(0.02)
s.recv(100)
s.close()`;
    await run(["python3", "-c", script], { OISP_TEST_RESOLVE: `not-ai.example=${h.addr}` });
    const after = await snapshot(Date.now());
    expect(after.sessions_not_ai - before.sessions_not_ai).toBe(1);
    // The first writes may be copied before userspace has read the SNI; the rest never leave the kernel.
    expect(after.ssl_calls - before.ssl_calls).toBeLessThan(10);
  });

  test("the openai SDK on Node (fetch), streaming", async () => {
    const script = `const OpenAI = require(${JSON.stringify(path.resolve(import.meta.dir, "../../node_modules/openai"))}).default;
(async () => {
  const client = new OpenAI({ apiKey: "${KEY}" });
  const stream = await client.chat.completions.create({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "Stream from the SDK" }] });
  let text = ""; for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
  console.log(text);
})().catch((e) => { console.error(e); process.exit(1); });`;
    const { pid, out } = await run(["node", "-e", script]);
    expect(out.trim()).toBe(FIXED.streamedText.join(""));
    const { req, res } = await single(pid);
    expect(req.data.streaming).toBe(true);
    expect(req.data.messages.map((m: any) => m.content)).toEqual(["Stream from the SDK"]);
    expect(res.data.messages?.[0]?.content ?? res.data.choices?.[0]?.message?.content).toBe(FIXED.streamedText.join(""));
  });
});
