// The intercepting proxy when the upstream drops its leg before the client's TLS handshake with us is done.
// The upstream leg is connected and handshaken first (to verify the host and mirror its ALPN), then it waits,
// unused, for the client. Servers close connections that bring no request for a while (Bun.serve / uWS after
// ~10 s); under 1,000 new connections at once the client handshakes queue for longer than that (bench/load.ts
// lost 385–570 requests so). The proxy must open a fresh upstream leg, not hand the client a dead one.
import { afterEach, expect, test } from "bun:test";
import net from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import type { RunningProxy } from "../../src/capture/proxy/server.ts";
import { connectTunnel, startAiProxy } from "../support/ai-proxy.ts";
import type { ConnMeta, TapSink } from "../../src/tap/types.ts";
import { createTestCa, type TestCa } from "../support/upstream.ts";

/** The upstream drops its first connection when it sends nothing within this long of its TLS handshake. */
const UPSTREAM_IDLE_MS = 150;
/** The client finishes its handshake this long after that drop (time for the proxy to see the close). */
const CLIENT_LAG_MS = 100;

interface Rig {
  proxyCa: TestCa;
  proxy: RunningProxy;
  upstream: tls.Server;
  accepted: number;
  dropped: number;
  firstDropped: Promise<void>;
  closes: Array<{ meta: ConnMeta; error?: string }>;
}

let rig: Rig | undefined;

afterEach(async () => {
  await rig?.proxy.close();
  await new Promise<void>((r) => (rig?.upstream.listening ? rig.upstream.close(() => r()) : r()));
  rig = undefined;
});

/** An upstream that answers every request with 200 but drops its first connection while idle; `refuseAfterDrop` stops listening then. */
async function startRig(opts: { refuseAfterDrop: boolean }): Promise<Rig> {
  const proxyCa = await createTestCa("OISP Idle Test Proxy CA");
  const upstreamCa = await createTestCa("OISP Idle Test Upstream CA");
  const { cert, key } = await upstreamCa.issue(["api.openai.com"]);
  let onDrop!: () => void;
  const r: Partial<Rig> & { accepted: number; dropped: number; closes: Rig["closes"] } = {
    proxyCa,
    accepted: 0,
    dropped: 0,
    closes: [],
    firstDropped: new Promise<void>((res) => (onDrop = res)),
  };
  const upstream = tls.createServer({ cert, key, ALPNProtocols: ["http/1.1"] }, (s) => {
    const first = r.accepted++ === 0;
    let head = "";
    const timer = first
      ? setTimeout(() => {
          r.dropped++;
          s.destroy();
          if (opts.refuseAfterDrop) upstream.close();
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
  await new Promise<void>((res) => upstream.listen(0, "127.0.0.1", () => res()));
  const metas = new Map<string, ConnMeta>();
  const tap: TapSink = {
    open: (meta) => metas.set(meta.connId, meta),
    data: () => {},
    close: (id, _ts, error) => r.closes.push({ meta: metas.get(id)!, error }),
  };
  r.upstream = upstream;
  r.proxy = await startAiProxy({
    issuer: proxyCa,
    upstreamCaPem: upstreamCa.certPem,
    upstreamPort: (upstream.address() as net.AddressInfo).port,
    tap,
    limits: { handshakeTimeoutMs: 5000, connectTimeoutMs: 3000 },
  });
  rig = r as Rig;
  return rig;
}

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

const connectThroughProxy = (proxy: RunningProxy) => connectTunnel(proxy.address.port);

/**
 * A client whose handshake is held (it sees nothing of the proxy's answer) until the upstream has dropped the
 * proxy's first leg; then one request. Resolves with what came back, or "closed before response".
 */
async function slowClientRequest(r: Rig): Promise<string> {
  const raw = await connectThroughProxy(r.proxy);
  const release = r.firstDropped.then(() => Bun.sleep(CLIENT_LAG_MS));
  const client = tls.connect({ socket: new StallingDuplex(raw, release) as unknown as net.Socket, servername: "api.openai.com", ca: [r.proxyCa.certPem], ALPNProtocols: ["http/1.1"] });
  client.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    client.once("secureConnect", () => resolve());
    client.once("close", () => reject(new Error("closed during the handshake")));
  });
  // By now the proxy's first upstream leg has been dropped by the server.
  expect(r.dropped).toBe(1);
  const answer = await new Promise<string>((resolve) => {
    let text = "";
    client.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (text.endsWith('{"ok":true}')) resolve(text);
    });
    client.once("close", () => resolve(text || "closed before response"));
    client.write('POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
  });
  client.end();
  await new Promise<void>((res) => (client.destroyed ? res() : client.once("close", () => res())));
  return answer;
}

/** The tap's close for the intercepted connection (it follows the relay's end by a turn or two). */
async function tapClose(r: Rig): Promise<{ meta: ConnMeta; error?: string }> {
  for (let i = 0; i < 100 && r.closes.length === 0; i++) await Bun.sleep(10);
  expect(r.closes).toHaveLength(1);
  return r.closes[0]!;
}

test(
  "upstream leg dropped while the client's handshake was slow: the request still gets its response over a fresh leg",
  async () => {
    const r = await startRig({ refuseAfterDrop: false });
    const answer = await slowClientRequest(r);
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    expect(r.accepted).toBe(2);
    expect(r.proxy.stats().upstreamRedials).toBe(1);
    const closed = await tapClose(r);
    expect(closed.meta.mode).toBe("mitm");
  },
  { timeout: 10_000 },
);

test(
  "upstream leg dropped and the host now refuses: the client is closed, the tap says why, nothing else breaks",
  async () => {
    const r = await startRig({ refuseAfterDrop: true });
    expect(await slowClientRequest(r)).toBe("closed before response");
    expect(r.accepted).toBe(1);
    const stats = r.proxy.stats();
    expect(stats.upstreamRedials).toBe(0);
    expect(stats.upstreamErrors).toBe(1);
    const closed = await tapClose(r);
    expect(closed.error).toContain("reconnecting failed");
    expect(closed.meta.upstreamError).toContain("reconnecting failed");
  },
  { timeout: 10_000 },
);
