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
import { KnownUpstreams } from "../../mitm/known-upstreams.ts";
import { connectTcp, resolveTarget, UpstreamTrust } from "../../mitm/upstream.ts";
import type { Logger } from "../../util/log.ts";
import type { ProcessLookup } from "../process/index.ts";
import { PlainSession } from "./plain.ts";
import { ConnectionGate } from "./admission.ts";
import { HeadPhase, type HeadAction } from "./head-phase.ts";
import { DEFAULT_MAX_HEAD_BYTES } from "./request-head.ts";
import { CONNECT_ESTABLISHED, errorResponse, replyAndClose } from "./responses.ts";
import { TunnelPhase } from "./tunnel-phase.ts";
import { isOwnAddress, transparentPlan, tunnelMeta, unmapV4, WarnEvery } from "./tunnel-plan.ts";

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
    upstreamTrust: new UpstreamTrust([...tls.rootCertificates, ...opts.upstreamCa]),
    known: new KnownUpstreams(),
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

  const gate = new ConnectionGate(stats, limits.maxConnections);

  /** Counts a new client connection in (and out on close); tracked for close() only when admitted. */
  function admit(client: net.Socket, entry: "explicit" | "transparent") {
    const a = gate.open(entry);
    client.on("error", () => {});
    client.once("close", () => {
      gate.closed();
      sockets.delete(client);
    });
    if (a.kind === "admit") sockets.add(client);
    return a;
  }

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const a = admit(client, "explicit");
    if (a.kind === "refuse") return replyAndClose(client, errorResponse(a.status, a.reason));
    if (a.kind === "drop") return client.destroy();
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
    const head = new HeadPhase({
      client: clientEp,
      maxHeadBytes: limits.maxHeadBytes,
      loops: (host, port) => isSelf(resolveTarget(opts.resolve, host, port)),
      paused: isPaused,
      tlsWarning,
      stats,
    });
    const headTimer = setTimeout(() => carryOut(head.timeout()), limits.headTimeoutMs);
    const onData = (chunk: Buffer) => {
      try {
        const a = head.data(chunk, performance.now());
        if (a.kind === "wait" || a.kind === "ignore") return;
        clearTimeout(headTimer);
        client.off("data", onData);
        // Paused until the session or tunnel reads on; a TLS refusal just answers and closes.
        if (a.kind !== "refuse-tls") client.pause();
        carryOut(a);
      } catch (err) {
        log("error", `proxy request from ${clientEp.ip}:${clientEp.port}: ${(err as Error).message}`);
        client.destroy();
      }
    };
    const carryOut = (a: HeadAction) => {
      switch (a.kind) {
        case "wait":
        case "ignore":
          return;
        case "refuse-tls":
          if (a.warn) log("warn", a.warn);
          return replyAndClose(client, TLS_ALERT_HANDSHAKE_FAILURE);
        case "reply-error":
          if (a.debug) log("debug", a.debug);
          return replyAndClose(client, errorResponse(a.status, a.reason));
        case "plain":
          return new PlainSession(
            { tap: a.paused ? DISCARD_TAP : tap, stats, log, resolve: opts.resolve, connectMs: limits.connectTimeoutMs, lookupMs: limits.lookupTimeoutMs, newConnId, maxHeadBytes: limits.maxHeadBytes, isSelf },
            client,
            clientEp,
            lookup,
            t0,
          ).start(a.bytes);
        case "connect":
          connectTunnel(client, a.host, a.port, a.rest, { t0, startedAt, clientEp, lookup }).catch((err: Error) => {
            log("error", `tunnel to ${a.host}:${a.port} failed: ${err.message}`);
            client.destroy();
          });
      }
    };
    client.on("data", onData);
    client.once("close", () => clearTimeout(headTimer));
  }

  /** Shared by every connection: a client given an https:// proxy URL retries in a loop. */
  const tlsWarning = new WarnEvery(60_000);

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
    const phase = new TunnelPhase(isPaused(), transparent !== undefined, stats);
    const connTap = new ConnTap(phase.paused ? DISCARD_TAP : tap, meta);
    const closeTap = (reason: string) => {
      connTap.openAfter(c.lookup, limits.lookupTimeoutMs);
      connTap.close(reason);
    };
    let upstream: net.Socket;
    // The TCP leg is connected before answering 200, so a refused or unknown host gets a proxy error.
    try {
      upstream = await connectTcp(target, limits.connectTimeoutMs);
    } catch (err) {
      const e = err as Error;
      const a = phase.connectFailed(e);
      if (a.kind !== "fail") return;
      Object.assign(meta, a.meta);
      log("debug", `CONNECT ${host}:${port}: ${e.message}`);
      if (a.reply.kind === "drop") client.destroy();
      else replyAndClose(client, errorResponse(a.reply.status, a.reply.reason));
      return closeTap(a.tapClose);
    }
    const a = phase.connected(client.destroyed);
    if (a.kind === "abandon" || a.kind === "ignore") {
      upstream.destroy();
      return a.kind === "abandon" ? closeTap(a.tapClose) : undefined;
    }
    sockets.add(upstream);
    upstream.once("close", () => sockets.delete(upstream));
    meta.server = { ip: unmapV4(upstream.remoteAddress ?? target.host), port: upstream.remotePort ?? target.port };
    meta.upstreamConnectMs = performance.now() - c.t0;
    if (a.kind !== "blind-relay" && a.kind !== "tunnel") return;
    if (a.established) client.write(CONNECT_ESTABLISHED);
    if (a.kind === "blind-relay") {
      // No ClientHello peek, no decision, no TLS: the bytes go through as they would without us.
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
      const t = phase.tunnelThrew(err as Error);
      if (t.kind === "teardown") closeTap(t.tapClose);
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
    if (admit(client, "transparent").kind !== "admit") return void client.destroy();
    const t0 = performance.now();
    const startedAt = nowMs();
    client.setNoDelay(true);
    client.setTimeout(limits.idleTimeoutMs, () => client.destroy());
    client.pause();
    const plan = transparentPlan(dest, { ip: unmapV4(client.remoteAddress ?? ""), port: client.remotePort ?? 0 });
    const proxyEp: Endpoint = { ip: unmapV4(client.localAddress ?? ""), port: client.localPort ?? 0 };
    const lookup = dest.lookup ? guard(dest.lookup) : safeLookup(opts.lookupProcess, plan.client, proxyEp);
    connectTunnel(client, plan.host, plan.port, new Uint8Array(0), { t0, startedAt, clientEp: plan.client, lookup }, plan).catch((err: Error) => {
      log("error", `transparent connection to ${plan.host}:${plan.port} failed: ${err.message}`);
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
