// The explicit proxy with real parts: real curl processes and raw TLS clients through startProxy() to a
// local TLS upstream with its own CA, and an in-process tap recording every frame.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { processLookupForPlatform } from "../../src/capture/process/index.ts";
import { startProxy, type RunningProxy } from "../../src/capture/proxy/server.ts";
import type { ConnMeta, Direction, TapSink } from "../../src/tap/types.ts";
import { silentLogger } from "../../src/util/log.ts";
import { createTestCa, startTlsUpstream, type TestCa, type TlsUpstream } from "../support/upstream.ts";

const AI_HOSTS = new Set(["api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com"]);

class RecordingTap implements TapSink {
  metas: ConnMeta[] = [];
  frames: Array<{ connId: string; dir: Direction; bytes: Uint8Array }> = [];
  closed = new Map<string, string | undefined>();
  order: string[] = [];
  open(meta: ConnMeta) {
    this.order.push(`open:${meta.connId}`);
    this.metas.push(meta);
  }
  data(connId: string, dir: Direction, bytes: Uint8Array) {
    this.order.push(`data:${connId}`);
    this.frames.push({ connId, dir, bytes: new Uint8Array(bytes) });
  }
  close(connId: string, _ts: number, error?: string) {
    this.order.push(`close:${connId}`);
    this.closed.set(connId, error);
  }
  bytes(connId: string, dir: Direction): string {
    return Buffer.concat(this.frames.filter((f) => f.connId === connId && f.dir === dir).map((f) => f.bytes)).toString("latin1");
  }
  metasFor(host: string, since = 0): ConnMeta[] {
    return this.metas.slice(since).filter((m) => m.host === host);
  }
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

async function run(cmd: string[]): Promise<{ code: number; out: string; err: string; pid: number }> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, CURL_CA_BUNDLE: "", HTTPS_PROXY: "", HTTP_PROXY: "", NO_PROXY: "" } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err, pid: p.pid };
}

/** Opens a CONNECT tunnel by hand and returns the raw socket plus the proxy's status line. */
async function connectTunnel(proxyPort: number, authority: string): Promise<{ sock: net.Socket; status: string; head: string; rest: string }> {
  const sock = net.connect(proxyPort, "127.0.0.1");
  await new Promise((r) => sock.once("connect", r));
  sock.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  let buf = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      buf += d.toString("latin1");
      if (buf.includes("\r\n\r\n")) {
        sock.off("data", onData);
        sock.pause();
        resolve();
      }
    };
    sock.on("data", onData);
    sock.once("close", () => resolve());
    sock.once("error", reject);
  });
  const end = buf.indexOf("\r\n\r\n");
  return { sock, status: buf.split("\r\n")[0] ?? "", head: end < 0 ? buf : buf.slice(0, end + 4), rest: end < 0 ? "" : buf.slice(end + 4) };
}

/** A TLS client through the proxy, verifying with `ca`. */
async function tlsThroughProxy(proxyPort: number, host: string, ca: string, alpn = ["http/1.1"]): Promise<tls.TLSSocket> {
  const { sock, status } = await connectTunnel(proxyPort, `${host}:443`);
  expect(status).toBe("HTTP/1.1 200 Connection Established");
  const t = tls.connect({ socket: sock, servername: host, ca: [ca], ALPNProtocols: alpn });
  await new Promise<void>((resolve, reject) => {
    t.once("secureConnect", () => resolve());
    t.once("error", reject);
  });
  return t;
}

/** Raw request/response over one socket: sends `request`, collects until `done(text)` or close. */
function exchange(sock: net.Socket | tls.TLSSocket, request: string, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    sock.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (done(text)) resolve(text);
    });
    sock.once("close", () => resolve(text));
    sock.resume();
    sock.write(Buffer.from(request, "latin1"));
  });
}

describe("explicit proxy", () => {
  let dir: string;
  let proxyCa: TestCa;
  let upstream: TlsUpstream;
  let proxy: RunningProxy;
  let tap: RecordingTap;
  /** Capture paused, as src/config/pause.ts would report it. */
  let paused = false;
  let plainServer: http.Server;
  let plainPort: number;
  let closedPort: number;
  const plainSeen: Array<{ method: string; url: string; body: string; host: string }> = [];
  // SSE control: the test releases each next event only after the client has seen the previous one.
  let sseRelease: Array<() => void> = [];
  let sseUpstreamClosed = false;
  let proxyCaFile: string;
  let upstreamCaFile: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-proxy-test-"));
    proxyCa = await createTestCa("OISP Test Proxy CA");
    upstream = await startTlsUpstream({
      hosts: ["api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com", "example.com"],
      handler: (req, res) => {
        if (req.url === "/sse") {
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
          res.on("close", () => (sseUpstreamClosed = true));
          let n = 0;
          const next = () => {
            if (res.destroyed) return;
            n++;
            res.write(`data: {"n":${n}}\n\n`);
            if (n === 5) return res.end();
            sseRelease.push(next);
          };
          next();
          return;
        }
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString();
          res.writeHead(200, { "content-type": "application/json", "x-upstream": "real" });
          res.end(JSON.stringify({ path: req.url, method: req.method, host: req.headers.host, echo: body }));
        });
      },
    });
    plainServer = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString();
        plainSeen.push({ method: req.method!, url: req.url!, body, host: String(req.headers.host) });
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ model: "llama3", url: req.url, body }));
      });
    });
    await new Promise<void>((r) => plainServer.listen(0, "127.0.0.1", r));
    plainPort = (plainServer.address() as net.AddressInfo).port;
    const tmp = net.createServer();
    await new Promise<void>((r) => tmp.listen(0, "127.0.0.1", r));
    closedPort = (tmp.address() as net.AddressInfo).port;
    await new Promise<void>((r) => tmp.close(() => r()));

    proxyCaFile = path.join(dir, "proxy-ca.pem");
    upstreamCaFile = path.join(dir, "upstream-ca.pem");
    fs.writeFileSync(proxyCaFile, proxyCa.certPem);
    fs.writeFileSync(upstreamCaFile, upstream.caPem);
    tap = new RecordingTap();
    const resolve = new Map<string, string>([
      ["api.openai.com:443", `127.0.0.1:${upstream.port}`],
      ["api.anthropic.com:443", `127.0.0.1:${upstream.port}`],
      ["generativelanguage.googleapis.com:443", `127.0.0.1:${upstream.port}`],
      ["example.com:443", `127.0.0.1:${upstream.port}`],
      ["refused.test:443", `127.0.0.1:${closedPort}`],
      ["ollama.test:11434", `127.0.0.1:${plainPort}`],
    ]);
    proxy = await startProxy({
      listen: { host: "127.0.0.1", port: 0 },
      tlsMitm: true,
      allTraffic: false,
      issuer: proxyCa,
      isAiHost: (h) => AI_HOSTS.has(h),
      upstreamCa: [upstream.caPem],
      resolve,
      tap,
      lookupProcess: processLookupForPlatform(),
      log: silentLogger,
      limits: { handshakeTimeoutMs: 5000, connectTimeoutMs: 3000 },
      paused: () => paused,
    });
  });

  afterAll(async () => {
    await proxy?.close();
    await upstream?.close();
    plainServer?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const proxyUrl = () => `http://127.0.0.1:${proxy.address.port}`;

  test("curl to an AI host is intercepted: upstream answer, exact plaintext tapped, SNI/ALPN, curl's pid", async () => {
    const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    const r = await run(["curl", "-sS", "--proxy", proxyUrl(), "--cacert", proxyCaFile, "https://api.openai.com/v1/chat/completions",
      "-H", "content-type: application/json", "-d", body]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ path: "/v1/chat/completions", method: "POST", host: "api.openai.com", echo: body });
    const meta = await waitFor("curl's connection", () => tap.metasFor("api.openai.com").find((m) => m.process?.pid === r.pid));
    await waitFor("close", () => tap.closed.has(meta.connId));
    expect(meta).toMatchObject({ mode: "mitm", sni: "api.openai.com", alpn: "http/1.1", captureMethod: "mitm_proxy", server: { ip: "127.0.0.1", port: upstream.port } });
    expect(meta.process).toMatchObject({ pid: r.pid, name: "curl" });
    expect(meta.process!.cmdline).toContain("https://api.openai.com/v1/chat/completions");
    expect(meta.upstreamConnectMs).toBeGreaterThan(0);
    const c2s = tap.bytes(meta.connId, "c2s");
    expect(c2s.startsWith("POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n")).toBe(true);
    expect(c2s.endsWith(`\r\n\r\n${body}`)).toBe(true);
    const s2c = tap.bytes(meta.connId, "s2c");
    expect(s2c.startsWith("HTTP/1.1 200 OK\r\n")).toBe(true);
    expect(s2c).toContain(r.out);
    // open comes before any data frame of the connection, close after all of them.
    const mine = tap.order.filter((o) => o.endsWith(meta.connId));
    expect(mine[0]).toBe(`open:${meta.connId}`);
    expect(mine[mine.length - 1]).toBe(`close:${meta.connId}`);
  });

  test("tapped bytes are exactly the bytes on the wire, both ways", async () => {
    const t = await tlsThroughProxy(proxy.address.port, "api.anthropic.com", proxyCa.certPem);
    expect(t.alpnProtocol).toBe("http/1.1");
    const request = 'POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{"a":"\x80\xff"}';
    const response = await exchange(t, request, () => false);
    const meta = await waitFor("meta", () => tap.metasFor("api.anthropic.com").at(-1));
    await waitFor("close", () => tap.closed.has(meta.connId));
    expect(tap.bytes(meta.connId, "c2s")).toBe(Buffer.from(request, "latin1").toString("latin1"));
    expect(tap.bytes(meta.connId, "s2c")).toBe(response);
    expect(response).toContain('"x-upstream": "real"'.replace('"x-upstream": "real"', "x-upstream: real"));
  });

  test("a non-AI host is relayed byte-identical, verified against the upstream's own CA, metadata only", async () => {
    const r = await run(["curl", "-sS", "--proxy", proxyUrl(), "--cacert", upstreamCaFile, "https://example.com/v1/models"]);
    expect(r.err).toBe("");
    expect(JSON.parse(r.out)).toMatchObject({ path: "/v1/models", host: "example.com" });
    const meta = await waitFor("meta", () => tap.metasFor("example.com").at(-1));
    await waitFor("close", () => tap.closed.has(meta.connId));
    expect(meta).toMatchObject({ mode: "passthrough", passthroughCode: "not-ai-host", sni: "example.com" });
    expect(tap.frames.filter((f) => f.connId === meta.connId)).toEqual([]);
    expect(proxy.stats().passthrough).toBeGreaterThan(0);
  });

  test("paused: an AI host over CONNECT and plain HTTP are relayed untouched, nothing tapped, each counted", async () => {
    const mark = tap.metas.length;
    const frames = tap.frames.length;
    const before = proxy.stats();
    paused = true;
    try {
      // The client sees the real host's certificate (it trusts only the upstream CA here): nothing decrypted.
      const r = await run(["curl", "-sS", "--proxy", proxyUrl(), "--cacert", upstreamCaFile, "https://api.openai.com/v1/chat/completions", "-d", "{}"]);
      expect(r.err).toBe("");
      expect(JSON.parse(r.out)).toMatchObject({ path: "/v1/chat/completions", host: "api.openai.com" });
      const plain = await run(["curl", "-sS", "--proxy", proxyUrl(), "http://ollama.test:11434/api/chat", "-d", "{}"]);
      expect(plain.err).toBe("");
      expect(JSON.parse(plain.out)).toMatchObject({ url: "/api/chat" });
    } finally {
      paused = false;
    }
    expect(tap.metas.length).toBe(mark);
    expect(tap.frames.length).toBe(frames);
    const after = proxy.stats();
    expect(after.paused - before.paused).toBe(2);
    expect(after.intercepted).toBe(before.intercepted);
    expect(after.bytesServerToClient).toBeGreaterThan(before.bytesServerToClient);
  });

  test("a refused upstream gets 502 before the tunnel opens, like a real proxy", async () => {
    const { sock, head } = await connectTunnel(proxy.address.port, "refused.test:443");
    expect(head.split("\r\n")[0]).toBe("HTTP/1.1 502 Bad Gateway");
    expect(head).toContain("Connection: close");
    sock.destroy();
    const r = await run(["curl", "-sS", "--proxy", proxyUrl(), "https://refused.test/"]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("502");
    const meta = await waitFor("meta", () => tap.metasFor("refused.test").at(-1));
    expect(meta).toMatchObject({ passthroughCode: "upstream-connect-failed", upstreamError: expect.stringContaining("ECONNREFUSED") });
  });

  test("an unknown host gets 502", async () => {
    const { sock, head } = await connectTunnel(proxy.address.port, "no-such-host.invalid:443");
    expect(head.split("\r\n")[0]).toBe("HTTP/1.1 502 Bad Gateway");
    sock.destroy();
  });

  test("a client that rejects our certificate is recorded; at the second time it is passed through (that client only)", async () => {
    const host = "generativelanguage.googleapis.com";
    const url = `https://${host}/v1beta/models`;
    // curl trusting only the upstream's CA rejects our leaf with unknown_ca. Each identified rejection counts
    // (one whose process the lookup missed does not: see pinned.ts); curl keeps trying, as an app would.
    const codes: Array<string | undefined> = [];
    for (let i = 0; i < 6 && !codes.includes("client-pinned"); i++) {
      const mark = tap.metas.length;
      const r = await run(["curl", "-sS", "--proxy", proxyUrl(), "--cacert", upstreamCaFile, url]);
      expect(r.code).toBe(60); // curl: certificate verification failed (our leaf is not from the upstream CA)
      codes.push((await waitFor("rejection", () => tap.metasFor(host, mark)[0])).passthroughCode);
    }
    expect(codes.at(-1)).toBe("client-pinned");
    expect(codes.slice(0, -1).every((c) => c === "client-rejected-cert")).toBe(true);
    expect(proxy.pinnedHosts()).toEqual([`${host}: /usr/bin/curl (root)`]);
    const mark = tap.metas.length;
    const second = await run(["curl", "-sS", "--proxy", proxyUrl(), "--cacert", upstreamCaFile, url]);
    expect(second.err).toBe("");
    expect(JSON.parse(second.out)).toMatchObject({ path: "/v1beta/models", host });
    const meta = await waitFor("pinned passthrough", () => tap.metasFor(host, mark)[0]);
    expect(meta.mode).toBe("passthrough");
    expect(meta.passthroughCode).toBe("pinned");
    expect(proxy.stats().pinnedHosts).toBe(1);
    expect(proxy.unpin([host])).toEqual([host]);
  });

  test("absolute-form plain HTTP: origin-form upstream, keep-alive, tapped as plain", async () => {
    const body = JSON.stringify({ model: "llama3", messages: [{ role: "user", content: "hi" }] });
    plainSeen.length = 0;
    const mark = tap.metas.length;
    const r = await run(["curl", "-sS", "--proxy", proxyUrl(), `http://ollama.test:11434/api/chat`, "-d", body,
      "--next", "--proxy", proxyUrl(), `http://ollama.test:11434/api/tags?x=1`]);
    expect(r.err).toBe("");
    expect(r.out).toBe(JSON.stringify({ model: "llama3", url: "/api/chat", body }) + JSON.stringify({ model: "llama3", url: "/api/tags?x=1", body: "" }));
    expect(plainSeen.map((s) => [s.method, s.url, s.host])).toEqual([
      ["POST", "/api/chat", "ollama.test:11434"],
      ["GET", "/api/tags?x=1", "ollama.test:11434"],
    ]);
    const metas = await waitFor("plain meta", () => {
      const m = tap.metasFor("ollama.test", mark);
      return m.length ? m : undefined;
    });
    expect(metas.length).toBe(1); // one upstream leg served both requests
    expect(metas[0]).toMatchObject({ mode: "plain", server: { ip: "127.0.0.1", port: plainPort } });
    await waitFor("close", () => tap.closed.has(metas[0]!.connId));
    const c2s = tap.bytes(metas[0]!.connId, "c2s");
    expect(c2s.startsWith("POST /api/chat HTTP/1.1\r\nHost: ollama.test:11434\r\n")).toBe(true);
    expect(c2s).toContain(`\r\n\r\n${body}GET /api/tags?x=1 HTTP/1.1\r\n`);
    expect(tap.bytes(metas[0]!.connId, "s2c")).toContain(JSON.stringify({ model: "llama3", url: "/api/chat", body }));
  });

  test.skipIf(process.platform !== "linux")("plain HTTP: a client that exits as soon as it has its answer is still attributed (slow lookup)", async () => {
    // A loaded machine, where the /proc scan starts late: the real lookup, begun 150 ms after the connect.
    // curl's whole plain-HTTP exchange takes a few ms; without the response held until the lookup has
    // settled, curl has exited (and its socket is gone) by the time the scan looks for it.
    const realLookup = processLookupForPlatform();
    const slowTap = new RecordingTap();
    const slow = await startProxy({
      listen: { host: "127.0.0.1", port: 0 },
      tlsMitm: false,
      allTraffic: false,
      isAiHost: () => false,
      upstreamCa: [],
      resolve: new Map([["ollama.test:11434", `127.0.0.1:${plainPort}`]]),
      tap: slowTap,
      lookupProcess: async (c, p) => {
        await Bun.sleep(150);
        return realLookup(c, p);
      },
      log: silentLogger,
    });
    try {
      const r = await run(["curl", "-sS", "--proxy", `http://127.0.0.1:${slow.address.port}`, "http://ollama.test:11434/api/generate", "-d", "{}"]);
      expect(r.err).toBe("");
      expect(JSON.parse(r.out)).toMatchObject({ url: "/api/generate" });
      const meta = await waitFor("plain meta", () => slowTap.metasFor("ollama.test")[0]);
      expect(meta.process?.pid).toBe(r.pid);
      expect(meta.process?.name).toBe("curl");
    } finally {
      await slow.close();
    }
  });

  test("plain HTTP with a chunked request body and a host change on one connection", async () => {
    plainSeen.length = 0;
    const sock = net.connect(proxy.address.port, "127.0.0.1");
    await new Promise((r) => sock.once("connect", r));
    const first =
      `POST http://ollama.test:11434/api/generate HTTP/1.1\r\nHost: ollama.test:11434\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n`;
    const text1 = await exchange(sock, first, (t) => t.includes("}"));
    expect(text1).toContain('"body":"hello world"');
    sock.removeAllListeners("data");
    const second = `GET http://127.0.0.1:${plainPort}/v1/models HTTP/1.1\r\nHost: 127.0.0.1:${plainPort}\r\n\r\n`;
    const text2 = await exchange(sock, second, (t) => t.includes("}"));
    expect(text2).toContain('"url":"/v1/models"');
    expect(plainSeen.map((s) => s.url)).toEqual(["/api/generate", "/v1/models"]);
    sock.destroy();
  });

  test("origin-form, malformed and self-looping requests get 400 with Connection: close", async () => {
    const self = `127.0.0.1:${proxy.address.port}`;
    for (const req of ["GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HELLO\r\n\r\n", "CONNECT nohostport HTTP/1.1\r\n\r\n", "GET https://api.openai.com/ HTTP/1.1\r\n\r\n",
      `CONNECT ${self} HTTP/1.1\r\n\r\n`, `GET http://localhost:${proxy.address.port}/ HTTP/1.1\r\n\r\n`]) {
      const sock = net.connect(proxy.address.port, "127.0.0.1");
      const text = await exchange(sock, req, () => false);
      expect(text.split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request");
      expect(text).toContain("Connection: close");
    }
  });

  test("SSE chunks reach the client one by one: each arrives before the upstream sends the next", async () => {
    sseRelease = [];
    const t = await tlsThroughProxy(proxy.address.port, "api.openai.com", proxyCa.certPem);
    let text = "";
    const seen: number[] = [];
    const ended = new Promise<void>((resolve) => t.once("end", () => resolve()));
    t.on("data", (d: Buffer) => {
      text += d.toString();
      for (const m of text.matchAll(/data: \{"n":(\d+)\}/g)) if (!seen.includes(Number(m[1]))) seen.push(Number(m[1]));
      // Release the next event only once this one has arrived through the proxy.
      if (sseRelease.length && seen.length) sseRelease.shift()!();
    });
    t.write("GET /sse HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n\r\n");
    await ended;
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });

  test("a client abort mid-stream closes the upstream", async () => {
    sseRelease = [];
    sseUpstreamClosed = false;
    const t = await tlsThroughProxy(proxy.address.port, "api.openai.com", proxyCa.certPem);
    const first = new Promise<void>((resolve) => t.once("data", () => resolve()));
    t.write("GET /sse HTTP/1.1\r\nHost: api.openai.com\r\n\r\n");
    await first;
    t.destroy();
    await waitFor("upstream response closed", () => sseUpstreamClosed);
    expect(sseRelease.length).toBe(1); // the stream was still open when the client left
  });

  test("CONNECT carrying plain bytes to an AI host port is relayed blind (not TLS)", async () => {
    const { sock, status } = await connectTunnel(proxy.address.port, "ollama.test:11434");
    expect(status).toBe("HTTP/1.1 200 Connection Established");
    const text = await exchange(sock, "GET /api/tags HTTP/1.1\r\nHost: ollama.test\r\nConnection: close\r\n\r\n", () => false);
    expect(text).toContain('"url":"/api/tags"');
    const meta = await waitFor("meta", () => tap.metasFor("ollama.test").find((m) => m.passthroughCode === "not-tls"));
    expect(meta.mode).toBe("passthrough");
  });

  test("a server that speaks first is relayed (no ClientHello wait)", async () => {
    const greeter = net.createServer((s) => s.end("SSH-2.0-OpenSSH_9.2\r\n"));
    await new Promise<void>((r) => greeter.listen(0, "127.0.0.1", r));
    const port = (greeter.address() as net.AddressInfo).port;
    const { sock, status, rest } = await connectTunnel(proxy.address.port, `127.0.0.1:${port}`);
    expect(status).toBe("HTTP/1.1 200 Connection Established");
    const text = rest + (await exchange(sock, "", () => false));
    expect(text).toBe("SSH-2.0-OpenSSH_9.2\r\n");
    sock.destroy();
    greeter.close();
    const meta = await waitFor("meta", () => tap.metasFor("127.0.0.1").find((m) => m.server.port === port));
    expect(meta).toMatchObject({ passthroughCode: "not-tls", passthroughReason: expect.stringContaining("server spoke first") });
  });

  test("half-close is mirrored: the client shuts its side, the upstream still answers", async () => {
    const counter = net.createServer({ allowHalfOpen: true }, (s) => {
      let n = 0;
      s.on("data", (d: Buffer) => (n += d.length));
      s.on("end", () => s.end(`got ${n} bytes`));
    });
    await new Promise<void>((r) => counter.listen(0, "127.0.0.1", r));
    const port = (counter.address() as net.AddressInfo).port;
    const { sock } = await connectTunnel(proxy.address.port, `127.0.0.1:${port}`);
    const reply = new Promise<string>((resolve) => {
      let text = "";
      sock.on("data", (d: Buffer) => (text += d.toString()));
      sock.once("end", () => resolve(text));
    });
    sock.resume();
    sock.end("plain bytes, then FIN");
    expect(await reply).toBe("got 21 bytes");
    counter.close();
  });

  test("curl without ALPN: nothing offered upstream, nothing answered", async () => {
    const mark = tap.metas.length;
    const r = await run(["curl", "-sS", "--no-alpn", "--proxy", proxyUrl(), "--cacert", proxyCaFile, "https://api.openai.com/v1/models"]);
    expect(r.err).toBe("");
    expect(JSON.parse(r.out)).toMatchObject({ path: "/v1/models" });
    const meta = await waitFor("meta", () => tap.metasFor("api.openai.com", mark)[0]);
    expect(meta.mode).toBe("mitm");
    expect(meta.alpn).toBeUndefined();
  });

  test("stats count what happened", () => {
    const s = proxy.stats();
    expect(s.intercepted).toBeGreaterThanOrEqual(5);
    expect(s.clientRejected).toBeGreaterThanOrEqual(2); // the pinning test: curl rejecting our certificate until pinned
    expect(s.upstreamErrors).toBeGreaterThanOrEqual(2);
    expect(s.badRequests).toBeGreaterThanOrEqual(4);
    expect(s.bytesClientToServer).toBeGreaterThan(0);
    expect(s.bytesServerToClient).toBeGreaterThan(0);
    expect(s.connectionsTotal).toBeGreaterThan(10);
  });
});

describe("explicit proxy failure modes", () => {
  let ca: TestCa;
  let upstream: TlsUpstream;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-proxy-fail-"));
    ca = await createTestCa("OISP Test Proxy CA 2");
    upstream = await startTlsUpstream({ hosts: ["api.openai.com"], handler: (req, res) => res.end(JSON.stringify({ path: req.url })) });
    fs.writeFileSync(path.join(dir, "upstream-ca.pem"), upstream.caPem);
    fs.writeFileSync(path.join(dir, "proxy-ca.pem"), ca.certPem);
  });
  afterAll(async () => {
    await upstream?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const base = (tap: TapSink) => ({
    listen: { host: "127.0.0.1", port: 0 },
    tlsMitm: true,
    allTraffic: false,
    issuer: ca,
    isAiHost: (h: string) => AI_HOSTS.has(h),
    upstreamCa: [] as string[],
    resolve: new Map([["api.openai.com:443", `127.0.0.1:${upstream.port}`]]),
    tap,
    lookupProcess: async () => undefined,
    log: silentLogger,
  });

  test("an upstream the proxy cannot verify is passed through: the client judges it itself", async () => {
    const tap = new RecordingTap();
    const proxy = await startProxy(base(tap)); // upstreamCa not given: the proxy does not trust the upstream
    try {
      // The client trusts the upstream's CA (think: a corporate root in the system store), so it works.
      const r = await run(["curl", "-sS", "--proxy", `http://127.0.0.1:${proxy.address.port}`, "--cacert", path.join(dir, "upstream-ca.pem"), "https://api.openai.com/v1/models"]);
      expect(r.err).toBe("");
      expect(JSON.parse(r.out)).toEqual({ path: "/v1/models" });
      const meta = await waitFor("meta", () => tap.metas[0]);
      expect(meta).toMatchObject({ mode: "passthrough", passthroughCode: "upstream-tls-failed" });
      expect(meta.upstreamError).toMatch(/certificate|CERT/i);
      // A client that trusts only our CA fails as it would against an untrusted host.
      const r2 = await run(["curl", "-sS", "--proxy", `http://127.0.0.1:${proxy.address.port}`, "--cacert", path.join(dir, "proxy-ca.pem"), "https://api.openai.com/v1/models"]);
      expect(r2.code).toBe(60);
      expect(proxy.stats().upstreamErrors).toBe(2);
    } finally {
      await proxy.close();
    }
  });

  test("a tap that throws never breaks the traffic", async () => {
    const throwing: TapSink = {
      open() {
        throw new Error("sink down");
      },
      data() {
        throw new Error("sink down");
      },
      close() {
        throw new Error("sink down");
      },
    };
    const proxy = await startProxy({ ...base(throwing), upstreamCa: [upstream.caPem] });
    try {
      const r = await run(["curl", "-sS", "--proxy", `http://127.0.0.1:${proxy.address.port}`, "--cacert", path.join(dir, "proxy-ca.pem"), "https://api.openai.com/v1/models"]);
      expect(r.err).toBe("");
      expect(JSON.parse(r.out)).toEqual({ path: "/v1/models" });
      expect(proxy.stats().intercepted).toBe(1);
      expect(proxy.stats().tapErrors).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  test("past the connection limit new clients get 503", async () => {
    const proxy = await startProxy({ ...base(new RecordingTap()), limits: { maxConnections: 1 } });
    try {
      const hold = net.connect(proxy.address.port, "127.0.0.1");
      await new Promise((r) => hold.once("connect", r));
      await waitFor("first counted", () => proxy.stats().connectionsActive === 1);
      const second = net.connect(proxy.address.port, "127.0.0.1");
      const text = await exchange(second, "CONNECT api.openai.com:443 HTTP/1.1\r\n\r\n", () => false);
      expect(text.split("\r\n")[0]).toBe("HTTP/1.1 503 Service Unavailable");
      expect(proxy.stats().refusedOverLimit).toBe(1);
      hold.destroy();
    } finally {
      await proxy.close();
    }
  });

  test("a ClientHello sent in the same write as CONNECT is not lost", async () => {
    // Capture a real ClientHello for api.openai.com.
    const hello = await new Promise<Buffer>((resolve) => {
      const cap = net.createServer((s) => s.once("data", (d: Buffer) => {
        resolve(d);
        s.destroy();
        cap.close();
      }));
      cap.listen(0, "127.0.0.1", () => {
        const c = tls.connect({ host: "127.0.0.1", port: (cap.address() as net.AddressInfo).port, servername: "api.openai.com", ALPNProtocols: ["http/1.1"] });
        c.on("error", () => {});
      });
    });
    const tap = new RecordingTap();
    const proxy = await startProxy({ ...base(tap), upstreamCa: [upstream.caPem] });
    try {
      const sock = net.connect(proxy.address.port, "127.0.0.1");
      await new Promise((r) => sock.once("connect", r));
      const got = new Promise<Buffer>((resolve) => {
        let buf = Buffer.alloc(0);
        sock.on("data", (d: Buffer) => {
          buf = Buffer.concat([buf, d]);
          const head = "HTTP/1.1 200 Connection Established\r\n\r\n";
          if (buf.length > head.length + 5) resolve(buf);
        });
      });
      sock.write(Buffer.concat([Buffer.from("CONNECT api.openai.com:443 HTTP/1.1\r\n\r\n"), hello]));
      const buf = await got;
      const head = "HTTP/1.1 200 Connection Established\r\n\r\n";
      expect(buf.subarray(0, head.length).toString()).toBe(head);
      // Our ServerHello: a handshake record, i.e. the proxy parsed the hello it got with the CONNECT.
      expect([...buf.subarray(head.length, head.length + 2)]).toEqual([0x16, 0x03]);
      sock.destroy();
    } finally {
      await proxy.close();
    }
  });

  test("transparent entry (WinDivert): same interception without CONNECT; connect failure drops the socket", async () => {
    const tap = new RecordingTap();
    const proxy = await startProxy({ ...base(tap), upstreamCa: [upstream.caPem] });
    let dest = { ip: "127.0.0.1", port: upstream.port };
    const front = net.createServer((s) => proxy.handleTransparent(s, { ...dest, lookup: async () => ({ pid: 4242, name: "app.exe" }) }));
    await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
    const frontPort = (front.address() as net.AddressInfo).port;
    try {
      const t = tls.connect({ host: "127.0.0.1", port: frontPort, servername: "api.openai.com", ca: [ca.certPem], ALPNProtocols: ["http/1.1"] });
      await new Promise((r) => t.once("secureConnect", r));
      const text = await exchange(t, "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n\r\n", () => false);
      expect(text).toContain('{"path":"/v1/models"}');
      const meta = await waitFor("meta", () => tap.metas[0]);
      expect(meta).toMatchObject({ mode: "mitm", captureMethod: "windivert", host: "127.0.0.1", sni: "api.openai.com", process: { pid: 4242, name: "app.exe" } });
      await waitFor("close", () => tap.closed.has(meta.connId));
      expect(tap.bytes(meta.connId, "c2s")).toBe("GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n\r\n");
      // Nothing listens there: the client sees its connection dropped, as without the proxy.
      const tmp = net.createServer();
      await new Promise<void>((r) => tmp.listen(0, "127.0.0.1", r));
      dest = { ip: "127.0.0.1", port: (tmp.address() as net.AddressInfo).port };
      await new Promise<void>((r) => tmp.close(() => r()));
      const sock = net.connect(frontPort, "127.0.0.1");
      expect(await exchange(sock, "", () => false)).toBe("");
    } finally {
      front.close();
      await proxy.close();
    }
  });

  test("a client that hangs up on our certificate without an alert (Bun) is seen as such, and never pinned while its process is unknown", async () => {
    const tap = new RecordingTap();
    const proxy = await startProxy({ ...base(tap), upstreamCa: [upstream.caPem] });
    try {
      for (let i = 0; i < 3; i++) {
        const { sock } = await connectTunnel(proxy.address.port, "api.openai.com:443");
        const t = tls.connect({ socket: sock, servername: "api.openai.com", ca: [upstream.caPem] });
        const err = await new Promise<Error>((resolve) => t.once("error", resolve));
        expect(err.message).toMatch(/certificate|self.signed|issuer/i);
        t.destroy();
        await waitFor("failure recorded", () => tap.metas.length === i + 1);
      }
      // No process lookup here: an unidentified local process is never passed through (pinning-node.test.ts pins one).
      expect(tap.metas.map((m) => m.passthroughCode)).toEqual(["closed-after-handshake", "closed-after-handshake", "closed-after-handshake"]);
      expect(tap.metas[2]!.passthroughReason).toBe("the client hung up after our ServerHello without an alert or a byte (an unidentified local process: not counted, only an identified client is ever passed through)");
      expect(proxy.pinnedHosts()).toEqual([]);
      expect(proxy.stats().clientRejected).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  test("TLS sent to the proxy port (an https:// proxy URL) is refused at once with an alert and a log line", async () => {
    const logs: string[] = [];
    const proxy = await startProxy({ ...base(new RecordingTap()), log: (level, msg) => logs.push(`${level} ${msg}`) });
    try {
      // Without the check curl waits for the 30 s head timeout and --max-time ends it with 28.
      const r = await run(["curl", "-sS", "--max-time", "10", "--proxy", `https://127.0.0.1:${proxy.address.port}`, "--proxy-insecure", "https://api.openai.com/v1/models"]);
      expect(r.code).toBe(35); // curl: TLS connect error
      expect(r.err).toMatch(/alert handshake failure/i);
      expect(proxy.stats().tlsToProxyPort).toBe(1);
      expect(logs.filter((l) => l.includes("proxy URL must start with http://, not https://"))).toHaveLength(1);
      // A second one is counted but not logged again (a misconfigured client retries in a loop).
      await run(["curl", "-sS", "--max-time", "10", "--proxy", `https://127.0.0.1:${proxy.address.port}`, "--proxy-insecure", "https://api.openai.com/v1/models"]);
      expect(proxy.stats().tlsToProxyPort).toBe(2);
      expect(logs.filter((l) => l.includes("not https://"))).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  test("a silent client is cut at the head timeout with 400", async () => {
    const proxy = await startProxy({ ...base(new RecordingTap()), limits: { headTimeoutMs: 100 } });
    try {
      const sock = net.connect(proxy.address.port, "127.0.0.1");
      const text = await exchange(sock, "CONNECT api.open", () => false);
      expect(text.split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request");
    } finally {
      await proxy.close();
    }
  });
});
