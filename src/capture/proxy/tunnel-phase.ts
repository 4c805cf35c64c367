// One tunnel from its upstream connect to its relay, without sockets: connect results in, what to do
// out. Whether capture is paused is read once, when the tunnel starts: one that started paused stays
// blind, one that started capturing stays tapped. startProxy owns the sockets and runs relay/runTunnel.
import type { ConnMeta } from "../../tap/types.ts";
import type { ProxyStats } from "../../mitm/stats.ts";
import { connectFailure, type ConnectFailureReply } from "./tunnel-plan.ts";

export type TunnelState =
  | { phase: "connecting" }
  | { phase: "failed"; error: string }
  /** The client left while the upstream was connecting. */
  | { phase: "abandoned" }
  /** Paused: bytes relayed as they would be without us, no peek, no decision, no tap. */
  | { phase: "blind" }
  | { phase: "tunnel" }
  /** runTunnel threw: a bug that must cost this connection only. */
  | { phase: "crashed"; error: string };

export type TunnelAction =
  /** The upstream is unreachable: reply (or drop), record the failure on the meta, open and close the tap. */
  | { kind: "fail"; reply: ConnectFailureReply; meta: Pick<ConnMeta, "upstreamError" | "passthroughCode" | "passthroughReason">; tapClose: string }
  /** Destroy the fresh upstream, open and close the tap. */
  | { kind: "abandon"; tapClose: string }
  /** `established`: send the CONNECT 200 first (explicit proxy only). */
  | { kind: "blind-relay"; established: boolean }
  | { kind: "tunnel"; established: boolean }
  /** Destroy both sides, open and close the tap. */
  | { kind: "teardown"; tapClose: string }
  /** An event that does not fit the state (nothing to do). */
  | { kind: "ignore" };

export class TunnelPhase {
  private current: TunnelState = { phase: "connecting" };

  constructor(
    /** Capture paused when the tunnel started: its tap is a discard tap. */
    readonly paused: boolean,
    /** Transparent capture: no CONNECT to answer, failures drop the socket. */
    private readonly transparent: boolean,
    private readonly stats: Pick<ProxyStats, "upstreamErrors" | "paused" | "passthrough">,
  ) {}

  get state(): TunnelState {
    return this.current;
  }

  connectFailed(err: Error): TunnelAction {
    if (this.current.phase !== "connecting") return { kind: "ignore" };
    this.stats.upstreamErrors++;
    this.current = { phase: "failed", error: err.message };
    const f = connectFailure(err, this.transparent);
    return { kind: "fail", reply: f.reply, meta: f.meta, tapClose: err.message };
  }

  connected(clientGone: boolean): TunnelAction {
    if (this.current.phase !== "connecting") return { kind: "ignore" };
    if (clientGone) {
      this.current = { phase: "abandoned" };
      return { kind: "abandon", tapClose: "client closed before the tunnel was up" };
    }
    const established = !this.transparent;
    if (this.paused) {
      this.stats.paused++;
      this.stats.passthrough++;
      this.current = { phase: "blind" };
      return { kind: "blind-relay", established };
    }
    this.current = { phase: "tunnel" };
    return { kind: "tunnel", established };
  }

  tunnelThrew(err: Error): TunnelAction {
    if (this.current.phase !== "tunnel") return { kind: "ignore" };
    this.current = { phase: "crashed", error: err.message };
    return { kind: "teardown", tapClose: err.message };
  }
}
