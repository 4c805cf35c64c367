// The explicit HTTP proxy: CONNECT host:port for HTTPS (intercepted or passed through by src/mitm),
// absolute-form requests for plain HTTP (local model servers). Answers like a real proxy when it cannot
// reach a host (502/504 before the tunnel is up), and never lets capture trouble break the user's traffic.
import net from "node:net";
import tls from "node:tls";
import { monotonicFactory } from "ulidx";
import type { ConnMeta, Endpoint, ProcessInfo, TapSink } from "../../tap/types.ts";
import { nowMs } from "../../tap/types.ts";
import { ConnTap, safeTap } from "../../mitm/conn-tap.ts";
import { DEFAULT_MAX_CLIENT_HELLO } from "../../wire/tls-client-hello.ts";
import type { LeafIssuer } from "../../mitm/issuer.ts";
import { PinnedClients } from "../../mitm/pinned.ts";
import { newProxyStats, type ProxyStats } from "../../mitm/stats.ts";
import { relay } from "../../mitm/relay.ts";
import { countBytes, runTunnel, SecureContextCache, type MitmPolicy } from "../../mitm/tunnel.ts";
import { connectTcp, resolveTarget } from "../../mitm/upstream.ts";
import type { Logger } from "../../util/log.ts";
import type { ProcessLookup } from "../process/index.ts";
import { PlainSession } from "./plain.ts";
import { ProxyRequestReader } from "./proxy-request.ts";
import { DEFAULT_MAX_HEAD_BYTES } from "./request-head.ts";
import { CONNECT_ESTABLISHED, errorResponse, replyAndClose } from "./responses.ts";
import { connectFailure, isOwnAddress, tunnelMeta, unmapV4, WarnEvery } from "./tunnel-plan.ts";

export type { ProxyStats } from "../../mitm/stats.ts";
export type { LeafIssuer } from "../../mitm/issuer.ts";
export { unmapV4 } from "./tunnel-plan.ts";

export interface ProxyLimits {
  /** Concurrent client connections; past it new ones get 503. */
  maxConnections: number;
  maxHeadBytes: number;
  maxClientHelloBytes: number;
  /** Time for the client to send its proxy request head. */
  headTimeoutMs: number;
  connectTimeoutMs: number;
  /** ClientHello after CONNECT, and each TLS handshake. */
  handshakeTimeoutMs: number;
  /** A connection with no bytes either way for this long is closed. */
  idleTimeoutMs: number;
  /** How long the tap's open() may wait for the process lookup (the relay never waits). */
  lookupTimeoutMs: number;
  maxPinnedHosts: number;
}

export const DEFAULT_PROXY_LIMITS: ProxyLimits = {
  maxConnections: 10_000,
  maxHeadBytes: DEFAULT_MAX_HEAD_BYTES,
  maxClientHelloBytes: DEFAULT_MAX_CLIENT_HELLO,
  headTimeoutMs: 30_000,
  connectTimeoutMs: 15_000,
  handshakeTimeoutMs: 30_000,
  idleTimeoutMs: 15 * 60_000,
  // Only the tap waits for the lookup (its frames are held, bounded); the relay never does. A busy
  // machine can take a few hundred ms to scan /proc, and a call without its process is worth less.
  lookupTimeoutMs: 1_000,
  maxPinnedHosts: 10_000,
};

export interface ProxyOptions {
  listen: { host: string; port: number };
  tlsMitm: boolean;
  allTraffic: boolean;
  issuer?: LeafIssuer;
  isAiHost: (host: string, port?: number) => boolean;
  /** Extra PEM roots for verifying upstreams, added to the public bundle. */
  upstreamCa: string[];
  /** "host:port" → "addr" or "addr:port": where to connect, keeping SNI and Host. */
  resolve: Map<string, string>;
  tap: TapSink;
  lookupProcess: ProcessLookup;
  log: Logger;
  limits?: Partial<ProxyLimits>;
  /** Capture paused (src/config/pause.ts): new connections are relayed blind and tap nothing. Read per connection. */
  paused?: () => boolean;
}

/** The tap of a connection started while paused: nothing leaves the relay. */
const DISCARD_TAP: TapSink = { open() {}, data() {}, close() {} };

/** Where a transparently captured connection was really going. */
export interface TransparentDestination {
  /** Original destination address and port: the relay connects there. */
  ip: string;
  port: number;
  /** Host name if known (DNS learned); the ClientHello's SNI is used for the decision anyway. */
  host?: string;
  /** The real client endpoint when the socket's peer is not it (WinDivert reflection: the peer is S:cp). */
  client?: Endpoint;
  captureMethod?: ConnMeta["captureMethod"];
  /** Process lookup for this connection (the capture layer often knows the pid already). */
  lookup?: () => Promise<ProcessInfo | undefined>;
}

export interface RunningProxy {
  address: { host: string; port: number };
  /**
   * Serves an accepted socket whose destination is known (transparent capture): same peek, decision,
   * interception, relay and tap as CONNECT, minus the proxy handshake. Connect failures drop the socket.
   */
  handleTransparent(client: net.Socket, dest: TransparentDestination): void;
  stats(): ProxyStats;
  /** "host: client" for each client passed through for a host because it refused our certificate. */
  pinnedHosts(): string[];
  /** Intercepts the clients pinned for these hosts (all when none are named) again; returns the hosts that had pins. */
  unpin(hosts?: string[]): string[];
  close(): Promise<void>;
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const limits = { ...DEFAULT_PROXY_LIMITS, ...opts.limits };
  const stats = newProxyStats();
  const log = opts.log;
  const tap = safeTap(opts.tap, (err, first) => {
    stats.tapErrors++;
    if (first) log("error", `tap failed (traffic still relayed; counted in stats from now on): ${(err as Error).message ?? err}`);
  });
  const pinned = new PinnedClients({ max: limits.maxPinnedHosts });
  const policy: MitmPolicy = {
    tlsMitm: opts.tlsMitm,
    allTraffic: opts.allTraffic,
    issuer: opts.issuer,
    isAiHost: opts.isAiHost,
    upstreamRoots: [...tls.rootCertificates, ...opts.upstreamCa],
    pinned,
    log,
    stats,
    timeouts: { connectMs: limits.connectTimeoutMs, handshakeMs: limits.handshakeTimeoutMs, lookupMs: limits.lookupTimeoutMs },
    maxClientHelloBytes: limits.maxClientHelloBytes,
    contexts: new SecureContextCache(),
  };
  const newConnId = monotonicFactory();
  const isPaused = () => {
    try {
      return opts.paused?.() ?? false;
    } catch {
      return false;
    }
  };
  const sockets = new Set<net.Socket>();
  /** Set once listening: true when a target is this proxy itself (a request that would loop forever). */
  let isSelf: (t: { host: string; port: number }) => boolean = () => false;

  /** Counts a new client connection; false (and counted as refused) past maxConnections. */
  function admit(client: net.Socket): boolean {
    stats.connectionsTotal++;
    stats.connectionsActive++;
    client.on("error", () => {});
    client.once("close", () => {
      stats.connectionsActive--;
      sockets.delete(client);
    });
    if (stats.connectionsActive > limits.maxConnections) {
      stats.refusedOverLimit++;
      return false;
    }
    sockets.add(client);
    return true;
  }

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    if (!admit(client)) {
      replyAndClose(client, errorResponse(503, `too many connections (limit ${limits.maxConnections})`));
      return;
    }
    try {
      handleClient(client);
    } catch (err) {
      log("error", `proxy connection failed: ${(err as Error).message}`);
      client.destroy();
    }
  });

  function handleClient(client: net.Socket) {
    const t0 = performance.now();
    const startedAt = nowMs();
    client.setNoDelay(true);
    client.setTimeout(limits.idleTimeoutMs, () => client.destroy());
    const clientEp: Endpoint = { ip: unmapV4(client.remoteAddress ?? ""), port: client.remotePort ?? 0 };
    const proxyEp: Endpoint = { ip: unmapV4(client.localAddress ?? ""), port: client.localPort ?? 0 };
    // Started now, while the client's socket surely exists; nothing ever waits on it but the tap's open().
    const lookup = safeLookup(opts.lookupProcess, clientEp, proxyEp);
    const reader = new ProxyRequestReader(limits.maxHeadBytes, (host, port) => isSelf(resolveTarget(opts.resolve, host, port)));
    const headTimer = setTimeout(() => {
      stats.badRequests++;
      replyAndClose(client, errorResponse(400, "no complete request head in time"));
    }, limits.headTimeoutMs);
    const bad = (status: number, reason: string) => {
      stats.badRequests++;
      log("debug", `bad proxy request from ${clientEp.ip}:${clientEp.port}: ${reason}`);
      replyAndClose(client, errorResponse(status, reason));
    };
    const onData = (chunk: Buffer) => {
      try {
        onHead(chunk);
      } catch (err) {
        log("error", `proxy request from ${clientEp.ip}:${clientEp.port}: ${(err as Error).message}`);
        client.destroy();
      }
    };
    const onHead = (chunk: Buffer) => {
      const d = reader.push(chunk);
      if (d.kind === "need-more") return;
      clearTimeout(headTimer);
      client.off("data", onData);
      if (d.kind === "tls") return refuseTls(client, clientEp);
      client.pause();
      if (d.kind === "bad") return bad(d.status, d.reason);
      if (d.kind === "plain") {
        const paused = isPaused();
        if (paused) stats.paused++;
        const session = new PlainSession(
          { tap: paused ? DISCARD_TAP : tap, stats, log, resolve: opts.resolve, connectMs: limits.connectTimeoutMs, lookupMs: limits.lookupTimeoutMs, newConnId, maxHeadBytes: limits.maxHeadBytes, isSelf },
          client,
          clientEp,
          lookup,
          t0,
        );
        session.start(d.bytes);
        return;
      }
      connectTunnel(client, d.host, d.port, d.rest, { t0, startedAt, clientEp, lookup }).catch((err: Error) => {
        log("error", `tunnel to ${d.host}:${d.port} failed: ${err.message}`);
        client.destroy();
      });
    };
    client.on("data", onData);
    client.once("close", () => clearTimeout(headTimer));
  }

  /**
   * A ClientHello where a proxy request belongs: the client was given an https:// proxy URL. Without
   * this it would wait for the head timeout (30 s); it gets a TLS alert at once and the user a log line.
   */
  const tlsWarning = new WarnEvery(60_000);
  function refuseTls(client: net.Socket, clientEp: Endpoint) {
    stats.tlsToProxyPort++;
    if (tlsWarning.due(performance.now())) {
      log("warn", `a client (${clientEp.ip}:${clientEp.port}) started TLS on the proxy port: its proxy URL must start with http://, not https:// (the proxy speaks plain HTTP; HTTPS goes through CONNECT). ${stats.tlsToProxyPort} such connection(s) so far`);
    }
    replyAndClose(client, TLS_ALERT_HANDSHAKE_FAILURE);
  }

  async function connectTunnel(
    client: net.Socket,
    host: string,
    port: number,
    initial: Uint8Array,
    c: { t0: number; startedAt: number; clientEp: Endpoint; lookup: Promise<ProcessInfo | undefined> },
    transparent?: { target: { host: string; port: number }; captureMethod: ConnMeta["captureMethod"] },
  ) {
    const target = transparent?.target ?? resolveTarget(opts.resolve, host, port);
    const meta = tunnelMeta({ connId: newConnId(), startedAt: c.startedAt, client: c.clientEp, host, port, target, captureMethod: transparent?.captureMethod });
    // Decided once per connection: one that started paused stays blind, one that started capturing stays tapped.
    const paused = isPaused();
    const connTap = new ConnTap(paused ? DISCARD_TAP : tap, meta);
    let upstream: net.Socket;
    // The TCP leg is connected before answering 200, so a refused or unknown host gets a proxy error.
    try {
      upstream = await connectTcp(target, limits.connectTimeoutMs);
    } catch (err) {
      const e = err as Error;
      stats.upstreamErrors++;
      const failure = connectFailure(e, transparent !== undefined);
      Object.assign(meta, failure.meta);
      log("debug", `CONNECT ${host}:${port}: ${e.message}`);
      if (failure.reply.kind === "drop") client.destroy();
      else replyAndClose(client, errorResponse(failure.reply.status, failure.reply.reason));
      connTap.openAfter(c.lookup, limits.lookupTimeoutMs);
      connTap.close(e.message);
      return;
    }
    if (client.destroyed) {
      upstream.destroy();
      connTap.openAfter(c.lookup, limits.lookupTimeoutMs);
      return connTap.close("client closed before the tunnel was up");
    }
    sockets.add(upstream);
    upstream.once("close", () => sockets.delete(upstream));
    meta.server = { ip: unmapV4(upstream.remoteAddress ?? target.host), port: upstream.remotePort ?? target.port };
    meta.upstreamConnectMs = performance.now() - c.t0;
    if (!transparent) client.write(CONNECT_ESTABLISHED);
    if (paused) {
      // No ClientHello peek, no decision, no TLS: the bytes go through as they would without us.
      stats.paused++;
      stats.passthrough++;
      if (initial.length) upstream.write(initial);
      await relay(client, upstream, { onData: (dir, chunk) => countBytes(stats, dir, chunk.length) });
      return;
    }
    try {
      await runTunnel(policy, { client, initial, host, port, upstream, target, tap: connTap, lookup: c.lookup, t0: c.t0 });
    } catch (err) {
      // A bug here must cost one connection, never the process.
      log("error", `${meta.connId} ${host}:${port}: ${(err as Error).message}`);
      client.destroy();
      upstream.destroy();
      connTap.openAfter(c.lookup, limits.lookupTimeoutMs);
      connTap.close((err as Error).message);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => log("error", `proxy listener: ${err.message}`));
  const addr = server.address() as net.AddressInfo;
  isSelf = (t) => t.port === addr.port && isOwnAddress(t.host, addr.address);

  /** Transparent entry: the connection's real destination is known (WinDivert); no CONNECT, no reply. */
  function handleTransparent(client: net.Socket, dest: TransparentDestination) {
    if (!admit(client)) {
      client.destroy();
      return;
    }
    const t0 = performance.now();
    const startedAt = nowMs();
    client.setNoDelay(true);
    client.setTimeout(limits.idleTimeoutMs, () => client.destroy());
    client.pause();
    const clientEp: Endpoint = dest.client ?? { ip: unmapV4(client.remoteAddress ?? ""), port: client.remotePort ?? 0 };
    const proxyEp: Endpoint = { ip: unmapV4(client.localAddress ?? ""), port: client.localPort ?? 0 };
    const lookup = dest.lookup ? guard(dest.lookup) : safeLookup(opts.lookupProcess, clientEp, proxyEp);
    const host = (dest.host ?? dest.ip).toLowerCase();
    connectTunnel(client, host, dest.port, new Uint8Array(0), { t0, startedAt, clientEp, lookup }, {
      target: { host: dest.ip, port: dest.port },
      captureMethod: dest.captureMethod ?? "windivert",
    }).catch((err: Error) => {
      log("error", `transparent connection to ${host}:${dest.port} failed: ${err.message}`);
      client.destroy();
    });
  }

  return {
    address: { host: addr.address, port: addr.port },
    stats: () => ({ ...stats, pinnedHosts: pinned.size }),
    handleTransparent,
    pinnedHosts: () => pinned.list(),
    unpin: (hosts) => pinned.remove(hosts?.map((h) => h.toLowerCase())),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A fatal handshake_failure alert record, as a TLS 1.0+ server sends it before any handshake. */
const TLS_ALERT_HANDSHAKE_FAILURE = Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28]);

function guard(lookup: () => Promise<ProcessInfo | undefined>): Promise<ProcessInfo | undefined> {
  try {
    return lookup().catch(() => undefined);
  } catch {
    return Promise.resolve(undefined);
  }
}

/** The lookup may fail or hang: it resolves undefined instead of throwing. */
function safeLookup(lookup: ProcessLookup, client: Endpoint, proxy: Endpoint): Promise<ProcessInfo | undefined> {
  try {
    return lookup(client, proxy).catch(() => undefined);
  } catch {
    return Promise.resolve(undefined);
  }
}
