// One tunnelled connection after the upstream TCP leg is up: peek the ClientHello, decide intercept or
// pass, and run it. Interception verifies the real host first, then completes the client's handshake
// with our leaf, then relays and taps. Every failure falls back to passing the bytes through (fail open).
import type net from "node:net";
import tls from "node:tls";
import type { PassthroughCode, ProcessInfo } from "../tap/types.ts";
import type { Logger } from "../util/log.ts";
import type { ClientHello, ClientHelloResult } from "../wire/tls-client-hello.ts";
import type { ConnTap } from "./conn-tap.ts";
import type { LeafIssuer } from "./issuer.ts";
import { peekClientHello } from "./peek.ts";
import { clientIdentity, type ClientIdentity, type PinnedClients } from "./pinned.ts";
import { relay } from "./relay.ts";
import { FirstExchangeLeg } from "./first-exchange.ts";
import { answerClient, type ClientAnswer } from "./native-answer.ts";
import type { ProxyStats } from "./stats.ts";
import { rejectsCertificate, type AlertWatcher } from "./tls-alert.ts";
import { KnownUpstreams, UNKNOWN } from "./known-upstreams.ts";
import { connectTcp, INTERCEPT_ALPN, isIpLiteral, upgradeTls, type Target, type UpstreamLeg, type UpstreamTrust } from "./upstream.ts";

export interface MitmTimeouts {
  /** Upstream TCP connect. */
  connectMs: number;
  /** Waiting for the client's first bytes after CONNECT, and each TLS handshake. */
  handshakeMs: number;
  /** How long the process lookup may delay the tap's open() (never the relay). */
  lookupMs: number;
}

export interface MitmPolicy {
  tlsMitm: boolean;
  allTraffic: boolean;
  issuer?: LeafIssuer;
  isAiHost: (host: string, port?: number) => boolean;
  /** Roots for upstream verification (the public bundle plus --upstream-ca) and upstream sessions. */
  upstreamTrust: UpstreamTrust;
  /** Upstreams verified recently, whose new connections handshake with the client in parallel. */
  known: KnownUpstreams;
  pinned: PinnedClients;
  log: Logger;
  stats: ProxyStats;
  timeouts: MitmTimeouts;
  maxClientHelloBytes: number;
  contexts: SecureContextCache;
}

export interface TunnelConn {
  /** Raw client socket; the CONNECT 200 has been sent. */
  client: net.Socket;
  /** Bytes the client sent right behind its CONNECT head. */
  initial: Uint8Array;
  /** The CONNECT authority. */
  host: string;
  port: number;
  /** Connected TCP socket to `target`. */
  upstream: net.Socket;
  target: Target;
  tap: ConnTap;
  lookup: Promise<ProcessInfo | undefined>;
  /** performance.now() when the client connected, for upstreamConnectMs. */
  t0: number;
}

/** Not intercepted: a code to count and test on, and the reason for people. */
export interface Pass {
  code: PassthroughCode;
  reason: string;
}

export type Decision = { intercept: true; name: string; alpn: string[] } | ({ intercept: false } & Pass);

/** Pure decision: intercept only AI hosts (or all with --all-traffic), never without a CA. Pinned clients: see runTunnel. */
export function decide(policy: Pick<MitmPolicy, "tlsMitm" | "allTraffic" | "issuer" | "isAiHost">, hello: ClientHelloResult, host: string, port: number): Decision {
  if (hello.status === "not-tls") return pass("not-tls", "not TLS");
  if (hello.status === "invalid") return pass("bad-client-hello", `unparseable ClientHello: ${hello.reason}`);
  if (hello.status === "too-large") return pass("bad-client-hello", `ClientHello larger than ${hello.limit} bytes`);
  if (hello.status === "need-more") return pass("bad-client-hello", "incomplete ClientHello");
  const name = (hello.hello.sni ?? host).toLowerCase();
  if (!policy.tlsMitm) return pass("mitm-off", "TLS interception off");
  if (!policy.allTraffic && !safeIsAi(policy.isAiHost, name, port)) return pass("not-ai-host", "not an AI host");
  if (!policy.issuer) return pass("no-ca", "no CA loaded");
  const alpn = offerFor(hello.hello);
  if (!alpn) return pass("alpn-unsupported", `client offers only ALPN ${hello.hello.alpn.join(",")}, not decoded yet`);
  return { intercept: true, name, alpn };
}

function safeIsAi(isAiHost: MitmPolicy["isAiHost"], name: string, port: number): boolean {
  try {
    return isAiHost(name, port);
  } catch {
    return false;
  }
}

/** ALPN mirrored from the client, limited to what we decode; [] when the client offered none. */
function offerFor(hello: ClientHello): string[] | undefined {
  if (hello.alpn.length === 0) return [];
  const offer = hello.alpn.filter((p) => INTERCEPT_ALPN.includes(p));
  return offer.length ? offer : undefined;
}

export async function runTunnel(policy: MitmPolicy, conn: TunnelConn): Promise<void> {
  const { tap } = conn;
  const peek = await peekClientHello(conn.client, conn.upstream, conn.initial, {
    timeoutMs: policy.timeouts.handshakeMs,
    maxBytes: policy.maxClientHelloBytes,
  });
  if (peek.kind === "closed") {
    conn.client.destroy();
    conn.upstream.destroy();
    setPassthrough(policy, conn, { code: "closed-early", reason: `${peek.who} closed before any data` });
    return tap.close();
  }
  if (peek.kind === "server-first") {
    conn.client.write(peek.serverBytes);
    return passthrough(policy, conn, conn.upstream, peek.bytes, { code: "not-tls", reason: "server spoke first (not TLS)" });
  }
  if (peek.kind === "timeout") return passthrough(policy, conn, conn.upstream, peek.bytes, { code: "bad-client-hello", reason: "no ClientHello in time" });
  const hello = peek.result;
  if (hello.status === "ok") tap.meta.sni = hello.hello.sni;
  const decision = decide(policy, hello, conn.host, conn.port);
  if (!decision.intercept) return passthrough(policy, conn, conn.upstream, peek.bytes, decision);
  // Only when some client is pinned for this host does the decision wait for who this client is.
  if (policy.pinned.hasPinsFor(decision.name)) {
    const who = await identify(policy, conn);
    const pin = policy.pinned.pinned(decision.name, who);
    if (pin) {
      const until = `passed through until ${new Date(pin.until).toISOString()} or \`oisp unpin ${decision.name}\``;
      if (pin.scope === "process") {
        const reason = `${who.processLabel} hung up on our certificate for ${decision.name} (${pin.reason}); this process is ${until}`;
        return passthrough(policy, conn, conn.upstream, peek.bytes, { code: "client-closed-after-handshake", reason });
      }
      const reason = `${who.label} rejected our certificate for ${decision.name} (${pin.reason}); ${until}`;
      return passthrough(policy, conn, conn.upstream, peek.bytes, { code: "pinned", reason });
    }
  }
  return intercept(policy, conn, peek.bytes, decision.name, decision.alpn);
}

/** Who the client is, for pinning: its process (waited for at most lookupMs), else its address. */
async function identify(policy: MitmPolicy, conn: TunnelConn): Promise<ClientIdentity> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const proc = await Promise.race([conn.lookup.catch(() => undefined), new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), policy.timeouts.lookupMs)))]);
  clearTimeout(timer);
  return clientIdentity(proc, conn.tap.meta.client.ip);
}

function pass(code: PassthroughCode, reason: string): Decision {
  return { intercept: false, code, reason };
}

function setPassthrough(policy: MitmPolicy, conn: TunnelConn, why: Pass) {
  conn.tap.meta.mode = "passthrough";
  conn.tap.meta.passthroughCode = why.code;
  conn.tap.meta.passthroughReason = why.reason;
  conn.tap.openAfter(conn.lookup, policy.timeouts.lookupMs);
}

/** Blind relay: the peeked bytes go first, then both ways. Metadata only is tapped. */
async function passthrough(policy: MitmPolicy, conn: TunnelConn, upstream: net.Socket, peeked: Uint8Array, why: Pass) {
  policy.stats.passthrough++;
  setPassthrough(policy, conn, why);
  policy.log("debug", `${conn.tap.meta.connId} ${conn.host}:${conn.port} passthrough: ${why.reason}`);
  if (peeked.length) upstream.write(peeked);
  const res = await relay(conn.client, upstream, { onData: (dir, chunk) => countBytes(policy.stats, dir, chunk.length) });
  conn.tap.close(res.error);
}

/** A fresh TCP leg for falling back to passthrough after the first one was spent on a failed TLS attempt. */
async function fallback(policy: MitmPolicy, conn: TunnelConn, peeked: Uint8Array, why: Pass) {
  let tcp: net.Socket;
  try {
    tcp = await connectTcp(conn.target, policy.timeouts.connectMs);
  } catch (err) {
    conn.client.destroy();
    conn.tap.meta.upstreamError ??= (err as Error).message;
    setPassthrough(policy, conn, why);
    return conn.tap.close((err as Error).message);
  }
  if (conn.client.destroyed) {
    tcp.destroy();
    setPassthrough(policy, conn, why);
    return conn.tap.close("client closed");
  }
  return passthrough(policy, conn, tcp, peeked, why);
}

async function intercept(policy: MitmPolicy, conn: TunnelConn, peeked: Uint8Array, name: string, alpn: string[]) {
  const { tap } = conn;
  const expected = policy.known.chosenFor(KnownUpstreams.key(name, conn.target), alpn);
  const legs = expected === UNKNOWN ? await serialHandshakes(policy, conn, peeked, name, alpn) : await parallelHandshakes(policy, conn, peeked, name, alpn, expected);
  if (!legs) return; // passed through, or the failure is recorded and the tap closed
  const { hs, chosen } = legs;
  let upstream = legs.up.leg;
  let redialedAt = 0;
  if (upstream.peerGone || upstream.destroyed) {
    // The upstream dropped its leg while it waited, unused, for the client's handshake (servers close
    // connections that bring no request for a while: Bun.serve after ~10 s, and 1,000 handshakes at once
    // can queue that long). Nothing went through it, so a fresh leg with the same ALPN is the same thing.
    upstream.destroy();
    redialedAt = performance.now();
    const fresh = await redial(policy, conn, name, alpn, chosen, "upstream closed before the client's handshake was done");
    if (typeof fresh === "string") return closeAnswered(policy, conn, hs, fresh, "closed-early", "upstream closed before the client's handshake was done");
    policy.stats.upstreamRedials++;
    upstream = fresh.leg;
  }
  policy.stats.intercepted++;
  tap.meta.mode = "mitm";
  tap.meta.alpn = chosen;
  tap.meta.upstreamConnectMs = performance.now() - conn.t0;
  // Answers are held until the tap is open (the process lookup settled, at most lookupMs; usually done
  // during the handshake): a client that exits right after its answer is still there to be found, and no
  // answer reaches it before it is tapped (and, in `oisp up`, journaled against a crash).
  const opened = tap.openAfter(conn.lookup, policy.timeouts.lookupMs);
  policy.log("debug", `${tap.meta.connId} ${name}:${conn.port} intercepted${chosen ? ` (${chosen})` : ""}${legs.parallel ? ", handshakes in parallel" : ""}`);
  // Until its first response byte the upstream leg may be swapped for a fresh one (first-exchange.ts has the rule).
  const upLeg = new FirstExchangeLeg(upstream, {
    alpn: chosen,
    dialedAt: upstream === legs.up.leg ? legs.up.dialedAt : redialedAt,
    redial: async (why) => {
      const fresh = await redial(policy, conn, name, alpn, chosen, why);
      return typeof fresh === "string" ? fresh : fresh.leg;
    },
    onRetry: (kind, why) => {
      if (kind === "stale") policy.stats.upstreamStaleLegs++;
      else policy.stats.upstreamRetries++;
      policy.log("debug", `${tap.meta.connId} ${name}:${conn.port}: ${why}; sent on a fresh upstream leg`);
    },
  });
  const res = await relay(hs.leg, upLeg, {
    holdServer: opened,
    onData: (dir, chunk) => {
      countBytes(policy.stats, dir, chunk.length);
      tap.data(dir, chunk);
    },
    afterTap: (fn) => tap.afterJournal(fn),
  });
  tap.close(res.error);
}

/** Both legs of an intercepted connection, handshakes done: the verified upstream and the client on our leaf. */
interface Legs {
  up: DialedLeg;
  /** Our handshake with the client, done: its leg is what the relay drives. */
  hs: ClientAnswer;
  /** The ALPN both legs agreed on. */
  chosen: string | undefined;
  parallel: boolean;
}

/**
 * The first connection to an upstream (or one not verified within KnownUpstreams' TTL): verify the real host
 * first, then answer the client with the ALPN it chose. Until the client is answered, every failure passes the
 * connection through (fail open): the client then talks to the real host itself.
 */
async function serialHandshakes(policy: MitmPolicy, conn: TunnelConn, peeked: Uint8Array, name: string, alpn: string[]): Promise<Legs | undefined> {
  const [upR, ctxR] = await Promise.allSettled([verifyUpstream(policy, conn, conn.upstream, name, alpn, conn.t0), policy.contexts.get(name, policy.issuer!)]);
  if (upR.status === "rejected") return upstreamFailed(policy, conn, peeked, name, upR.reason as Error);
  const up = upR.value;
  if (ctxR.status === "rejected") {
    up.leg.destroy();
    return certFailed(policy, conn, peeked, name, ctxR.reason as Error);
  }
  if (conn.client.destroyed) {
    up.leg.destroy();
    return clientGone(policy, conn);
  }
  const chosen = up.alpn;
  const hs = startClientHandshake(policy, conn, peeked, ctxR.value, chosen);
  if (hs instanceof Error) {
    up.leg.destroy();
    return cannotAnswer(policy, conn, peeked, name, hs);
  }
  const result = await hs.done;
  if (result !== "ok") return clientHandshakeFailed(policy, conn, name, hs, result, up);
  return { up, hs, chosen, parallel: false };
}

/**
 * An upstream verified within KnownUpstreams' TTL: both handshakes at once, the client answered with the ALPN
 * the upstream chose for the same offer last time. Nothing is relayed either way before the upstream is
 * verified again.
 *
 * What fail-open cannot cover here: the client's ClientHello is spent on our handshake, so a connection whose
 * upstream now fails (a certificate no longer trusted, a reset, a timeout) cannot be passed through. It is
 * closed before a byte reaches or leaves that upstream. The client sees its connection reset during or right
 * after its TLS handshake, before any answer (measured: curl "(56) Recv failure: Connection reset by peer", or
 * "(35)" during the handshake; Node "ECONNRESET", which the openai and Anthropic SDKs retry by themselves). The
 * upstream is forgotten at once, so that retry and every connection after it verify first, and are passed
 * through on failure: the client then meets the upstream's own certificate error (curl "(60) SSL certificate
 * problem: ..."; or succeeds if it trusts a root we do not), as it would without us. The log names the host and
 * the reason; the connection is recorded with code upstream-tls-failed.
 */
async function parallelHandshakes(policy: MitmPolicy, conn: TunnelConn, peeked: Uint8Array, name: string, alpn: string[], expected: string | undefined): Promise<Legs | undefined> {
  let upError: Error | undefined;
  let abortClient = () => {};
  // Settles to undefined on failure, after the client's handshake has been aborted.
  const upP = verifyUpstream(policy, conn, conn.upstream, name, alpn, conn.t0).catch((err: Error) => {
    upError = err;
    abortClient();
    return undefined;
  });
  let ctx: tls.SecureContext;
  try {
    ctx = await policy.contexts.get(name, policy.issuer!);
  } catch (err) {
    conn.upstream.destroy();
    await upP;
    return certFailed(policy, conn, peeked, name, err as Error);
  }
  if (upError) return upstreamFailed(policy, conn, peeked, name, upError); // the client not answered yet: fail open
  if (conn.client.destroyed) {
    (await upP)?.leg.destroy();
    return clientGone(policy, conn);
  }
  const hs = startClientHandshake(policy, conn, peeked, ctx, expected);
  if (hs instanceof Error) {
    conn.upstream.destroy();
    (await upP)?.leg.destroy();
    return cannotAnswer(policy, conn, peeked, name, hs);
  }
  abortClient = () => hs.destroy();
  policy.stats.parallelHandshakes++;
  // A client that fails its handshake waits for the upstream's to end (one round trip), so that failure is
  // never taken for the upstream's.
  const [result, up] = await Promise.all([hs.done, upP]);
  if (!up) return closeAnswered(policy, conn, hs, upError!.message, "upstream-tls-failed", "upstream TLS failed after the client was answered in parallel; connection closed");
  if (result !== "ok") return clientHandshakeFailed(policy, conn, name, hs, result, up);
  const chosen = up.alpn;
  if (chosen === expected) return { up, hs, chosen, parallel: true };
  // The upstream chose another protocol than last time (verifyUpstream has learnt it for the next connection),
  // but this client agreed on `expected` with us: a fresh leg offering only that, or the connection is closed.
  up.leg.destroy();
  const fresh = await redial(policy, conn, name, expected ? [expected] : [], expected, `upstream chose ALPN ${chosen ?? "none"}, not ${expected ?? "none"} as before`);
  if (typeof fresh === "string") return closeAnswered(policy, conn, hs, fresh, "upstream-tls-failed", "upstream changed its ALPN after the client was answered in parallel; connection closed");
  policy.stats.upstreamRedials++;
  return { up: fresh, hs, chosen: expected, parallel: true };
}

/** A verified upstream leg and when its TCP connect began (servers count idle time from their accept). */
type DialedLeg = UpstreamLeg & { dialedAt: number };

/**
 * The upstream handshake over `tcp` (dialled at `dialedAt`); a verified leg is remembered (with its ALPN) and any
 * failure forgets the upstream.
 */
async function verifyUpstream(policy: MitmPolicy, conn: TunnelConn, tcp: net.Socket, name: string, alpn: string[], dialedAt: number): Promise<DialedLeg> {
  const key = KnownUpstreams.key(name, conn.target);
  let up: UpstreamLeg;
  try {
    up = await upgradeTls(tcp, { servername: isIpLiteral(name) ? undefined : name, verifyHost: name, alpn, trust: policy.upstreamTrust, target: conn.target, timeoutMs: policy.timeouts.handshakeMs });
  } catch (err) {
    policy.known.forget(key);
    throw err;
  }
  if (up.sessionReused) policy.stats.upstreamResumed++;
  policy.known.verified(key, alpn, up.alpn);
  return { ...up, dialedAt };
}

/** Starts our server handshake with the client (native-answer.ts), or the error that kept it from starting. */
function startClientHandshake(policy: MitmPolicy, conn: TunnelConn, peeked: Uint8Array, ctx: tls.SecureContext, chosen: string | undefined): ClientAnswer | Error {
  try {
    return answerClient(conn.client, peeked, ctx, chosen, policy.timeouts.handshakeMs);
  } catch (err) {
    return err as Error;
  }
}

/** Our TLS could not even start on the client's socket: nothing was sent to it yet, so it is passed through. */
async function cannotAnswer(policy: MitmPolicy, conn: TunnelConn, peeked: Uint8Array, name: string, err: Error): Promise<undefined> {
  policy.log("error", `${name}: cannot start TLS with the client: ${err.message}`);
  await fallback(policy, conn, peeked, { code: "handshake-failed", reason: `cannot start TLS with the client: ${err.message}` });
  return undefined;
}

/** Our handshake with the client failed: both legs down, and whether it counts towards pinning this client. */
async function clientHandshakeFailed(policy: MitmPolicy, conn: TunnelConn, name: string, hs: ClientAnswer, result: string, up: UpstreamLeg): Promise<undefined> {
  up.leg.destroy();
  hs.destroy();
  const why = await judgeFailedHandshake(policy, conn, name, hs.watcher, result, hs.endedAfterAnswer());
  setPassthrough(policy, conn, why);
  conn.tap.close(why.reason);
  return undefined;
}

/**
 * The upstream failed before the client was answered: passed through, so the client verifies the real host
 * itself and sees the same failure it would see without us, or succeeds if it trusts a root we do not (a
 * corporate CA).
 */
async function upstreamFailed(policy: MitmPolicy, conn: TunnelConn, peeked: Uint8Array, name: string, err: Error): Promise<undefined> {
  policy.stats.upstreamErrors++;
  policy.log("warn", `${name}:${conn.port}: ${err.message}; passing this connection through`);
  conn.tap.meta.upstreamError = err.message;
  await fallback(policy, conn, peeked, { code: "upstream-tls-failed", reason: "upstream TLS failed" });
  return undefined;
}

/** No leaf for this host: nothing was sent to the client yet, so it is passed through. */
async function certFailed(policy: MitmPolicy, conn: TunnelConn, peeked: Uint8Array, name: string, err: Error): Promise<undefined> {
  policy.log("error", `cannot issue a certificate for ${name}: ${err.message}`);
  await fallback(policy, conn, peeked, { code: "cert-failed", reason: "certificate issuance failed" });
  return undefined;
}

function clientGone(policy: MitmPolicy, conn: TunnelConn): undefined {
  setPassthrough(policy, conn, { code: "closed-early", reason: "client closed before interception" });
  conn.tap.close("client closed");
  return undefined;
}

/** No usable upstream leg once the client has been answered: its ClientHello is spent, so its connection is closed, not passed through. */
function closeAnswered(policy: MitmPolicy, conn: TunnelConn, hs: ClientAnswer, msg: string, code: PassthroughCode, reason: string): undefined {
  hs.destroy();
  policy.stats.upstreamErrors++;
  policy.log("warn", `${conn.host}:${conn.port}: ${msg}; closing this client's connection (already answered, it cannot be passed through)`);
  conn.tap.meta.upstreamError = msg;
  setPassthrough(policy, conn, { code, reason });
  conn.tap.close(msg);
  return undefined;
}

/**
 * The client got our side of the handshake (ServerHello to Finished) and hung up without an alert or a byte
 * after its ClientHello: Node (measured: v20, the openai SDK over undici) checks the certificate as the
 * handshake completes and destroys the socket before its Finished goes out. Weaker evidence than a
 * certificate alert, and any process can produce it, so it pins that process only (pid + start time), for
 * processTtlMs: the app keeps working (fail open), and no other process, not even another run of the same
 * executable by the same user, is blinded by it.
 */
async function judgeSilentHangUp(policy: MitmPolicy, conn: TunnelConn, name: string): Promise<Pass> {
  const what = "the client hung up after our ServerHello without an alert or a byte";
  const who = await identify(policy, conn);
  const { pin, count } = policy.pinned.noteRejection(name, who, what, "process");
  policy.stats.pinnedHosts = policy.pinned.size;
  if (who.process === undefined) return { code: "closed-after-handshake", reason: `${what} (${who.label}: not counted, only an identified client is ever passed through)` };
  if (!pin) return { code: "closed-after-handshake", reason: `${what} (${count} of ${policy.pinned.threshold} before ${who.processLabel} is passed through for ${name})` };
  const minutes = Math.round(policy.pinned.processTtlMs / 60_000);
  policy.log("warn", `${name}: ${who.processLabel} hung up ${count} times on our certificate without an alert (as a Node client that does not trust our CA does); that process is passed through for ${name} for ${minutes} min (\`oisp unpin ${name}\` to intercept it again)`);
  return { code: "closed-after-handshake", reason: `${what}; ${who.processLabel} is passed through for ${name} for ${minutes} min` };
}

/**
 * Why our handshake with the client failed, and whether it counts towards pinning this client. Only a
 * certificate alert sent after our ServerHello counts (OpenSSL, curl, Python, Go and Java clients send one).
 * A close right behind the ClientHello, a timeout, another alert, or an error of our own TLS stack
 * (DECODE_ERROR...) never counts: each is visible as a network.connect with its code, and the client keeps
 * being intercepted. A silent hang-up after our answer is weaker evidence, for one process: judgeSilentHangUp.
 */
async function judgeFailedHandshake(policy: MitmPolicy, conn: TunnelConn, name: string, watcher: AlertWatcher, handshake: string, endedAfterAnswer: boolean): Promise<Pass> {
  const alert = watcher.alert;
  if (!rejectsCertificate(alert)) {
    const silent = !alert && handshake === "closed" && watcher.bytesSeen === 0;
    // Its EOF came after our answer went out: it hung up on our certificate (a ClientHello-then-EOF never does).
    if (silent && endedAfterAnswer) return judgeSilentHangUp(policy, conn, name);
    const reason = alert
      ? `client sent ${alert.level} alert ${alert.name}${alert.afterServerHello ? "" : " before our ServerHello"}`
      : silent
        ? "client closed during our TLS handshake without an alert"
        : `our TLS handshake failed: ${handshake === "closed" ? `the connection closed after ${watcher.bytesSeen} bytes from the client` : handshake}`;
    return { code: silent ? "handshake-closed" : "handshake-failed", reason: `${reason} (not counted as rejecting our certificate)` };
  }
  policy.stats.clientRejected++;
  const what = `client rejected our certificate: ${alert!.level} alert ${alert!.name}`;
  const who = await identify(policy, conn);
  const { pin, count } = policy.pinned.noteRejection(name, who, what);
  policy.stats.pinnedHosts = policy.pinned.size;
  if (who.key === undefined) return { code: "client-rejected-cert", reason: `${what} (${who.label}: not counted, only an identified client is ever passed through)` };
  if (!pin) return { code: "client-rejected-cert", reason: `${what} (${count} of ${policy.pinned.threshold} before ${who.label} is passed through for ${name})` };
  const minutes = Math.round(policy.pinned.ttlMs / 60_000);
  policy.log("warn", `${name}: ${who.label} rejected our certificate ${count} times (${what}); its connections to ${name} are passed through for ${minutes} min (\`oisp unpin ${name}\` to intercept them again)`);
  return { code: "client-pinned", reason: `${what}; ${who.label} is passed through for ${name} for ${minutes} min` };
}

/**
 * A second upstream leg for a client that already agreed on `chosen`: same verification, same ALPN, or an error
 * message starting with `why` (why the first leg would not do).
 */
async function redial(policy: MitmPolicy, conn: TunnelConn, name: string, alpn: string[], chosen: string | undefined, why: string): Promise<DialedLeg | string> {
  let up: DialedLeg;
  try {
    const dialedAt = performance.now();
    up = await verifyUpstream(policy, conn, await connectTcp(conn.target, policy.timeouts.connectMs), name, alpn, dialedAt);
  } catch (err) {
    return `${why}; reconnecting failed: ${(err as Error).message}`;
  }
  if (up.alpn !== chosen) {
    up.leg.destroy();
    return `${why}; the new connection chose ALPN ${up.alpn ?? "none"}, not ${chosen ?? "none"}`;
  }
  return up;
}

export function countBytes(stats: ProxyStats, dir: "c2s" | "s2c", n: number): void {
  if (dir === "c2s") stats.bytesClientToServer += n;
  else stats.bytesServerToClient += n;
}

/** Bounded cache of server-side TLS contexts, one per host name (parsing PEM per connection is waste). */
export class SecureContextCache {
  private readonly map = new Map<string, Promise<tls.SecureContext>>();
  constructor(private readonly max = 1000) {}

  get(name: string, issuer: LeafIssuer): Promise<tls.SecureContext> {
    const hit = this.map.get(name);
    if (hit) return hit;
    const p = issuer.leafFor(name).then(({ cert, key }) => tls.createSecureContext({ cert, key }));
    p.catch(() => this.map.delete(name));
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(name, p);
    return p;
  }
}
