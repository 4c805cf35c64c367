// The eBPF process source: loads ffi/bpf/proc.bpf.c, attaches its tracepoints, and feeds a TapSink with
// process.exec / file.write activity of watched processes and metadata-only connections to AI hosts for
// processes whose TLS the uprobes cannot read. The ring buffer is drained by a Worker (proc-worker.ts).
//
// Watched processes: those that sent a ClientHello to an AI host (seen here) or made an AI call the TLS
// probes saw (watch() from there), and, in the kernel, every process they fork afterwards. A process
// forked before its parent was watched is added from /proc when the parent is. The kernel marks a process
// watched at its ClientHello already, provisionally: what it runs before this side has read the SNI (an
// agent that execs a tool right after its call) is kept when the hello was to an AI host, and dropped, with
// the mark, when it was not.
import { bpfObject } from "../../../ffi/bpf/compile.ts";
import { BpfObject, libbpfPath, possibleCpus, type BpfLink, type BpfMap } from "../../../ffi/libbpf.ts";
import type { HostActivity } from "../../tap/activity.ts";
import type { TapSink } from "../../tap/types.ts";
import type { Logger } from "../../util/log.ts";
import { startReadyWorker } from "../../util/worker-module.ts";
import { HelloTracker, type HelloStats, type MetadataOnlyProcess } from "./proc-hello.ts";
import { childrenOf, describePid, monotonicToEpochMs } from "./proc-host.ts";
import { WATCH_CONFIRMED, WATCH_PROVISIONAL, type SockAddr } from "./proc-records.ts";
import type { Observed } from "./proc-activity.ts";
import type { FromProcWorker, ProcWorkerStats, ToProcWorker } from "./proc-worker.ts";

export interface ProcCaptureOptions {
  tap: TapSink;
  log: Logger;
  /** Only these process trees exist for the probes (tests on a shared machine, --pid). Absent: the whole machine. */
  scopeRoots?: number[];
  /** Report process.exec / file.write of AI callers and their descendants (default on). */
  watchProcesses?: boolean;
  /** Report metadata-only connections from ClientHellos (default on). */
  sniff?: boolean;
  /** Whether the TLS probes delivered plaintext for this connection: then no metadata-only report. */
  plaintextSeen?: (pid: number, local: SockAddr) => boolean;
  /** How long a ClientHello waits for that plaintext. */
  holdMs?: number;
  /**
   * How long activity waits before it goes to the tap (default 500 ms): the TLS probes' bytes come through
   * another ring buffer and Worker, so the AI response that caused an exec can reach the tap after the exec;
   * held, it reaches the sensor first and the exec is linked to it.
   */
  activityDelayMs?: number;
  runId?: string;
}

export interface ProcCaptureStats {
  worker: ProcWorkerStats;
  hellos: HelloStats & { held: number };
  watched: number;
  /** Execs and file writes dropped: recorded while their process's ClientHello, to no AI host, was judged. */
  notAiDropped: number;
  /** Kernel-side counters (proc.bpf.c's proc_stats): ring buffer full per record kind, maps full. */
  kernel: Record<string, number>;
  metadataOnly: MetadataOnlyProcess[];
}

const MAX_HELD_ACTIVITY = 10_000;
const MAX_AI_CALLERS = 16_384;
const PROGRAMS = ["proc_fork", "proc_exec", "proc_exit", "proc_sys_enter", "proc_sys_exit"];
const KERNEL_COUNTERS = ["dropExec", "dropPath", "dropWrite", "dropChunk", "dropHello", "dropOther", "watchFull", "scopeFull", "pendingFull"];
const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);

export class ProcCapture {
  private readonly links: BpfLink[] = [];
  private readonly watchedMap: BpfMap;
  private readonly scopeMap: BpfMap;
  private readonly statsMap: BpfMap;
  private worker?: Worker;
  private workerStats: ProcWorkerStats = { records: 0, malformed: 0, execs: 0, fileWrites: 0, lostChunks: 0, unknownPaths: 0, merging: 0 };
  private readonly hellos: HelloTracker;
  private readonly toEpochMs = monotonicToEpochMs();
  private timer?: ReturnType<typeof setInterval>;
  private stopped?: Promise<void>;
  private watchedCount = 0;
  private notAiDropped = 0;
  /** Pids watched as AI callers (most recent last, bounded): provisional marks naming them are kept. */
  private readonly aiCallers = new Set<number>();
  private held: Observed[] = [];
  private releaseTimer?: ReturnType<typeof setTimeout>;

  private constructor(
    private readonly obj: BpfObject,
    private readonly opts: ProcCaptureOptions,
  ) {
    this.watchedMap = obj.map("proc_watched");
    this.scopeMap = obj.map("proc_scope");
    this.statsMap = obj.map("proc_stats");
    this.hellos = new HelloTracker({
      runId: opts.runId ?? `ebpf${process.pid}`,
      describe: describePid,
      plaintextSeen: opts.plaintextSeen ?? (() => false),
      holdMs: opts.holdMs,
    });
  }

  /** Loads and attaches; resolves once the ring buffer is being drained. Throws with libbpf's reason. */
  static async start(opts: ProcCaptureOptions): Promise<ProcCapture> {
    const obj = BpfObject.open(await bpfObject("proc"), "proc.bpf.o");
    let cap: ProcCapture | undefined;
    try {
      obj.load();
      cap = new ProcCapture(obj, opts);
      const settings = new Uint8Array(16);
      const v = new DataView(settings.buffer);
      v.setUint32(0, opts.scopeRoots?.length ? 1 : 0, true);
      v.setUint32(4, opts.sniff === false ? 0 : 1, true);
      v.setUint32(8, process.pid, true);
      v.setUint32(12, opts.watchProcesses === false ? 0 : 1, true);
      obj.map("proc_settings").update(u32(0), settings);
      for (const root of opts.scopeRoots ?? []) cap.addTree(cap.scopeMap, root);
      for (const p of PROGRAMS) cap.links.push(obj.attach(p));
      await cap.startWorker(obj.map("proc_events").fd);
      cap.timer = setInterval(() => cap!.onTick(), 250);
      return cap;
    } catch (err) {
      for (const l of cap?.links ?? []) l.destroy();
      obj.close();
      throw err;
    }
  }

  /** Watch a process (it made an AI call): its execs and file writes, and those of its descendants. */
  watch(pid: number): void {
    if (this.opts.watchProcesses === false || pid === process.pid || pid <= 1) return;
    this.aiCallers.delete(pid);
    this.aiCallers.add(pid);
    if (this.aiCallers.size > MAX_AI_CALLERS) this.aiCallers.delete(this.aiCallers.values().next().value!);
    this.addTree(this.watchedMap, pid);
  }

  /**
   * A ClientHello to no AI host: the kernel's provisional mark on the process, and on what it forked since,
   * is removed, so it stops reporting; what it reported meanwhile is dropped at release. A confirmed AI
   * caller talking to another host stays watched.
   */
  private unwatchProvisional(pid: number): void {
    if (this.opts.watchProcesses === false) return;
    const mark = (WATCH_PROVISIONAL | pid) >>> 0;
    if (this.watchOf(pid) === WATCH_CONFIRMED) return;
    this.aiCallers.delete(pid); // a reused pid of an earlier caller is not one
    const stack = [pid];
    const seen = new Set<number>();
    while (stack.length > 0 && seen.size < 4096) {
      const p = stack.pop()!;
      if (seen.has(p)) continue;
      seen.add(p);
      if (this.watchOf(p) !== mark) continue;
      this.watchedMap.delete(u32(p));
      stack.push(...childrenOf(p));
    }
  }

  private watchOf(pid: number): number {
    const v = this.watchedMap.lookup(u32(pid), 4);
    return v ? new DataView(v.buffer).getUint32(0, true) : 0;
  }

  stats(): ProcCaptureStats {
    return {
      worker: this.workerStats,
      hellos: this.hellos.stats(),
      watched: this.watchedCount,
      notAiDropped: this.notAiDropped,
      kernel: this.kernelCounters(),
      metadataOnly: this.hellos.metadataOnlyProcesses(),
    };
  }

  /** Detaches every probe, drains what is left, reports what is still merging. */
  close(): Promise<void> {
    this.stopped ??= (async () => {
      clearInterval(this.timer);
      for (const l of this.links.splice(0)) l.destroy();
      const w = this.worker;
      if (w) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 3000);
          w.addEventListener("message", (e: MessageEvent<FromProcWorker>) => {
            if (e.data.t === "stopped") {
              clearTimeout(t);
              resolve();
            }
          });
          w.postMessage({ t: "stop" } satisfies ToProcWorker);
        });
        w.terminate();
      }
      this.release(true);
      clearTimeout(this.releaseTimer);
      this.report(this.hellos.flush());
      this.obj.close();
    })();
    return this.stopped;
  }

  private addTree(map: BpfMap, root: number): void {
    const seen = new Set<number>();
    const stack = [root];
    while (stack.length > 0 && seen.size < 4096) {
      const pid = stack.pop()!;
      if (seen.has(pid)) continue;
      seen.add(pid);
      try {
        map.update(u32(pid), u32(WATCH_CONFIRMED)); // the scope map's members hold 1 too
        if (map === this.watchedMap) this.watchedCount++;
      } catch (err) {
        this.opts.log("warn", `ebpf: cannot watch pid ${pid}: ${(err as Error).message}`);
        return;
      }
      stack.push(...childrenOf(pid));
    }
  }

  private async startWorker(ringFd: number): Promise<void> {
    const w = await startReadyWorker<FromProcWorker>("capture/ebpf/proc-worker.ts", "oisp-ebpf-proc", (m) => this.onWorker(m), (msg) =>
      this.opts.log("error", `ebpf: process worker: ${msg}`),
    );
    w.postMessage({ t: "start", ringFd, libbpfPath: libbpfPath() } satisfies ToProcWorker);
    this.worker = w;
  }

  private onWorker(m: FromProcWorker): void {
    if (m.t === "ready") return;
    if (m.t === "error") return this.opts.log("error", `ebpf: process records: ${m.message}`);
    if (m.t === "stopped") return void (this.workerStats = m.stats);
    this.workerStats = m.stats;
    for (const h of m.hellos) {
      const pid = this.hellos.push(h, this.toEpochMs(h.tsNs));
      if (pid !== undefined) this.watch(pid);
      else this.unwatchProvisional(h.pid);
    }
    if (m.activity.length > 0) {
      this.held.push(...m.activity);
      // Bounded: a burst beyond this goes on at once (its links to AI events may then be missing).
      if (this.held.length > MAX_HELD_ACTIVITY) this.release(true);
      else this.scheduleRelease();
    }
  }

  /**
   * Hands held activity older than the delay to the tap, in order; all of it when `all`. Activity under a
   * provisional mark goes only if that process was found to call an AI host (its hello came first in the
   * ring buffer, and the TLS probes have had the delay to say so too).
   */
  private release(all = false): void {
    clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
    const cutoff = Date.now() - (this.opts.activityDelayMs ?? 500);
    let n = 0;
    while (n < this.held.length && (all || activityTime(this.held[n]!.activity) <= cutoff)) n++;
    const out: HostActivity[] = [];
    for (const o of this.held.splice(0, n)) {
      if (o.provisionalRoot === undefined || this.aiCallers.has(o.provisionalRoot)) out.push(o.activity);
      else this.notAiDropped++;
    }
    if (out.length > 0) {
      try {
        this.opts.tap.activity?.(out);
      } catch (err) {
        this.opts.log("error", `ebpf: sensor refused activity: ${(err as Error).message}`);
      }
    }
    this.scheduleRelease();
  }

  private scheduleRelease(): void {
    if (this.releaseTimer || this.held.length === 0) return;
    const wait = activityTime(this.held[0]!.activity) + (this.opts.activityDelayMs ?? 500) - Date.now();
    this.releaseTimer = setTimeout(() => this.release(), Math.max(0, Math.min(wait, 5000)));
  }

  private onTick(): void {
    this.report(this.hellos.tick(Date.now()));
  }

  private report(metas: ReturnType<HelloTracker["tick"]>): void {
    for (const meta of metas) {
      try {
        this.opts.tap.open(meta);
        this.opts.tap.close(meta.connId, meta.startedAt);
      } catch (err) {
        this.opts.log("error", `ebpf: sensor refused a connection: ${(err as Error).message}`);
      }
    }
  }

  private kernelCounters(): Record<string, number> {
    const out: Record<string, number> = {};
    const cpus = possibleCpus();
    KERNEL_COUNTERS.forEach((name, i) => {
      try {
        // per-CPU values are rounded up to 8 bytes each
        const v = this.statsMap.lookup(u32(i), 8 * cpus);
        let sum = 0n;
        if (v) for (let c = 0; c * 8 < v.length; c++) sum += new DataView(v.buffer).getBigUint64(c * 8, true);
        out[name] = Number(sum);
      } catch {
        out[name] = -1;
      }
    });
    return out;
  }
}

/** When it happened: an exec's time, a merged write's last write (it was reported after that). */
function activityTime(a: HostActivity): number {
  return a.kind === "file_write" ? a.endTs : a.ts;
}

