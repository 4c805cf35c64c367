// Hands diverted connections to the explicit proxy as it exists today (startProxy's CONNECT listener):
// a transparent listener accepts the reflected connection, asks the WinDivert directory where it was
// really going, peeks the TLS ClientHello for the SNI, and opens "CONNECT sni:port" on the proxy, then
// relays bytes both ways. The proxy does everything else (intercept-or-pass, upstream, tap).
//
// Cost of going through CONNECT instead of a native transparent entry in the proxy: the proxy sees the
// bridge as its client, so ConnMeta.client is the bridge's socket and captureMethod says "mitm_proxy";
// lookupProcess() below gives the proxy the real process back. Plain HTTP to local providers is relayed
// but not tapped (the proxy only taps plain HTTP in absolute-form requests). A native entry removes all
// three; see the report for what it needs.
import net from "node:net";
import { ClientHelloParser } from "../../mitm/client-hello.ts";
import type { Logger } from "../../util/log.ts";
import type { ProcessLookup } from "../process/index.ts";
import type { Endpoint, ProcessInfo } from "../types.ts";
import type { OriginalDestination, WinDivertCapture } from "./redirector.ts";

export interface BridgeOptions {
  /** Where reflected connections arrive: the wildcard address and the divert proxy port. */
  listen: { host: string; port: number };
  directory: Pick<WinDivertCapture, "originalDestination">;
  /** The explicit proxy's CONNECT listener. */
  proxy: { host: string; port: number };
  log: Logger;
  maxConnections?: number;
  /** How long to wait for the client's first bytes (TLS clients speak first). */
  helloTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** PID → ProcessInfo (Windows: image path); default { pid }. */
  processInfo?: (pid: number) => ProcessInfo;
}

export interface BridgeStats {
  accepted: number;
  notDiverted: number;
  proxyRefused: number;
  active: number;
  overLimit: number;
}

export interface RunningBridge {
  address: { host: string; port: number };
  /** Wraps the proxy's ProcessLookup so connections from the bridge are attributed to the real client. */
  lookupProcess(fallback: ProcessLookup): ProcessLookup;
  stats(): BridgeStats;
  close(): Promise<void>;
}

const MAX_HELLO = 64 * 1024;

function authorityFor(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** First bytes of the client, until a ClientHello is complete, it is clearly not TLS, or time is up. */
function peekFirstBytes(sock: net.Socket, timeoutMs: number): Promise<{ bytes: Buffer; sni?: string; closed: boolean }> {
  const parser = new ClientHelloParser(MAX_HELLO);
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    const finish = (closed: boolean, sni?: string) => {
      clearTimeout(timer);
      sock.off("data", onData).off("end", onEnd);
      sock.pause();
      resolve({ bytes: Buffer.concat(chunks), sni, closed });
    };
    const onData = (d: Buffer) => {
      chunks.push(d);
      const r = parser.push(d);
      if (r.status === "ok") finish(false, r.hello.sni);
      else if (r.status !== "need-more") finish(false);
    };
    const onEnd = () => finish(true);
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on("data", onData).once("end", onEnd);
    sock.resume();
  });
}

/** Opens a CONNECT tunnel on the proxy; resolves the socket (paused) and any bytes after the head. */
function connectViaProxy(
  proxy: { host: string; port: number }, authority: string, timeoutMs: number, onConnected: (localPort: number) => void,
): Promise<{ up: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const up = net.connect({ host: proxy.host, port: proxy.port, allowHalfOpen: true });
    let head = Buffer.alloc(0);
    const fail = (why: string) => {
      clearTimeout(timer);
      up.destroy();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail("proxy did not answer CONNECT in time"), timeoutMs);
    up.once("error", (e) => fail(e.message));
    up.once("connect", () => {
      onConnected(up.localPort ?? 0);
      up.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    });
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > 16 * 1024) fail("proxy answer head too large");
        return;
      }
      clearTimeout(timer);
      up.off("data", onData);
      up.pause();
      up.removeAllListeners("error");
      const status = head.subarray(0, head.indexOf("\r\n")).toString("latin1");
      if (!/^HTTP\/1\.[01] 200/.test(status)) {
        up.destroy();
        reject(new Error(`proxy refused CONNECT ${authority}: ${status}`));
        return;
      }
      resolve({ up, rest: head.subarray(end + 4) });
    };
    up.on("data", onData);
  });
}

/** Relays both ways with half-close; destroys both on error. */
function relay(a: net.Socket, b: net.Socket, onClose: () => void): void {
  let closed = 0;
  const done = () => {
    if (++closed === 2) onClose();
  };
  for (const [from, to] of [[a, b], [b, a]] as const) {
    from.on("data", (d: Buffer) => {
      if (!to.write(d)) {
        from.pause();
        to.once("drain", () => from.resume());
      }
    });
    from.once("end", () => to.end());
    from.once("error", () => { a.destroy(); b.destroy(); });
    from.once("close", done);
    from.resume();
  }
}

export async function startBridge(opts: BridgeOptions): Promise<RunningBridge> {
  const maxConnections = opts.maxConnections ?? 10_000;
  const helloTimeoutMs = opts.helloTimeoutMs ?? 3000;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 15_000;
  const stats: BridgeStats = { accepted: 0, notDiverted: 0, proxyRefused: 0, active: 0, overLimit: 0 };
  /** Local port of the bridge's socket to the proxy → the diverted connection it carries. */
  const byProxyPort = new Map<number, OriginalDestination>();
  /** The proxy asks for the process as soon as it accepts, which may be before our connect callback ran. */
  const portWaiters = new Map<number, () => void>();
  let connecting = 0;
  const sockets = new Set<net.Socket>();

  async function handle(client: net.Socket): Promise<void> {
    client.pause();
    const peer: Endpoint = { ip: client.remoteAddress ?? "", port: client.remotePort ?? 0 };
    const d = await opts.directory.originalDestination(peer);
    if (!d) {
      stats.notDiverted++;
      opts.log("debug", `bridge: ${peer.ip}:${peer.port} is not a diverted connection; closed`);
      client.destroy();
      return;
    }
    const first = await peekFirstBytes(client, helloTimeoutMs);
    const host = first.sni ?? d.host ?? d.server.ip;
    let tunnel: { up: net.Socket; rest: Buffer };
    let localPort = 0;
    connecting++;
    try {
      tunnel = await connectViaProxy(opts.proxy, authorityFor(host, d.server.port), connectTimeoutMs, (port) => {
        localPort = port;
        byProxyPort.set(port, d);
        portWaiters.get(port)?.();
      });
    } catch (e) {
      stats.proxyRefused++;
      opts.log("warn", `bridge: ${(e as Error).message}`);
      if (localPort) byProxyPort.delete(localPort);
      client.destroy();
      return;
    } finally {
      connecting--;
    }
    const { up, rest } = tunnel;
    sockets.add(up);
    if (rest.length > 0) client.write(rest);
    if (first.bytes.length > 0) up.write(first.bytes);
    if (first.closed) up.end();
    relay(client, up, () => {
      byProxyPort.delete(localPort);
      sockets.delete(up);
    });
  }

  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    stats.accepted++;
    client.on("error", () => {});
    if (sockets.size >= maxConnections) {
      stats.overLimit++;
      client.destroy();
      return;
    }
    stats.active++;
    sockets.add(client);
    client.once("close", () => {
      stats.active--;
      sockets.delete(client);
    });
    handle(client).catch((e: Error) => {
      opts.log("error", `bridge: ${e.message}`);
      client.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: opts.listen.host, port: opts.listen.port, ipv6Only: false }, () => resolve());
  });
  const addr = server.address() as net.AddressInfo;
  const info = opts.processInfo ?? ((pid: number) => ({ pid }));

  return {
    address: { host: addr.address, port: addr.port },
    lookupProcess(fallback) {
      return async (client, proxyEp) => {
        let d = byProxyPort.get(client.port);
        if (!d && connecting > 0 && /^(127\.|::1$|::ffff:127\.)/.test(client.ip) && !portWaiters.has(client.port)) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(done, 250);
            function done() {
              clearTimeout(t);
              portWaiters.delete(client.port);
              resolve();
            }
            portWaiters.set(client.port, done);
          });
          d = byProxyPort.get(client.port);
        }
        if (!d) return fallback(client, proxyEp);
        if (d.pid !== undefined) return info(d.pid);
        // The original client socket (C:cp → S:sp) still exists: look its owner up instead.
        return fallback(d.client, d.server);
      };
    },
    stats: () => ({ ...stats }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
