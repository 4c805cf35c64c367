// The tap contract: what every capture source (proxy, WinDivert, eBPF) emits and the sensor consumes.
// The redirector (or an in-process capture) produces these; the sensor consumes them. Keep them plain data:
// they cross the IPC boundary as JSON (see src/ipc/frames.ts).
import type { HostActivity } from "./activity.ts";

/** The process that owns the client end of a captured connection. */
export interface ProcessInfo {
  pid: number;
  ppid?: number;
  exe?: string;
  name?: string;
  cmdline?: string;
  user?: string;
  uid?: number;
  /** When the process started, as the OS counts it (Linux: /proc/PID/stat starttime, ticks since boot): with pid, names one process even after its pid is reused. */
  startTime?: number;
}

export interface Endpoint {
  ip: string;
  port: number;
}

/** Everything known about a connection when it is opened by the redirector. */
export interface ConnMeta {
  /** Unique per redirector run; stable across spool replay. */
  connId: string;
  /** Epoch milliseconds (fractional) when the client connected. */
  startedAt: number;
  client: Endpoint;
  /** The address the relay actually connected to (after --resolve). */
  server: Endpoint;
  /** Hostname the client asked for: CONNECT authority, SNI, or absolute-form Host. */
  host: string;
  /** Port the client asked for, when `server` may differ from it (--resolve): what endpoints match on. */
  port?: number;
  sni?: string;
  /** ALPN protocol that ended up in use on both legs ("http/1.1", "h2"), if any. */
  alpn?: string;
  /** mitm: plaintext is tapped; plain: plain-HTTP proxying (tapped); passthrough: metadata only. */
  mode: "mitm" | "plain" | "passthrough";
  /** Why a connection was not intercepted, as a code to count and test on (see PassthroughCode). */
  passthroughCode?: PassthroughCode;
  /** The same for people, with detail ("client rejected certificate: fatal alert unknown_ca"). */
  passthroughReason?: string;
  /** Milliseconds from client connect until the upstream leg was up. */
  upstreamConnectMs?: number;
  upstreamError?: string;
  process?: ProcessInfo;
  /**
   * ebpf_uprobe: plaintext read at the TLS library by uprobes (src/capture/ebpf/); process taken from the probe.
   * ebpf_tracepoint: a connection known only from its ClientHello seen at the socket (metadata only).
   */
  captureMethod: "mitm_proxy" | "windivert" | "ebpf_uprobe" | "ebpf_tracepoint";
}

/** Why a connection was relayed without interception. */
export const PASSTHROUGH_CODES = [
  "not-tls", // no TLS ClientHello: a plain protocol, or the server spoke first
  "bad-client-hello", // unparseable, too large, incomplete, or none in time
  "closed-early", // a side closed before any data, or before interception was set up
  "mitm-off", // TLS interception switched off
  "not-ai-host",
  "pinned", // this client rejected our certificate before: passed through from then on
  "no-ca",
  "alpn-unsupported", // the client offers only protocols we do not decode
  "upstream-connect-failed",
  "upstream-tls-failed",
  "cert-failed", // issuing the leaf certificate failed
  "client-rejected-cert", // the client rejected our certificate (a certificate alert after our ServerHello); not pinned yet
  "client-pinned", // this rejection pinned the client: it is passed through for this host from now on (for a while)
  "handshake-failed", // our TLS handshake failed otherwise (our stack's error, a non-certificate alert): never pins
  "handshake-closed", // the client closed during our TLS handshake without an alert, before our answer reached it
  "closed-after-handshake", // the client hung up on our ServerHello without an alert or a byte (Node not trusting our CA); 2 pin that process
  "client-closed-after-handshake", // this process hung up on our certificate twice: passed through (15 min)
] as const;
export type PassthroughCode = (typeof PASSTHROUGH_CODES)[number];

export type Direction = "c2s" | "s2c";

/**
 * Receives a copy of everything the relay sees. Implementations must never throw into the
 * relay and must never block it: the user's traffic does not wait for observation.
 */
export interface TapSink {
  open(meta: ConnMeta): void;
  /**
   * A sink keeping `bytes` past the call must know where they come from: a capture's chunks (relay, eBPF) are never
   * reused by it (WorkerTap keeps them until its batch is posted); in the sensor Worker they are views of a batch buffer
   * that goes back to the relay once the batch is decoded (SensorPipeline's decoders copy what they keep).
   */
  data(connId: string, dir: Direction, bytes: Uint8Array, ts: number): void;
  close(connId: string, ts: number, error?: string): void;
  /** Programs started and files written by watched processes (eBPF). Optional: proxy sources have none. */
  activity?(items: HostActivity[]): void;
  /**
   * Runs `fn` once what was tapped so far is durable enough to be forwarded (`oisp up`'s crash journal: after
   * the turn's write); the relay forwards answers through it, in order. Absent: forward at once.
   */
  afterJournal?(fn: () => void): void;
}

/** Wall-clock epoch milliseconds with sub-millisecond precision. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
