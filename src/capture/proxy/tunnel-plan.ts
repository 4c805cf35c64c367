// What startProxy decides around a tunnel, without sockets: the connection's metadata before the upstream
// answers, what a failed upstream connect means for the client and the tap, whether a target is this
// proxy itself, and how often a misconfigured client is worth a warning. server.ts carries these out.
import type { ConnMeta, Endpoint } from "../../tap/types.ts";
import { UpstreamError } from "../../mitm/upstream.ts";
import { statusForUpstreamError } from "./responses.ts";

export interface TunnelRequest {
  connId: string;
  startedAt: number;
  client: Endpoint;
  /** The host and port the client asked for (CONNECT) or the transparent destination's name. */
  host: string;
  port: number;
  /** Where the proxy connects (after --resolve, or the transparent destination's address). */
  target: { host: string; port: number };
  captureMethod?: ConnMeta["captureMethod"];
}

/** A tunnel's metadata before the upstream answers: passthrough until the tunnel decides to intercept. */
export function tunnelMeta(r: TunnelRequest): ConnMeta {
  return {
    connId: r.connId,
    startedAt: r.startedAt,
    client: r.client,
    server: { ip: r.target.host, port: r.target.port },
    host: r.host,
    // The port the client asked for, when --resolve sends the connection elsewhere.
    ...(r.port !== r.target.port && { port: r.port }),
    mode: "passthrough",
    captureMethod: r.captureMethod ?? "mitm_proxy",
  };
}

/** What the client gets when the upstream cannot be reached. */
export type ConnectFailureReply =
  /** Transparent capture: what the network would have given it, a dropped connection. */
  | { kind: "drop" }
  /** Explicit proxy: an HTTP error before the tunnel is up (502, or 504 on a timeout...). */
  | { kind: "http-error"; status: number; reason: string };

/** A failed upstream connect: the reply, and the pass-through code and reason the tap records. */
export function connectFailure(err: Error, transparent: boolean): { reply: ConnectFailureReply; meta: Pick<ConnMeta, "upstreamError" | "passthroughCode" | "passthroughReason"> } {
  const reply: ConnectFailureReply = transparent
    ? { kind: "drop" }
    : { kind: "http-error", status: err instanceof UpstreamError ? statusForUpstreamError(err.kind) : 502, reason: err.message };
  return { reply, meta: { upstreamError: err.message, passthroughCode: "upstream-connect-failed", passthroughReason: "upstream connect failed" } };
}

/** Whether `host` reaches a listener bound to `listenAddr` on this machine (a request to it would loop). */
export function isOwnAddress(host: string, listenAddr: string): boolean {
  const h = unmapV4(host.toLowerCase());
  const loopback = h === "localhost" || h === "::1" || h.startsWith("127.");
  const wildcard = listenAddr === "0.0.0.0" || listenAddr === "::";
  return loopback || h === unmapV4(listenAddr) || (wildcard && (h === "0.0.0.0" || h === "::"));
}

/** "::ffff:127.0.0.1" → "127.0.0.1": dual-stack listeners report IPv4 clients in mapped form. */
export function unmapV4(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/** At most one warning per interval: a misconfigured client retries in a loop. */
export class WarnEvery {
  private last = -Infinity;

  constructor(private readonly intervalMs: number) {}

  /** True when a warning at `nowMs` is due (and counts it as given). */
  due(nowMs: number): boolean {
    if (nowMs - this.last < this.intervalMs) return false;
    this.last = nowMs;
    return true;
  }
}

/** A transparently captured connection's tunnel, from what the capture layer knew about it. */
export interface TransparentPlan {
  /** The real client (the capture layer's, else the socket's peer). */
  client: Endpoint;
  /** The name the decision and the tap use: the learned host, else the address; lowercased. */
  host: string;
  port: number;
  /** Where the relay connects: the original destination address, never re-resolved. */
  target: { host: string; port: number };
  captureMethod: NonNullable<ConnMeta["captureMethod"]>;
}

export function transparentPlan(
  dest: { ip: string; port: number; host?: string; client?: Endpoint; captureMethod?: ConnMeta["captureMethod"] },
  peer: Endpoint,
): TransparentPlan {
  return {
    client: dest.client ?? peer,
    host: (dest.host ?? dest.ip).toLowerCase(),
    port: dest.port,
    target: { host: dest.ip, port: dest.port },
    captureMethod: dest.captureMethod ?? "windivert",
  };
}
