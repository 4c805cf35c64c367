// ClientHellos seen at the socket (proc.bpf.c) → metadata-only connections to AI hosts for processes whose
// TLS the uprobes cannot read (Bun, Go, rustls, Electron: no OpenSSL symbols to hook). A hello is held a
// moment; if the TLS probes delivered plaintext for that connection meanwhile, the full capture has it and
// nothing is reported here. Sans-IO: time comes in through push/tick, the plaintext check is injected.
import { parseClientHello } from "../../wire/tls-client-hello.ts";
import { matchEndpoint } from "../../spec/endpoints.ts";
import type { ConnMeta, ProcessInfo } from "../../tap/types.ts";
import type { ProcRecord, SockAddr } from "./proc-records.ts";

type Hello = Extract<ProcRecord, { type: "hello" }>;

export interface HelloOptions {
  /** Prefix of connection ids (unique per capture run). */
  runId: string;
  /** Process details for a pid (from /proc). */
  describe: (pid: number) => ProcessInfo;
  /** Whether the TLS probes saw plaintext of this connection (pid + local port), or of this pid at all. */
  plaintextSeen: (pid: number, local: SockAddr) => boolean;
  /** How long a hello waits for the TLS probes before it is reported as metadata only. */
  holdMs?: number;
  /** Hellos held at once; more are reported right away. */
  maxHeld?: number;
}

/** A process reported with metadata only: what `oisp status` lists with the hint to use proxy mode. */
export interface MetadataOnlyProcess {
  pid: number;
  name?: string;
  exe?: string;
  hosts: string[];
  connects: number;
  lastMs: number;
}

export interface HelloStats {
  hellos: number;
  aiHellos: number;
  /** AI connections whose plaintext the TLS probes delivered (nothing to add here). */
  covered: number;
  metadataOnly: number;
  unparsed: number;
}

interface Held {
  meta: ConnMeta;
  pid: number;
  local: SockAddr;
  due: number;
}

const MAX_LISTED = 32;

export class HelloTracker {
  private held: Held[] = [];
  private seq = 0;
  private readonly listed = new Map<number, MetadataOnlyProcess>();
  private readonly counters: HelloStats = { hellos: 0, aiHellos: 0, covered: 0, metadataOnly: 0, unparsed: 0 };

  constructor(private readonly opts: HelloOptions) {}

  /** A hello at epoch ms `ts`. Returns the pid when it went to an AI host (the caller watches that process). */
  push(r: Hello, ts: number): number | undefined {
    this.counters.hellos++;
    const parsed = parseClientHello(r.data);
    if (parsed.status !== "ok" || !parsed.hello.sni) {
      if (parsed.status !== "ok") this.counters.unparsed++;
      return undefined;
    }
    const sni = parsed.hello.sni;
    if (!matchEndpoint(sni, r.remote.port)) return undefined;
    this.counters.aiHellos++;
    const meta: ConnMeta = {
      connId: `${this.opts.runId}-h${this.seq++}`,
      startedAt: ts,
      client: r.local,
      server: r.remote,
      host: sni,
      port: r.remote.port,
      sni,
      ...(parsed.hello.alpn.length > 0 && { alpn: parsed.hello.alpn[0] }),
      mode: "passthrough",
      passthroughReason: "tls_not_visible_to_uprobes",
      process: this.opts.describe(r.pid),
      captureMethod: "ebpf_tracepoint",
    };
    this.held.push({ meta, pid: r.pid, local: r.local, due: ts + (this.opts.holdMs ?? 1500) });
    if (this.held.length > (this.opts.maxHeld ?? 1024)) this.decide(this.held.shift()!);
    return r.pid;
  }

  /** Connections to report now (metadata only): hellos held past their time without plaintext. */
  tick(nowMs: number): ConnMeta[] {
    const out: ConnMeta[] = [];
    while (this.held.length > 0 && this.held[0]!.due <= nowMs) {
      const meta = this.decide(this.held.shift()!);
      if (meta) out.push(meta);
    }
    return out;
  }

  /** Everything held, decided now (shutdown). */
  flush(): ConnMeta[] {
    return this.tick(Infinity);
  }

  metadataOnlyProcesses(): MetadataOnlyProcess[] {
    return [...this.listed.values()].sort((a, b) => b.lastMs - a.lastMs);
  }

  stats(): HelloStats & { held: number } {
    return { ...this.counters, held: this.held.length };
  }

  private decide(h: Held): ConnMeta | undefined {
    if (this.opts.plaintextSeen(h.pid, h.local)) {
      this.counters.covered++;
      return undefined;
    }
    this.counters.metadataOnly++;
    const p = this.listed.get(h.pid) ?? { pid: h.pid, name: h.meta.process?.name, exe: h.meta.process?.exe, hosts: [], connects: 0, lastMs: 0 };
    p.connects++;
    p.lastMs = h.meta.startedAt;
    if (!p.hosts.includes(h.meta.host) && p.hosts.length < 8) p.hosts.push(h.meta.host);
    this.listed.delete(h.pid);
    this.listed.set(h.pid, p);
    if (this.listed.size > MAX_LISTED) this.listed.delete(this.listed.keys().next().value!);
    return h.meta;
  }
}
