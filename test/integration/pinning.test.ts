// Issue 12: pinning is decided per client, on evidence a peer cannot fake by hanging up. Real clients through
// startProxy() with the real process lookup: `openssl s_client` run as `nobody` that rejects our CA gets
// itself passed through (and only itself), while curl run by root to the same host is still intercepted; a
// flood of ClientHellos that hang up, handshakes our TLS stack fails, and alerts pipelined behind the
// ClientHello never pin anyone.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { processLookupForPlatform } from "../../src/capture/process/index.ts";
import { startProxy, type RunningProxy } from "../../src/capture/proxy/server.ts";
import type { ConnMeta, TapSink } from "../../src/tap/types.ts";
import { waitFor } from "../support/oisp-process.ts";
import { createTestCa, startTlsUpstream, type TlsUpstream } from "../support/upstream.ts";

const HOST = "api.openai.com";
const asRoot = process.getuid?.() === 0 && process.platform === "linux" && Bun.which("runuser") !== null && Bun.which("openssl") !== null;

let dir: string;
let upstream: TlsUpstream;
let proxy: RunningProxy;
let proxyCaFile: string;
let upstreamCaFile: string;
const metas: ConnMeta[] = [];
const logs: string[] = [];

beforeAll(async () => {
  // Readable by `nobody`: the CA file its s_client is given.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-pinning-"));
  fs.chmodSync(dir, 0o755);
  const proxyCa = await createTestCa("OISP Test Proxy CA");
  upstream = await startTlsUpstream({ hosts: [HOST], handler: (_req, res) => res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}') });
  proxyCaFile = path.join(dir, "proxy-ca.pem");
  upstreamCaFile = path.join(dir, "upstream-ca.pem");
  fs.writeFileSync(proxyCaFile, proxyCa.certPem, { mode: 0o644 });
  fs.writeFileSync(upstreamCaFile, upstream.caPem, { mode: 0o644 });
  const tap: TapSink = { open: (m) => void metas.push(m), data() {}, close() {} };
  proxy = await startProxy({
    listen: { host: "127.0.0.1", port: 0 },
    tlsMitm: true,
    allTraffic: false,
    issuer: proxyCa,
    isAiHost: (h) => h === HOST,
    upstreamCa: [upstream.caPem],
    resolve: new Map([[`${HOST}:443`, `127.0.0.1:${upstream.port}`]]),
    tap,
    lookupProcess: processLookupForPlatform(),
    log: (level, msg) => logs.push(`${level} ${msg}`),
    limits: { handshakeTimeoutMs: 5000 },
  });
});

afterAll(async () => {
  await proxy?.close();
  await upstream?.close();
});

/** Runs a client and returns its exit code and the one connection it made (as the tap saw it). */
async function client(cmd: string[]): Promise<{ code: number; meta: ConnMeta }> {
  const mark = metas.length;
  const p = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, CURL_CA_BUNDLE: "", HTTPS_PROXY: "", https_proxy: "" } });
  const [code] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  const meta = await waitFor("its connection", () => metas[mark], 8000);
  return { code, meta };
}

/** openssl s_client as `nobody`, trusting only the real upstream's CA: it rejects ours with unknown_ca. */
const sClientAsNobody = () =>
  client(["runuser", "-u", "nobody", "--", "openssl", "s_client", "-proxy", `127.0.0.1:${proxy.address.port}`, "-connect", `${HOST}:443`, "-servername", HOST, "-CAfile", upstreamCaFile, "-verify_return_error", "-brief"]);
/** curl as root, trusting our CA: intercepted when not pinned. */
const curlAsRoot = () => client(["curl", "-sS", "--proxy", `http://127.0.0.1:${proxy.address.port}`, "--cacert", proxyCaFile, `https://${HOST}/v1/models`]);

describe.skipIf(!asRoot)("per-client pinning (root: runs a client as nobody)", () => {
  test("s_client as nobody rejecting our CA is pinned for itself only; root's curl to the same host stays intercepted", async () => {
    // The client keeps connecting, as an app would. Each rejection is counted once its process is known (on a
    // loaded machine a lookup can miss a client that exits at once: that rejection is not counted, see pinned.ts).
    const seen: ConnMeta[] = [];
    for (let i = 0; i < 8 && !seen.some((m) => m.passthroughCode === "client-pinned"); i++) {
      const r = await sClientAsNobody();
      expect(r.code).not.toBe(0); // verify error: our certificate is not from its CA
      seen.push(r.meta);
    }
    const codes = seen.map((m) => m.passthroughCode);
    expect(codes.at(-1)).toBe("client-pinned");
    expect(codes.slice(0, -1).every((c) => c === "client-rejected-cert")).toBe(true);
    const counted = seen.filter((m) => m.process?.uid === 65534);
    expect(counted.length).toBeGreaterThanOrEqual(2);
    expect(seen.at(-1)!.passthroughReason).toBe("client rejected our certificate: fatal alert unknown_ca; /usr/bin/openssl (nobody) is passed through for api.openai.com for 60 min");
    expect(proxy.pinnedHosts()).toEqual([`${HOST}: /usr/bin/openssl (nobody)`]);
    expect(logs.some((l) => l.startsWith("warn api.openai.com: /usr/bin/openssl (nobody) rejected our certificate 2 times"))).toBe(true);

    // root's curl is not that client: still intercepted (it trusts our CA, so it works and is decrypted).
    const root = await curlAsRoot();
    expect(root.code).toBe(0);
    expect(root.meta).toMatchObject({ mode: "mitm", process: { uid: 0 } });

    // nobody's s_client now talks to the real host: passed through, with the reason on its network.connect.
    const again = await sClientAsNobody();
    expect(again.meta.mode).toBe("passthrough");
    expect(again.meta.passthroughCode).toBe("pinned");
    expect(again.meta.passthroughReason).toStartWith("/usr/bin/openssl (nobody) rejected our certificate for api.openai.com (client rejected our certificate: fatal alert unknown_ca); passed through until ");

    // `oisp unpin` (the proxy's unpin) intercepts it again: it is refused again, not pinned at once.
    expect(proxy.unpin([HOST])).toEqual([HOST]);
    expect(proxy.pinnedHosts()).toEqual([]);
    expect((await sClientAsNobody()).meta.passthroughCode).toBe("client-rejected-cert");
  }, 60_000);
});

/** A real ClientHello (OpenSSL's, as curl and Python send), to replay by hand. */
async function realClientHello(): Promise<Buffer> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const hello = new Promise<Buffer>((resolve) => srv.once("connection", (s) => s.once("data", (d: Buffer) => (resolve(d), s.destroy()))));
  const p = Bun.spawn(["openssl", "s_client", "-connect", `127.0.0.1:${(srv.address() as net.AddressInfo).port}`, "-servername", HOST, "-alpn", "http/1.1"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  const bytes = await hello;
  p.kill();
  srv.close();
  return bytes;
}

/** CONNECT, then `script` on the raw tunnel; resolves when the proxy has recorded the connection. */
async function rawTunnel(script: (sock: net.Socket) => void): Promise<ConnMeta> {
  const mark = metas.length;
  const sock = net.connect(proxy.address.port, "127.0.0.1");
  sock.on("error", () => {});
  await new Promise((r) => sock.once("connect", r));
  sock.write(`CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\n`);
  await new Promise((r) => sock.once("data", r)); // 200 Connection Established
  script(sock);
  const port = sock.localPort;
  return waitFor("the connection recorded", () => metas.slice(mark).find((m) => m.client.port === port), 15_000);
}

const UNKNOWN_CA_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x30]);

test("a ClientHello-then-close flood, handshakes our TLS stack fails, and pipelined alerts never pin", async () => {
  const hello = await realClientHello();
  const mark = metas.length;
  const rejectedBefore = proxy.stats().clientRejected;
  const flood = await Promise.all(Array.from({ length: 20 }, () => rawTunnel((s) => s.end(hello))));
  // Closed or timed out (a half-closed client is waited for), never counted.
  for (const m of flood) expect(["handshake-closed", "handshake-failed"]).toContain(m.passthroughCode!);
  // A ClientHello with a certificate alert in the same write: sent before our ServerHello, no evidence.
  for (let i = 0; i < 3; i++) expect((await rawTunnel((s) => s.end(Buffer.concat([hello, UNKNOWN_CA_ALERT])))).passthroughCode).not.toBe("client-pinned");
  // Our ServerHello, then garbage: our own TLS stack fails the handshake (not the client rejecting us).
  for (let i = 0; i < 3; i++) {
    const m = await rawTunnel((s) => {
      s.write(hello);
      s.once("data", () => s.write(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5])));
    });
    expect(m.passthroughCode).toBe("handshake-failed");
  }
  expect(proxy.stats().clientRejected).toBe(rejectedBefore);
  expect(proxy.pinnedHosts().filter((p) => !p.includes("(nobody)"))).toEqual([]);
  expect(metas.slice(mark).some((m) => ["client-pinned", "pinned", "closed-after-handshake", "client-closed-after-handshake"].includes(m.passthroughCode!))).toBe(false);
  // This process (the flooder) is still intercepted when it speaks TLS properly.
  const { sock } = await (async () => {
    const s = net.connect(proxy.address.port, "127.0.0.1");
    await new Promise((r) => s.once("connect", r));
    s.write(`CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\n`);
    await new Promise((r) => s.once("data", r));
    return { sock: s };
  })();
  const m0 = metas.length;
  const port = sock.localPort;
  const t = tls.connect({ socket: sock, servername: HOST, ca: [fs.readFileSync(proxyCaFile, "utf8")] });
  await new Promise<void>((resolve, reject) => (t.once("secureConnect", () => resolve()), t.once("error", reject)));
  // A request answered through the proxy (destroying right after secureConnect can beat our side's handshake).
  t.write(`GET /v1/models HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
  const answer = await new Promise<string>((resolve) => {
    let text = "";
    t.on("data", (d: Buffer) => (text += d.toString()));
    t.once("close", () => resolve(text));
  });
  expect(answer).toContain('{"ok":true}');
  const last = await waitFor("intercepted", () => metas.slice(m0).find((m) => m.client.port === port), 8000);
  expect([last.mode, last.passthroughCode, last.passthroughReason]).toEqual(["mitm", undefined, undefined]);
}, 60_000);
