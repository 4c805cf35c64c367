// The intercepting proxy when the upstream drops its leg before the client's TLS handshake with us is done.
// The upstream leg is connected and handshaken first (to verify the host and mirror its ALPN), then it waits,
// unused, for the client. Servers close connections that bring no request for a while (Bun.serve / uWS after
// ~10 s); under 1,000 new connections at once the client handshakes queue for longer than that (bench/load.ts
// lost 385–570 requests so). The proxy must open a fresh upstream leg, not hand the client a dead one.
import { afterAll, beforeAll, expect, test } from "bun:test";
import net from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import { startProxy, type RunningProxy } from "../../src/capture/proxy/server.ts";
import type { ConnMeta, TapSink } from "../../src/capture/types.ts";
import { silentLogger } from "../../src/util/log.ts";
import { createTestCa, type TestCa } from "../support/upstream.ts";

/** The upstream drops its first connection when it sends nothing within this long of its TLS handshake. */
const UPSTREAM_IDLE_MS = 150;
/** The client finishes its handshake this long after that drop (time for the proxy to see the close). */
const CLIENT_LAG_MS = 100;

let proxyCa: TestCa;
let upstream: tls.Server;
let upstreamPort: number;
let accepted = 0;
let dropped = 0;
let onDrop: () => void;
const firstDropped = new Promise<void>((r) => (onDrop = r));
let proxy: RunningProxy;
const closes: Array<{ meta: ConnMeta; error?: string }> = [];

beforeAll(async () => {
  proxyCa = await createTestCa("OISP Idle Test Proxy CA");
  const upstreamCa = await createTestCa("OISP Idle Test Upstream CA");
  const { cert, key } = await upstreamCa.issue(["api.openai.com"]);
  upstream = tls.createServer({ cert, key, ALPNProtocols: ["http/1.1"] }, (s) => {
    const first = accepted++ === 0;
    let head = "";
    const timer = first
      ? setTimeout(() => {
          dropped++;
          s.destroy();
          onDrop();
        }, UPSTREAM_IDLE_MS)
      : undefined;
    s.on("error", () => {});
    s.on("data", (d: Buffer) => {
      clearTimeout(timer);
      head += d.toString("latin1");
      if (head.includes("\r\n\r\n")) {
        head = "";
        s.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}');
      }
    });
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  upstreamPort = (upstream.address() as net.AddressInfo).port;
  const metas = new Map<string, ConnMeta>();
  const tap: TapSink = {
    open: (meta) => metas.set(meta.connId, meta),
    data: () => {},
    close: (id, _ts, error) => closes.push({ meta: metas.get(id)!, error }),
  };
  proxy = await startProxy({
    listen: { host: "127.0.0.1", port: 0 },
    tlsMitm: true,
    allTraffic: false,
    issuer: proxyCa,
    isAiHost: (h) => h === "api.openai.com",
    upstreamCa: [upstreamCa.certPem],
    resolve: new Map([["api.openai.com:443", `127.0.0.1:${upstreamPort}`]]),
    tap,
    lookupProcess: async () => undefined,
    log: silentLogger,
    limits: { handshakeTimeoutMs: 5000, connectTimeoutMs: 3000 },
  });
});

afterAll(async () => {
  await proxy?.close();
  await new Promise<void>((r) => upstream?.close(() => r()));
});

/** Between the TLS client and the CONNECT socket: writes go straight out, what arrives is held until `release`. */
class StallingDuplex extends Duplex {
  private held: Buffer[] = [];
  private released = false;
  constructor(
    private readonly sock: net.Socket,
    release: Promise<void>,
  ) {
    super();
    sock.on("data", (d: Buffer) => (this.released ? this.push(d) : this.held.push(d)));
    sock.on("end", () => this.push(null));
    sock.on("close", () => this.destroy());
    void release.then(() => {
      this.released = true;
      for (const d of this.held.splice(0)) this.push(d);
    });
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.sock.write(chunk, () => cb());
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.sock.destroy();
    cb(err);
  }
}

async function connectThroughProxy(): Promise<net.Socket> {
  const sock = net.connect(proxy.address.port, "127.0.0.1");
  sock.write("CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n");
  let buf = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      buf += d.toString("latin1");
      if (!buf.includes("\r\n\r\n")) return;
      sock.off("data", onData);
      resolve();
    };
    sock.on("data", onData);
    sock.once("error", reject);
  });
  expect(buf.split("\r\n")[0]).toBe("HTTP/1.1 200 Connection Established");
  return sock;
}

test(
  "upstream leg dropped while the client's handshake was slow: the request still gets its response over a fresh leg",
  async () => {
    const raw = await connectThroughProxy();
    // The client sees nothing of the proxy's handshake answer until the upstream has dropped the proxy's first leg.
    const release = firstDropped.then(() => Bun.sleep(CLIENT_LAG_MS));
    const client = tls.connect({ socket: new StallingDuplex(raw, release) as unknown as net.Socket, servername: "api.openai.com", ca: [proxyCa.certPem], ALPNProtocols: ["http/1.1"] });
    client.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      client.once("secureConnect", () => resolve());
      client.once("close", () => reject(new Error("closed during the handshake")));
    });
    // By now the proxy's first upstream leg has been dropped by the server.
    expect(dropped).toBe(1);
    const answer = await new Promise<string>((resolve) => {
      let text = "";
      client.on("data", (d: Buffer) => {
        text += d.toString("latin1");
        if (text.endsWith('{"ok":true}')) resolve(text);
      });
      client.once("close", () => resolve(text || "closed before response"));
      client.write('POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
    });
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    expect(accepted).toBe(2);
    expect(proxy.stats().upstreamRedials).toBe(1);
    client.end();
    await new Promise<void>((r) => (client.destroyed ? r() : client.once("close", () => r())));
    await Bun.sleep(50);
    const mine = closes.find((c) => c.meta.host === "api.openai.com");
    expect(mine?.meta.mode).toBe("mitm");
  },
  { timeout: 10_000 },
);
