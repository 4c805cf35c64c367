// The upstream leg: where to connect (after --resolve), the TCP connect with a clear failure kind, and
// the TLS client handshake that verifies the real host's certificate as any client would.
import net from "node:net";
import tls from "node:tls";

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
  /** Trusted roots: the system bundle plus --upstream-ca. */
  ca: string[];
  timeoutMs: number;
}

/** TLS client handshake over an already connected TCP socket; resolves once the upstream is verified. */
export function upgradeTls(tcp: net.Socket, opts: UpstreamTlsOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({
      socket: tcp,
      servername: opts.servername,
      ALPNProtocols: opts.alpn.length ? opts.alpn : undefined,
      ca: opts.ca,
      rejectUnauthorized: true,
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(opts.verifyHost, cert),
    });
    sock.on("error", ignore);
    const fail = (msg: string) => {
      clearTimeout(timer);
      sock.destroy();
      tcp.destroy();
      reject(new UpstreamError("tls", msg));
    };
    const timer = setTimeout(() => fail(`TLS handshake with upstream timed out after ${opts.timeoutMs} ms`), opts.timeoutMs);
    const onError = (err: NodeJS.ErrnoException) => fail(`upstream TLS: ${err.code ?? ""} ${err.message}`.trim());
    sock.once("error", onError);
    sock.once("secureConnect", () => {
      clearTimeout(timer);
      sock.off("error", onError);
      if (!sock.authorized) return fail(`upstream certificate not trusted: ${String(sock.authorizationError)}`);
      resolve(sock);
    });
  });
}

function ignore(): void {}

export function isIpLiteral(host: string): boolean {
  return net.isIP(host) !== 0;
}
