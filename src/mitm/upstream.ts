// The upstream leg: where to connect (after --resolve), the TCP connect with a clear failure kind, and
// the TLS client handshake that verifies the real host's certificate as any client would.
import net from "node:net";
import tls from "node:tls";
import { alpnWire, nativeHandle, NativeLeg, type NativeSocket } from "./native-leg.ts";

/**
 * ALPN protocols the relay can carry decrypted (the sensor decodes both). The client's offer, limited to
 * these and in its own order, goes upstream; the client then gets whatever the upstream chose.
 */
export const INTERCEPT_ALPN: readonly string[] = ["h2", "http/1.1"];

export interface Target {
  host: string;
  port: number;
}

/**
 * curl-style --resolve: "host:port" → "addr" or "addr:port" ("[v6]:port" or a bare v6 address).
 * Only the TCP connect uses it; SNI and Host stay the name the client asked for.
 */
export function resolveTarget(resolve: ReadonlyMap<string, string>, host: string, port: number): Target {
  const hit = resolve.get(`${host.toLowerCase()}:${port}`);
  if (!hit) return { host, port };
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(hit);
  if (bracket) return { host: bracket[1]!, port: bracket[2] ? Number(bracket[2]) : port };
  const parts = hit.split(":");
  if (parts.length === 2 && /^\d+$/.test(parts[1]!)) return { host: parts[0]!, port: Number(parts[1]) };
  return { host: hit, port };
}

export type ConnectFailure = "dns" | "refused" | "timeout" | "unreachable" | "tls" | "other";

export class UpstreamError extends Error {
  constructor(
    readonly kind: ConnectFailure,
    message: string,
  ) {
    super(message);
  }
}

function classify(err: NodeJS.ErrnoException): ConnectFailure {
  switch (err.code) {
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
    case "EAI_FAIL":
      return "dns";
    case "ECONNREFUSED":
      return "refused";
    case "ETIMEDOUT":
      return "timeout";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return "unreachable";
    default:
      return "other";
  }
}

export function connectTcp(target: Target, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    sock.on("error", ignore); // a late error must never crash the process; the owner adds its own handler
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new UpstreamError("timeout", `connect to ${target.host}:${target.port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new UpstreamError(classify(err), `connect to ${target.host}:${target.port}: ${err.code ?? err.message}`));
    };
    sock.once("error", onError);
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.off("error", onError);
      sock.setNoDelay(true);
      resolve(sock);
    });
  });
}

export interface UpstreamTlsOptions {
  /** SNI to send; absent for IP literals. */
  servername?: string;
  /** Hostname the certificate must match (SNI or the CONNECT host). */
  verifyHost: string;
  alpn: string[];
  /** Trusted roots and remembered sessions. */
  trust: UpstreamTrust;
  /** Where the TCP leg goes: part of the session's key (with --resolve one name can reach two servers). */
  target: Target;
  timeoutMs: number;
}

/**
 * What every upstream leg shares: one SecureContext holding the trusted roots (the system bundle plus
 * --upstream-ca), built once, where passing the PEM list to each tls.connect parsed ~120 roots per leg
 * (~1.7 ms of CPU), and the last TLS session of each upstream, so a new leg resumes it (an abbreviated
 * handshake: no certificate chain sent or checked) instead of a full handshake. Only a session from a leg
 * that passed verification is kept, and only the server holding that session's keys can resume it; a
 * server that cannot (another machine answering for the name) gets a full handshake, verified as ever.
 */
export class UpstreamTrust {
  private context?: tls.SecureContext;
  private readonly sessions = new Map<string, Buffer>();

  constructor(
    private readonly roots: readonly string[],
    private readonly maxSessions = 1000,
  ) {}

  secureContext(): tls.SecureContext {
    return (this.context ??= tls.createSecureContext({ ca: [...this.roots] }));
  }

  session(key: string): Buffer | undefined {
    return this.sessions.get(key);
  }

  remember(key: string, session: Buffer): void {
    this.sessions.delete(key);
    if (this.sessions.size >= this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(key, session);
  }

  forget(key: string): void {
    this.sessions.delete(key);
  }
}

/** Sessions are resumed only with the same name, the same verification and the same server address. */
function sessionKey(opts: UpstreamTlsOptions): string {
  return `${opts.servername ?? ""}\n${opts.verifyHost}\n${opts.target.host}:${opts.target.port}`;
}

/** A verified upstream leg on Bun's native TLS. */
export interface UpstreamLeg {
  leg: NativeLeg;
  /** The protocol the upstream chose, undefined for none. */
  alpn: string | undefined;
  /** The handshake resumed a remembered session. */
  sessionReused: boolean;
}

/** The calls of a connected socket's native handle and of the TLS socket it becomes (Bun.Socket). */
interface ClientHandle {
  upgradeTLS(opts: {
    isServer: false;
    tls: { secureContext: unknown; serverName?: string; ALPNProtocols?: Uint8Array; rejectUnauthorized: false };
    socket: Record<string, (s: TlsClientSocket, ...args: never[]) => void>;
  }): [raw: RawSide, tls: NativeSocket];
}
/** The raw (ciphertext) side of the upgraded socket: Bun still hands it every chunk read, before decrypting it. */
interface RawSide {
  reload(opts: { socket: { drain: () => void; close: () => void; error: () => void } }): void;
}
interface TlsClientSocket extends NativeSocket {
  setSession(session: Buffer): void;
  getSession(): Buffer | undefined;
  isSessionReused(): boolean;
  getPeerCertificate(): tls.PeerCertificate;
  alpnProtocol: string | false | null;
}

/**
 * TLS client handshake over an already connected TCP socket, in place on its native handle (no node:tls stream
 * on the relay's path); resolves once the upstream is verified: the chain against the trusted roots, then the
 * name, as tls.connect would.
 */
export function upgradeTls(tcp: net.Socket, opts: UpstreamTlsOptions): Promise<UpstreamLeg> {
  return new Promise((resolve, reject) => {
    const key = sessionKey(opts);
    const leg = new NativeLeg();
    const handlers = leg.handlers();
    let settled = false;
    // TLS 1.3 tickets arrive after the handshake (before the server's first bytes): the session is taken with
    // the first data, once verified (a TLS 1.2 session, there since the handshake, too).
    let sessionWanted = false;
    const fail = (msg: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.trust.forget(key);
      leg.destroy();
      tcp.destroy();
      reject(new UpstreamError("tls", msg));
    };
    const timer = setTimeout(() => fail(`TLS handshake with upstream timed out after ${opts.timeoutMs} ms`), opts.timeoutMs);
    const verify = (s: TlsClientSocket, ok: boolean, err: (Error & { code?: string }) | null) => {
      if (!ok) return fail(`upstream TLS: ${err?.code ?? ""} ${err?.message ?? "handshake failed"}`.trim());
      if (err) return fail(`upstream certificate not trusted: ${err.code ?? err.message}`);
      const nameErr = checkName(opts.verifyHost, s);
      if (nameErr) return fail(`upstream TLS: ${nameErr.code ?? ""} ${nameErr.message}`.trim());
      settled = true;
      clearTimeout(timer);
      sessionWanted = true;
      resolve({ leg, alpn: s.alpnProtocol || undefined, sessionReused: s.isSessionReused() });
    };
    let raw: RawSide;
    let sock: NativeSocket;
    try {
      [raw, sock] = nativeHandle<ClientHandle>(tcp).upgradeTLS({
        isServer: false,
        tls: {
          secureContext: (opts.trust.secureContext() as unknown as { context: unknown }).context,
          ...(opts.servername ? { serverName: opts.servername } : {}),
          ...(opts.alpn.length ? { ALPNProtocols: alpnWire(opts.alpn) } : {}),
          rejectUnauthorized: false, // verified in `verify`, with a message of ours
        },
        socket: {
          ...handlers,
          open: (s: TlsClientSocket) => {
            const session = opts.trust.session(key);
            if (session) s.setSession(session);
          },
          handshake: verify,
          data: (s: TlsClientSocket, d: Uint8Array) => {
            if (sessionWanted) {
              sessionWanted = false;
              const session = s.getSession();
              if (session) opts.trust.remember(key, session);
            }
            handlers.data(s, d);
          },
          close: (s: TlsClientSocket, err?: Error) => {
            fail(`upstream TLS: ${err?.message ?? "closed during the handshake"}`); // a no-op once verified
            handlers.close(s, err);
            tcp.destroy(); // the net.Socket does not learn of it by itself (the proxy tracks it)
          },
        },
      });
    } catch (err) {
      return fail(`upstream TLS: ${(err as Error).message}`);
    }
    // Left as they are, the raw side's handlers push every chunk of ciphertext into tcp, a net.Socket nobody reads:
    // it buffered all of a connection's answers for as long as it lived. Handlers that take no data instead (a
    // client socket's own: reloading an accepted socket's would change its listener's); the raw side's close still
    // destroys tcp, whose "close" the proxy tracks.
    raw.reload({ socket: { drain: () => {}, close: () => tcp.destroy(), error: () => {} } });
    leg.attach(sock);
  });
}

/** tls.checkServerIdentity on the leg's certificate; an error (never a throw: this runs in a socket callback). */
function checkName(host: string, s: TlsClientSocket): (Error & { code?: string }) | undefined {
  try {
    return tls.checkServerIdentity(host, s.getPeerCertificate());
  } catch (err) {
    return err as Error;
  }
}

function ignore(): void {}

export function isIpLiteral(host: string): boolean {
  return net.isIP(host) !== 0;
}
