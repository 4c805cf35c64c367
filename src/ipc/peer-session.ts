// One redirector's session with the sensor, without the socket: bytes in, actions out (server.ts carries
// them out). The token check, the ack protocol choice, the per-peer bound on open connections and which
// connections to close when the peer goes are decided here, so they are tested without sockets.
import { VERSION } from "../version.ts";
import { tokensEqual } from "./endpoint.ts";
import { FrameDecoder, IPC_PROTO, type IpcFrame } from "./frames.ts";

/** The counters of the whole server that a session moves. */
export interface SessionCounters {
  framesIn: number;
  badFrames: number;
  authFailures: number;
  connsSeen: number;
}

export type SinkFrame = Extract<IpcFrame, { t: "open" | "data" | "close" | "activity" }>;

export type PeerAction =
  /** Hand to the sink, in this order. */
  | SinkFrame
  /** Write this frame to the peer. */
  | { t: "to-peer"; frame: IpcFrame }
  /** The connection's close went to the sink: ack it to the peer once what it produced is stored. */
  | { t: "ack-when-stored"; connId: string }
  /** Close this connection at the sink: the peer can no longer finish it. */
  | { t: "close-at-sink"; connId: string; reason: string }
  /** Drop the peer (log the reason, destroy the socket); close-at-sink actions for its connections follow. */
  | { t: "drop"; reason: string };

export type PeerState =
  | { s: "awaiting-hello" }
  | { s: "authed"; pid: number; runId: string; version: string; proto: number; /** Speaks proto >= 2: wants acks. */ acks: boolean }
  | { s: "gone" };

export class IpcPeerSession {
  state: PeerState = { s: "awaiting-hello" };
  label: string;
  /** Connections this peer opened and has not closed: closed for it if it goes away. */
  readonly openConns = new Set<string>();
  private readonly decoder = new FrameDecoder();

  constructor(
    id: number,
    private readonly token: string,
    private readonly maxOpenConns: number,
    private readonly counters: SessionCounters,
  ) {
    this.label = `peer #${id}`;
  }

  get gone(): boolean {
    return this.state.s === "gone";
  }

  get authed(): boolean {
    return this.state.s === "authed";
  }

  /** Wants acks (a proto-1 redirector would reject ack frames: it gets none). */
  get acks(): boolean {
    return this.state.s === "authed" && this.state.acks;
  }

  /** Bytes from the peer. */
  push(chunk: Uint8Array): PeerAction[] {
    if (this.state.s === "gone") return [];
    const out: PeerAction[] = [];
    const { frames, error } = this.decoder.push(chunk);
    for (const frame of frames) {
      this.onFrame(frame, out);
      if (this.gone) return out;
    }
    if (error) this.drop(error, this.authed ? "badFrames" : "authFailures", out);
    return out;
  }

  /** The hello did not come in time. */
  helloTimeout(ms: number): PeerAction[] {
    if (this.state.s !== "awaiting-hello") return [];
    const out: PeerAction[] = [];
    this.drop(`no hello within ${ms} ms`, "authFailures", out);
    return out;
  }

  /**
   * The peer is gone (disconnected, or the sensor stops). Its open connections are closed at the sink,
   * unless `closeAtSink` is false (a redirector that gets acks resends them whole to the next sensor).
   */
  end(reason: string, closeAtSink = true): PeerAction[] {
    if (this.state.s === "gone") return [];
    this.state = { s: "gone" };
    return this.release(reason, closeAtSink);
  }

  private onFrame(frame: IpcFrame, out: PeerAction[]): void {
    this.counters.framesIn++;
    if (this.state.s === "awaiting-hello") {
      if (frame.t !== "hello") return this.drop(`expected hello, got ${frame.t}`, "authFailures", out);
      if (!tokensEqual(frame.token, this.token)) return this.drop(`wrong token from pid ${frame.pid}`, "authFailures", out);
      const proto = frame.proto ?? 1;
      this.state = { s: "authed", pid: frame.pid, runId: frame.runId, version: frame.version, proto, acks: proto >= 2 };
      this.label = `redirector pid ${frame.pid} run ${frame.runId}`;
      out.push({ t: "to-peer", frame: { t: "welcome", version: VERSION, proto: IPC_PROTO } });
      return;
    }
    switch (frame.t) {
      case "open":
        if (this.openConns.size >= this.maxOpenConns) return this.drop(`more than ${this.maxOpenConns} open connections`, "badFrames", out);
        this.openConns.add(frame.meta.connId);
        this.counters.connsSeen++;
        out.push(frame);
        return;
      case "data":
        out.push(frame);
        return;
      case "close":
        this.openConns.delete(frame.connId);
        out.push(frame);
        // Acked even if the sink throws: resending the same bytes would throw again.
        if (this.acks) out.push({ t: "ack-when-stored", connId: frame.connId });
        return;
      case "activity":
        out.push(frame);
        return;
      default:
        return this.drop(`unexpected ${frame.t} frame after hello`, "badFrames", out);
    }
  }

  private drop(reason: string, counter: "badFrames" | "authFailures", out: PeerAction[]): void {
    this.counters[counter]++;
    this.state = { s: "gone" };
    out.push({ t: "drop", reason });
    out.push(...this.release(`ipc: redirector dropped: ${reason}`, true));
  }

  private release(reason: string, closeAtSink: boolean): PeerAction[] {
    const out: PeerAction[] = closeAtSink ? [...this.openConns].map((connId) => ({ t: "close-at-sink", connId, reason })) : [];
    this.openConns.clear();
    return out;
  }
}
