// Issue 12, fail open for clients that hang up silently: a Node app that does not trust our CA (the real
// openai SDK, no NODE_EXTRA_CA_CERTS) sends no certificate alert; it hangs up once our certificate arrives.
// Two such hang-ups pin that one process (pid + start time) for the host, so the SDK's own retry goes through
// blind and the call succeeds, while curl and another run of the same node executable, trusting our CA, are
// still intercepted and recorded. Real `oisp up`, real node, real curl.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import path from "node:path";
import { eventsOfPid, runCurl, startE2e, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { readEvents, waitFor } from "../support/oisp-process.ts";

const NODE = Bun.which("node");
const HOST = "api.openai.com";
const SCRIPT = path.join(import.meta.dir, "../support/clients/node-openai-no-ca.mjs");
let h: E2eHarness;

beforeAll(async () => {
  if (NODE) h = await startE2e({ hosts: [HOST], handler: fakeProviderHandler() });
});
afterAll(async () => {
  await h?.close();
});

/** The node client, trusting only `caFile` for the provider; its JSON line. */
async function nodeClient(caFile: string): Promise<{ pid: number; content?: string; error?: string }> {
  const env = { ...process.env, OISP_PROXY: h.proxyUrl, PROVIDER_CA_FILE: caFile, OPENAI_API_KEY: "sk-test", NODE_EXTRA_CA_CERTS: "", HTTPS_PROXY: "", https_proxy: "" };
  const p = Bun.spawn([NODE!, SCRIPT], { env, stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const line = out.trim().split("\n").pop();
  if (!line) throw new Error(`node client printed nothing: ${err}`);
  return JSON.parse(line);
}

const connectsOf = (pid: number) => (readEvents(h.dbPath) as AnyEvent[]).filter((e) => e.event_type === "network.connect" && e.process?.pid === pid);

describe.skipIf(!NODE)("a Node client that does not trust our CA", () => {
  test("is passed through after two silent hang-ups (its call succeeds); curl and another node process stay intercepted", async () => {
    // (1) The SDK's default retries (2): attempt 1 and 2 hang up on our certificate, attempt 3 goes through blind.
    const app = await nodeClient(h.upstreamCaFile);
    expect(app.error).toBeUndefined();
    expect(app.content).toBe("Hello!");
    const connects = await waitFor("its 3 connections", () => {
      const c = connectsOf(app.pid);
      return c.length >= 3 ? c : undefined;
    });
    expect(connects.map((e) => e.attrs.passthrough_code)).toEqual(["closed-after-handshake", "closed-after-handshake", "client-closed-after-handshake"]);
    const who = `pid ${app.pid} ${connects[1]!.process.exe} (${Bun.spawnSync(["id", "-un"]).stdout.toString().trim()})`;
    expect(connects[0]!.attrs.passthrough_reason).toBe(`the client hung up after our ServerHello without an alert or a byte (1 of 2 before ${who} is passed through for ${HOST})`);
    expect(connects[1]!.attrs.passthrough_reason).toBe(`the client hung up after our ServerHello without an alert or a byte; ${who} is passed through for ${HOST} for 15 min`);
    expect(connects[2]!.attrs.mode).toBe("passthrough");
    expect(h.oisp.output()).toContain(`hung up 2 times on our certificate without an alert`);

    // (2) curl, another process trusting our CA, to the same host: intercepted, its request recorded.
    const curl = await runCurl(["--proxy", h.proxyUrl, "--cacert", h.caFile, `https://${HOST}/v1/chat/completions`, "-H", "content-type: application/json", "-H", "authorization: Bearer sk-test", "-d", '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"curl says hi"}]}']);
    expect(curl.code).toBe(0);
    const curlEvents = await eventsOfPid(h.dbPath, curl.pid);
    expect(curlEvents.some((e) => e.event_type === "ai.request")).toBe(true);
    expect(curlEvents.find((e) => e.event_type === "network.connect")!.attrs.mode).toBe("mitm");

    // (3) The pinned process was the node executable run by root; another process of the same executable and
    // user, trusting our CA, is not blinded by it: intercepted and recorded.
    const other = await nodeClient(h.caFile);
    expect(other.content).toBe("Hello!");
    const otherEvents = await eventsOfPid(h.dbPath, other.pid);
    expect(otherEvents.some((e) => e.event_type === "ai.request")).toBe(true);
    const otherConnect = otherEvents.find((e) => e.event_type === "network.connect")!;
    expect([otherConnect.attrs.mode, otherConnect.attrs.passthrough_code]).toEqual(["mitm", undefined]);
    expect(otherConnect.process.exe).toBe(connects[0]!.process.exe);
  }, 90_000);
});
