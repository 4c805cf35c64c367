// The client's leg of an intercepted connection runs on Bun's native TLS (src/mitm/native-answer.ts): through the
// real proxy, large bodies cross whole both ways with backpressure, and every connection is counted out
// whichever side ends it, so the connection limit never fills with dead tunnels.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type tls from "node:tls";
import type { RunningProxy } from "../../src/capture/proxy/server.ts";
import { startAiProxy, tlsThroughProxy } from "../support/ai-proxy.ts";
import type { ConnMeta, Direction, TapSink } from "../../src/tap/types.ts";
import { createTestCa, startTlsUpstream, type TestCa, type TlsUpstream } from "../support/upstream.ts";
import { waitFor } from "../support/oisp-process.ts";

const BIG = 4 * 1024 * 1024;
let ca: TestCa;
let upstream: TlsUpstream;
let proxy: RunningProxy;
const metas: ConnMeta[] = [];
const tapped = new Map<string, number>();

beforeAll(async () => {
  ca = await createTestCa("native leg test CA");
  upstream = await startTlsUpstream({
    hosts: ["api.openai.com"],
    handler: (req, res) => {
      let n = 0;
      req.on("data", (d: Buffer) => (n += d.length));
      req.on("end", () => {
        const size = req.url === "/big" ? BIG : 2;
        res.writeHead(200, { "content-length": String(size), "x-received": String(n) });
        res.end(Buffer.alloc(size, 0x61));
      });
    },
  });
  const tap: TapSink = {
    open: (m) => void metas.push(m),
    data: (id: string, dir: Direction, b: Uint8Array) => void tapped.set(`${id}:${dir}`, (tapped.get(`${id}:${dir}`) ?? 0) + b.length),
    close: () => {},
  };
  proxy = await startAiProxy({ issuer: ca, upstreamCaPem: upstream.caPem, upstreamPort: upstream.port, tap });
});

afterAll(async () => {
  await proxy.close();
  await upstream.close();
});

/** A TLS connection to api.openai.com through the proxy (the shared one by default), trusting the proxy's CA. */
const viaProxy = (port = proxy.address.port) => tlsThroughProxy(port, ca.certPem);

/** Sends `head` + `body` and reads one response with a content-length; resolves with its head and body size. */
function exchange(t: tls.TLSSocket, head: string, body = Buffer.alloc(0)): Promise<{ head: string; bodyBytes: number }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const h = buf.subarray(0, end).toString("latin1");
      const len = Number(/content-length: (\d+)/i.exec(h)?.[1] ?? -1);
      if (buf.length - end - 4 < len) return;
      t.off("data", onData);
      resolve({ head: h, bodyBytes: buf.length - end - 4 });
    };
    t.on("data", onData);
    t.once("close", () => reject(new Error("closed before the response")));
    t.write(head);
    if (body.length) t.write(body);
  });
}

test("a 4 MB upload and a 4 MB answer cross the native leg whole, and are tapped whole", async () => {
  const t = await viaProxy();
  const r = await exchange(t, `POST /big HTTP/1.1\r\nHost: api.openai.com\r\nContent-Length: ${BIG}\r\n\r\n`, Buffer.alloc(BIG, 0x62));
  expect(r.head).toContain(`x-received: ${BIG}`);
  expect(r.bodyBytes).toBe(BIG);
  t.destroy();
  const meta = metas.at(-1)!;
  expect(meta.mode).toBe("mitm");
  await waitFor("the answer tapped", () => (tapped.get(`${meta.connId}:s2c`) ?? 0) > BIG || undefined);
  expect(tapped.get(`${meta.connId}:c2s`)!).toBeGreaterThan(BIG);
});

test("every intercepted connection is counted out, whichever side ends it", async () => {
  await waitFor("earlier connections gone", () => proxy.stats().connectionsActive === 0 || undefined);
  const before = proxy.stats().intercepted;
  const ask = "GET /small HTTP/1.1\r\nHost: api.openai.com\r\n";
  // The server ends it (Connection: close), the client ends it cleanly, the client aborts it.
  const byServer = await viaProxy();
  await exchange(byServer, `${ask}Connection: close\r\n\r\n`);
  const byClient = await viaProxy();
  await exchange(byClient, `${ask}\r\n`);
  byClient.end();
  const aborted = await viaProxy();
  await exchange(aborted, `${ask}\r\n`);
  aborted.destroy();
  await waitFor("all three counted out", () => proxy.stats().connectionsActive === 0 || undefined);
  expect(proxy.stats().intercepted - before).toBe(3);
  byServer.destroy();
  byClient.destroy();
});

test("a client that ends its side right after its request still gets the answer", async () => {
  const t = await viaProxy();
  const got = new Promise<string>((resolve) => {
    let text = "";
    t.on("data", (d: Buffer) => (text += d.toString("latin1")));
    t.once("end", () => resolve(text));
    t.once("close", () => resolve(text));
  });
  t.end("GET /small HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n\r\n");
  expect(await got).toContain("\r\n\r\naa");
});

test("what the client sends keeps its connection from the idle timeout, as what it is sent does", async () => {
  // A piece every idle period / 5: margin for a loaded machine's late timers before a gap could reach the timeout.
  const idleMs = 1000;
  const idle = await startAiProxy({ issuer: ca, upstreamCaPem: upstream.caPem, upstreamPort: upstream.port, tap: { open() {}, data() {}, close() {} }, limits: { idleTimeoutMs: idleMs } });
  try {
    const t = await viaProxy(idle.address.port);
    const closed = new Promise<number>((resolve) => t.once("close", () => resolve(performance.now())));
    // An upload that trickles in for three idle periods: the proxy only reads, and answers once it is whole.
    const pieces = 15;
    const answer = exchange(t, `POST /small HTTP/1.1\r\nHost: api.openai.com\r\nContent-Length: ${pieces}\r\n\r\n`);
    for (let i = 0; i < pieces; i++) {
      await Bun.sleep((3 * idleMs) / pieces);
      t.write("x");
    }
    expect((await answer).head).toContain(`x-received: ${pieces}`);
    // Then nothing either way: closed after an idle period.
    const quietFrom = performance.now();
    expect((await closed) - quietFrom).toBeGreaterThanOrEqual(idleMs - 50);
  } finally {
    await idle.close();
  }
}, 30_000);
