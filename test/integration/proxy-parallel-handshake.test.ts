// New connections to an upstream verified recently: the proxy answers the client's TLS handshake while its
// own handshake with the upstream is still under way (src/mitm/known-upstreams.ts, tunnel.ts), and resumes
// the upstream's TLS session. Real sockets: node:tls clients through startProxy() to local TLS upstreams,
// behind a relay that can hold the upstream's bytes (to prove the two handshakes overlap, by order, not by
// time) or switch to another upstream (one whose certificate we do not trust).
import { afterEach, expect, test } from "bun:test";
import http from "node:http";
import net from "node:net";
import type tls from "node:tls";
import type { RunningProxy } from "../../src/capture/proxy/server.ts";
import { startAiProxy, tlsThroughProxy } from "../support/ai-proxy.ts";
import type { ConnMeta, Direction, TapSink } from "../../src/tap/types.ts";
import { waitFor } from "../support/oisp-process.ts";
import { createTestCa, startTlsUpstream, type TestCa, type TlsUpstream } from "../support/upstream.ts";

/**
 * A TCP relay in front of the upstreams: connections go to `target`, and while `hold` is set what the upstream
 * sends is kept back (the ServerHello first of all) until release().
 */
class Switchboard {
  target = 0;
  private holding = false;
  private waiting: Array<() => void> = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor() {
    this.server = net.createServer((inbound) => {
      const out = net.connect(this.target, "127.0.0.1");
      for (const s of [inbound, out]) {
        this.sockets.add(s);
        s.on("error", () => {});
        s.on("close", () => (this.sockets.delete(s), inbound.destroy(), out.destroy()));
      }
      inbound.on("data", (d: Buffer) => out.write(d));
      out.on("data", (d: Buffer) => {
        if (!this.holding) return void inbound.write(d);
        this.waiting.push(() => inbound.write(d));
      });
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return (this.server.address() as net.AddressInfo).port;
  }

  hold(): void {
    this.holding = true;
  }

  release(): void {
    this.holding = false;
    for (const w of this.waiting.splice(0)) w();
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

interface Rig {
  proxyCa: TestCa;
  proxy: RunningProxy;
  board: Switchboard;
  trusted: TlsUpstream;
  untrusted: TlsUpstream;
  /** Requests each upstream received. */
  seen: { trusted: string[]; untrusted: string[] };
  metas: Map<string, ConnMeta>;
  frames: Array<{ connId: string; dir: Direction; text: string }>;
  closes: Map<string, string | undefined>;
}

let rig: Rig | undefined;

afterEach(async () => {
  await rig?.proxy.close();
  await rig?.board.close();
  await rig?.trusted.close();
  await rig?.untrusted.close();
  rig = undefined;
});

async function startRig(): Promise<Rig> {
  const seen = { trusted: [] as string[], untrusted: [] as string[] };
  const handler = (who: keyof typeof seen) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen[who].push(`${req.method} ${req.url}`);
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ from: who, path: req.url }));
    });
  };
  // Two servers for the same name, each with its own CA: the proxy trusts the first one's only.
  const trusted = await startTlsUpstream({ hosts: ["api.openai.com"], handler: handler("trusted") });
  const untrusted = await startTlsUpstream({ hosts: ["api.openai.com"], handler: handler("untrusted") });
  const board = new Switchboard();
  board.target = trusted.port;
  const boardPort = await board.listen();
  const proxyCa = await createTestCa("OISP Parallel Test Proxy CA");
  const metas = new Map<string, ConnMeta>();
  const frames: Rig["frames"] = [];
  const closes = new Map<string, string | undefined>();
  const tap: TapSink = {
    open: (meta) => metas.set(meta.connId, meta),
    data: (connId, dir, bytes) => frames.push({ connId, dir, text: Buffer.from(bytes).toString("latin1") }),
    close: (connId, _ts, error) => closes.set(connId, error),
  };
  const proxy = await startAiProxy({
    issuer: proxyCa,
    upstreamCaPem: trusted.caPem,
    upstreamPort: boardPort,
    tap,
    limits: { handshakeTimeoutMs: 5000, connectTimeoutMs: 3000 },
  });
  rig = { proxyCa, proxy, board, trusted, untrusted, seen, metas, frames, closes };
  return rig;
}

/** CONNECT, then a TLS client that trusts only the proxy's CA; resolves once its handshake is done. */
const connectTls = (r: Rig) => tlsThroughProxy(r.proxy.address.port, r.proxyCa.certPem);

/** One request on `sock`; the whole answer, or what came before the connection closed. */
function request(sock: tls.TLSSocket, path: string): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    sock.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (/\r\n\r\n\{.*\}$/s.test(text)) resolve(text);
    });
    sock.on("error", () => {});
    sock.once("close", () => resolve(text));
    sock.write(`GET ${path} HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n\r\n`);
  });
}

const connIdFor = (r: Rig, path: string) => r.frames.find((f) => f.dir === "c2s" && f.text.includes(`GET ${path} `))?.connId;

test("a second connection to a verified upstream finishes the client's handshake before the upstream's, and is captured", async () => {
  const r = await startRig();
  // The first connection verifies the upstream before answering the client.
  const first = await request(await connectTls(r), "/v1/first");
  expect(first).toContain('"from":"trusted"');
  expect(r.proxy.stats()).toMatchObject({ intercepted: 1, parallelHandshakes: 0, upstreamResumed: 0 });

  // The second: everything the upstream sends is held from before the connection starts, so the proxy's
  // handshake with it cannot finish; the client's handshake with the proxy completes all the same. (Done
  // one after the other, the client would wait until the proxy's handshake timeout and then fail.)
  r.board.hold();
  const sock = await connectTls(r);
  const answer = request(sock, "/v1/second");
  await Bun.sleep(50);
  expect(r.seen.trusted).toEqual(["GET /v1/first"]); // nothing relayed before the upstream is verified
  r.board.release();
  expect(await answer).toContain('"from":"trusted","path":"/v1/second"');
  expect(r.seen.trusted).toEqual(["GET /v1/first", "GET /v1/second"]);
  const stats = r.proxy.stats();
  expect(stats).toMatchObject({ intercepted: 2, parallelHandshakes: 1, upstreamErrors: 0 });
  // The second upstream leg resumed the first one's TLS session.
  expect(stats.upstreamResumed).toBe(1);
  // Captured as any intercepted connection: both directions, then closed without error.
  const id = await waitFor("the second connection's close", () => {
    const c = connIdFor(r, "/v1/second");
    return c && r.closes.has(c) ? c : undefined;
  });
  expect(r.metas.get(id)).toMatchObject({ mode: "mitm", alpn: "http/1.1", host: "api.openai.com" });
  expect(r.frames.filter((f) => f.connId === id && f.dir === "s2c").map((f) => f.text).join("")).toContain('"path":"/v1/second"');
  expect(r.closes.get(id)).toBeUndefined();
});

test("an upstream whose certificate is no longer trusted after it was verified is refused, not relayed", async () => {
  const r = await startRig();
  expect(await request(await connectTls(r), "/v1/first")).toContain('"from":"trusted"');

  // The name now leads to a server with a certificate from a CA the proxy does not trust. The client's
  // handshake with the proxy completes (in parallel), and its request is written before the upstream answers.
  r.board.target = r.untrusted.port;
  r.board.hold();
  const sock = await connectTls(r);
  const answer = request(sock, "/v1/second");
  await Bun.sleep(50);
  r.board.release();
  // The client's connection is closed without an answer, and the request never reached that server.
  expect(await answer).toBe("");
  expect(r.seen.untrusted).toEqual([]);
  const stats = r.proxy.stats();
  expect(stats).toMatchObject({ intercepted: 1, parallelHandshakes: 1, upstreamErrors: 1 });
  const refused = await waitFor("the refused connection's record", () => [...r.metas.values()].find((m) => m.passthroughCode === "upstream-tls-failed"));
  expect(refused.mode).toBe("passthrough");
  expect(refused.upstreamError).toMatch(/certificate|self.signed|issuer/i);
  expect(r.frames.filter((f) => f.connId === refused.connId)).toEqual([]);

  // The retry verifies first: the upstream fails before the client is answered, so the connection is passed
  // through and the client meets that server's certificate itself (and refuses it, trusting only our CA).
  const retry = await connectTls(r).then(
    () => "handshake ok",
    (err: Error) => err.message,
  );
  expect(retry).toMatch(/certificate|self.signed|issuer/i);
  expect(r.proxy.stats()).toMatchObject({ parallelHandshakes: 1, upstreamErrors: 2, passthrough: 1 });
  expect(r.seen.untrusted).toEqual([]);
});
