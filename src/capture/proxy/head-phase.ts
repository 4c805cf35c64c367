// One explicit-proxy connection before its tunnel or plain session, without the socket: bytes and the
// head timer's expiry in, one action out. The first decisive event ends the phase; anything after it is
// ignored. startProxy owns the socket and the timer and carries the action out.
import type { Endpoint } from "../../tap/types.ts";
import type { ProxyStats } from "../../mitm/stats.ts";
import { ProxyRequestReader } from "./proxy-request.ts";
import type { WarnEvery } from "./tunnel-plan.ts";

export type HeadState = { phase: "reading" } | { phase: "done"; by: HeadAction["kind"] };

export type HeadAction =
  /** Not decided yet: keep reading, keep the timer. */
  | { kind: "wait" }
  /** The phase is over already (a late timer or chunk): do nothing. */
  | { kind: "ignore" }
  /** A ClientHello on the proxy port: send a TLS alert and close; `warn` is a log line when one is due. */
  | { kind: "refuse-tls"; warn?: string }
  /** Answer with an HTTP error and close; `debug` is a log line when the request itself was bad. */
  | { kind: "reply-error"; status: number; reason: string; debug?: string }
  /** Absolute-form HTTP: a plain session over every byte read; `paused` sessions tap nothing. */
  | { kind: "plain"; bytes: Uint8Array; paused: boolean }
  /** CONNECT: open the tunnel with the bytes that followed the head. */
  | { kind: "connect"; host: string; port: number; rest: Uint8Array };

export interface HeadPhaseDeps {
  client: Endpoint;
  maxHeadBytes: number;
  /** True when host:port is this proxy (the request would loop). */
  loops: (host: string, port: number) => boolean;
  /** Capture paused now (read once, when a plain session starts). */
  paused: () => boolean;
  /** Shared by all connections: a misconfigured client retries in a loop. */
  tlsWarning: WarnEvery;
  stats: Pick<ProxyStats, "badRequests" | "tlsToProxyPort" | "paused">;
}

export class HeadPhase {
  private current: HeadState = { phase: "reading" };
  private readonly reader: ProxyRequestReader;

  constructor(private readonly d: HeadPhaseDeps) {
    this.reader = new ProxyRequestReader(d.maxHeadBytes, d.loops);
  }

  get state(): HeadState {
    return this.current;
  }

  /** A chunk from the client; `nowMs` is a monotonic clock for the warning rate. */
  data(chunk: Uint8Array, nowMs: number): HeadAction {
    if (this.current.phase === "done") return { kind: "ignore" };
    const r = this.reader.push(chunk);
    switch (r.kind) {
      case "need-more":
        return { kind: "wait" };
      case "tls": {
        const { stats, client } = this.d;
        stats.tlsToProxyPort++;
        // Without the alert the client would wait for the head timeout (30 s); the user gets a log line.
        const warn = this.d.tlsWarning.due(nowMs)
          ? `a client (${client.ip}:${client.port}) started TLS on the proxy port: its proxy URL must start with http://, not https:// (the proxy speaks plain HTTP; HTTPS goes through CONNECT). ${stats.tlsToProxyPort} such connection(s) so far`
          : undefined;
        return this.end({ kind: "refuse-tls", ...(warn !== undefined && { warn }) });
      }
      case "bad":
        this.d.stats.badRequests++;
        return this.end({ kind: "reply-error", status: r.status, reason: r.reason, debug: `bad proxy request from ${this.d.client.ip}:${this.d.client.port}: ${r.reason}` });
      case "plain": {
        const paused = this.d.paused();
        if (paused) this.d.stats.paused++;
        return this.end({ kind: "plain", bytes: r.bytes, paused });
      }
      case "connect":
        return this.end({ kind: "connect", host: r.host, port: r.port, rest: r.rest });
    }
  }

  /** The head timer fired. */
  timeout(): HeadAction {
    if (this.current.phase === "done") return { kind: "ignore" };
    this.d.stats.badRequests++;
    return this.end({ kind: "reply-error", status: 400, reason: "no complete request head in time" });
  }

  private end(a: Exclude<HeadAction, { kind: "wait" | "ignore" }>): HeadAction {
    this.current = { phase: "done", by: a.kind };
    return a;
  }
}
