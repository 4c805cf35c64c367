// TLS records from the probes → the tap contract: one connection per TLS session (pid + SSL*), opened once
// its socket is known, bytes in stream order per direction. Sans-IO apart from the injected process lookup
// and clock: tests feed decoded records.
//
// Order and loss: every data record carries its offset in its direction's stream. A record past the
// expected offset means the ring buffer dropped bytes in between: the connection is closed with an error
// naming the bytes lost (decoders mark what was in flight incomplete) and the rest of the session is
// ignored, since an HTTP stream cannot be resumed at an unknown point.
import type { ConnMeta, Direction, ProcessInfo, TapSink } from "../../tap/types.ts";
import type { TlsRecord } from "./records.ts";

export interface StreamsOptions {
  tap: TapSink;
  /** Process details for a pid (from /proc); the probe's comm is the fallback name. */
  describe: (pid: number, comm: string) => ProcessInfo;
  /** CLOCK_MONOTONIC ns → epoch ms. */
  toEpochMs: (tsNs: bigint) => number;
  /** Prefix of connection ids (unique per capture run). */
  runId: string;
  /** A session whose socket is still unknown after this long is opened without addresses. */
  bindWaitMs?: number;
  /** Bytes held per session while its socket is unknown. */
  maxHeldBytes?: number;
  /** Bytes held over all sessions; past it sessions open without waiting for their socket. */
  maxHeldTotalBytes?: number;
  /** Sessions tracked at once; the least recently active one is closed past it. */
  maxSessions?: number;
  /** Capture paused (`oisp pause`): sessions starting now are not recorded. */
  paused?: () => boolean;
  /**
   * Which sessions to record, by the host the client asked for (SNI, else the server's address); the
   * others are followed to their end and dropped. Default: all.
   */
  wanted?: (host: string, port: number) => boolean;
  /** Told of each session not recorded, so the kernel can stop copying its bytes. */
  onIgnored?: (pid: number, ssl: bigint) => void;
}

export interface StreamsStats {
  sessions: number;
  activeSessions: number;
  bytes: number;
  /** Sessions ended early because records were lost. */
  gaps: number;
  lostBytes: number;
  /** Sessions opened without a socket (none was seen in time). */
  unbound: number;
  /** Sessions seen from the server side (the process read before it wrote). */
  serverSide: number;
  /** Sessions not recorded: not to an AI host (see StreamsOptions.wanted). */
  ignored: number;
  /** Bytes waiting for their session's socket. */
  heldBytes: number;
}

interface Session {
  key: string;
  pid: number;
  comm: string;
  connId?: string;
  firstTs: number;
  lastTs: number;
  /** Next expected offset: [written, read]. */
  expected: [number, number];
  held: TlsRecord[];
  heldBytes: number;
  local?: { ip: string; port: number };
  remote?: { ip: string; port: number };
  serverSide: boolean;
  /** Records lost: nothing more is delivered. */
  broken: boolean;
}

const MAX_SNI = 4096;
const H2_PREFACE = "PRI * HTTP/2.0\r\n";
const HTTP1_REQUEST = /^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \S+ HTTP\/1\.[01]\r\n/;

/**
 * The protocol the client's first bytes speak, in ALPN's words: the probes do not see the handshake, and
 * the proxy reports what ALPN chose, so an HTTP/2 preface or an HTTP/1.1 request line stands in for it.
 */
function protocolOf(first: TlsRecord | undefined): string | undefined {
  if (!first) return undefined;
  const head = new TextDecoder("latin1").decode(first.data.subarray(0, 64));
  if (head.startsWith(H2_PREFACE)) return "h2";
  return HTTP1_REQUEST.test(head) ? "http/1.1" : undefined;
}

export class TlsStreams {
  private readonly sessions = new Map<string, Session>();
  private readonly sni = new Map<string, string>();
  private seq = 0;
  private heldTotal = 0;
  private readonly counters = { sessions: 0, bytes: 0, gaps: 0, lostBytes: 0, unbound: 0, serverSide: 0, ignored: 0 };

  constructor(private readonly opts: StreamsOptions) {}

  stats(): StreamsStats {
    return { ...this.counters, activeSessions: this.sessions.size, heldBytes: this.heldTotal };
  }

  push(r: TlsRecord): void {
    switch (r.kind) {
      case "sni":
        this.sni.delete(r.session);
        this.sni.set(r.session, new TextDecoder().decode(r.data));
        if (this.sni.size > MAX_SNI) this.sni.delete(this.sni.keys().next().value!);
        return;
      case "data":
        return this.onData(r);
      case "bind": {
        const s = this.sessions.get(r.session);
        if (!s) return;
        this.setSocket(s, r);
        if (!s.connId && !s.broken) this.open(s);
        return;
      }
      case "close": {
        const s = this.sessions.get(r.session);
        if (!s) return;
        // Totals from the kernel: bytes the ring buffer dropped at the very end show up only here.
        const missing = Math.max(0, r.offset - s.expected[0]) + Math.max(0, r.aux - s.expected[1]);
        if (missing > 0 && !s.broken) this.lose(s, missing, this.opts.toEpochMs(r.tsNs));
        this.end(s, this.opts.toEpochMs(r.tsNs));
        return;
      }
      case "exit":
      case "exec": // a new program: the old one's SSL objects are gone with its memory
        for (const s of [...this.sessions.values()]) if (s.pid === r.pid) this.end(s, this.opts.toEpochMs(r.tsNs));
        return;
    }
  }

  /** Opens sessions that waited too long for their socket; call every few hundred ms. */
  tick(nowMs: number): void {
    const wait = this.opts.bindWaitMs ?? 500;
    for (const s of this.sessions.values()) {
      if (!s.connId && !s.broken && nowMs - s.firstTs > wait) this.open(s);
    }
  }

  /** Closes every session (capture stopping). */
  closeAll(nowMs: number, error?: string): void {
    for (const s of [...this.sessions.values()]) this.end(s, nowMs, error);
  }

  private onData(r: TlsRecord): void {
    const ts = this.opts.toEpochMs(r.tsNs);
    let s = this.sessions.get(r.session);
    if (!s) {
      s = this.create(r, ts);
      // A process that reads before it ever wrote is the server of this connection.
      if (r.op === "read" && r.offset === 0) {
        s.serverSide = true;
        this.counters.serverSide++;
      }
    }
    s.lastTs = ts;
    if (s.broken) return;
    if (r.family) this.setSocket(s, r);
    const i = r.op === "write" ? 0 : 1;
    const end = r.offset + r.data.length;
    if (end <= s.expected[i]) return; // already delivered
    if (r.offset > s.expected[i]) {
      this.lose(s, r.offset - s.expected[i], ts);
      return;
    }
    const fresh = r.offset < s.expected[i] ? { ...r, data: r.data.subarray(s.expected[i] - r.offset) } : r;
    s.expected[i] = end;
    if (!s.connId) {
      // Held (copied: the batch buffer is reused) until the socket is known; open() delivers them.
      s.held.push({ ...fresh, data: fresh.data.slice() });
      s.heldBytes += fresh.data.length;
      this.heldTotal += fresh.data.length;
      if (s.local || s.heldBytes > (this.opts.maxHeldBytes ?? 4 << 20) || this.heldTotal > (this.opts.maxHeldTotalBytes ?? 64 << 20)) this.open(s);
      return;
    }
    this.deliver(s, fresh, ts);
  }

  private create(r: TlsRecord, ts: number): Session {
    const max = this.opts.maxSessions ?? 20_000;
    if (this.sessions.size >= max) {
      // Least recently active first (Map order is insertion; good enough as an approximation).
      const oldest = this.sessions.values().next().value!;
      this.end(oldest, ts, "capture: too many TLS sessions tracked at once");
    }
    // A session starting while paused is followed (to know where it ends) but never recorded.
    const broken = this.opts.paused?.() ?? false;
    const s: Session = { key: r.session, pid: r.pid, comm: r.comm, firstTs: ts, lastTs: ts, expected: [0, 0], held: [], heldBytes: 0, serverSide: false, broken };
    this.sessions.set(r.session, s);
    this.counters.sessions++;
    return s;
  }

  private setSocket(s: Session, r: TlsRecord): void {
    if (s.local || !r.local || !r.remote) return;
    s.local = r.local;
    s.remote = r.remote;
  }

  private open(s: Session): void {
    if (s.connId || s.broken) return;
    const unknown = { ip: "0.0.0.0", port: 0 };
    const [client, server] = s.serverSide ? [s.remote ?? unknown, s.local ?? unknown] : [s.local ?? unknown, s.remote ?? unknown];
    const sni = this.sni.get(s.key);
    this.sni.delete(s.key);
    if (this.opts.wanted && !this.opts.wanted(sni ?? server.ip, server.port)) {
      this.counters.ignored++;
      this.opts.onIgnored?.(s.pid, BigInt(`0x${s.key.slice(s.key.indexOf(":") + 1)}`));
      s.broken = true;
      this.heldTotal -= s.heldBytes;
      s.held = [];
      s.heldBytes = 0;
      return;
    }
    s.connId = `${this.opts.runId}-${++this.seq}`;
    if (!s.local) this.counters.unbound++;
    const alpn = protocolOf(s.held.find((r) => (r.op === "write") !== s.serverSide));
    const meta: ConnMeta = {
      connId: s.connId,
      startedAt: s.firstTs,
      client,
      server,
      host: sni ?? server.ip,
      ...(sni && { sni }),
      ...(alpn && { alpn }),
      mode: "mitm",
      process: this.opts.describe(s.pid, s.comm),
      captureMethod: "ebpf_uprobe",
    };
    this.opts.tap.open(meta);
    const held = s.held;
    this.heldTotal -= s.heldBytes;
    s.held = [];
    s.heldBytes = 0;
    for (const r of held) this.deliver(s, r, this.opts.toEpochMs(r.tsNs));
  }

  private deliver(s: Session, r: TlsRecord, ts: number): void {
    if (!r.data.length) return;
    const wrote = r.op === "write";
    const dir: Direction = wrote !== s.serverSide ? "c2s" : "s2c";
    this.counters.bytes += r.data.length;
    this.opts.tap.data(s.connId!, dir, r.data, ts);
  }

  private lose(s: Session, bytes: number, ts: number): void {
    if (!s.connId) this.open(s);
    if (!s.connId) return; // not recorded anyway
    this.counters.gaps++;
    this.counters.lostBytes += bytes;
    s.broken = true;
    this.opts.tap.close(s.connId!, ts, `capture lost ${bytes} bytes (eBPF ring buffer full); the rest of this connection was not recorded`);
  }

  private end(s: Session, ts: number, error?: string): void {
    this.sessions.delete(s.key);
    if (!s.connId) {
      if (s.broken || !s.held.length) return; // not recorded, or nothing was ever sent
      this.open(s);
      if (!s.connId) return;
    }
    if (!s.broken) this.opts.tap.close(s.connId, ts, error);
  }
}
