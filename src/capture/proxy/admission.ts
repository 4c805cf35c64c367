// How many client connections the proxy holds, without sockets: each accepted socket is counted in, each
// close counted out, and past maxConnections a new one is refused (and counted as refused). startProxy
// carries the answer out: a 503 to an explicit-proxy client, a dropped socket for a transparent one.
import type { ProxyStats } from "../../mitm/stats.ts";

export type Admission =
  | { kind: "admit" }
  /** Explicit proxy: an HTTP error the client can read. */
  | { kind: "refuse"; status: 503; reason: string }
  /** Transparent capture: the client never asked a proxy, so it gets what an overloaded network gives. */
  | { kind: "drop" };

export class ConnectionGate {
  constructor(
    /** Where the counts live (stats() reads them). */
    private readonly stats: Pick<ProxyStats, "connectionsTotal" | "connectionsActive" | "refusedOverLimit">,
    private readonly max: number,
  ) {}

  /** A socket was accepted. Counted as active either way: its close() comes whatever the answer. */
  open(entry: "explicit" | "transparent"): Admission {
    this.stats.connectionsTotal++;
    this.stats.connectionsActive++;
    if (this.stats.connectionsActive <= this.max) return { kind: "admit" };
    this.stats.refusedOverLimit++;
    return entry === "transparent" ? { kind: "drop" } : { kind: "refuse", status: 503, reason: `too many connections (limit ${this.max})` };
  }

  /** An opened socket closed (admitted or not). */
  closed(): void {
    this.stats.connectionsActive--;
  }
}
