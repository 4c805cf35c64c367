// eBPF TLS capture: loads ffi/bpf/tls.bpf.c, puts its uprobes on every OpenSSL in use (targets.ts), drains
// its ring buffer in a Worker (ring-worker.ts) and turns the records into tap connections (streams.ts).
// A second capture source beside the proxy: the sensor behind the tap does not know where bytes came from.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { bpfObject } from "../../../ffi/bpf/compile.ts";
import { BpfObject, captureLibbpfPrint, monotonicNs, possibleCpus, prepareLibbpf, type BpfLink, type BpfMap } from "../../../ffi/libbpf.ts";
import { isAiHost } from "../../spec/endpoints.ts";
import { nowMs, type ProcessInfo, type TapSink } from "../../tap/types.ts";
import type { Logger } from "../../util/log.ts";
import { startReadyWorker } from "../../util/worker-module.ts";
import { describeProcess, UserNames } from "../process/describe.ts";
import { ebpfPreflight } from "./preflight.ts";
import { batchRecords, decodeRecord } from "./records.ts";
import type { RingWorkerMessage, RingWorkerStart } from "./ring-worker.ts";
import { TlsStreams, type StreamsStats } from "./streams.ts";
import { TargetFinder, type SslFunction, type TlsTarget } from "./targets.ts";

export interface EbpfCaptureOptions {
  tap: TapSink;
  log: Logger;
  /** Capture only these processes and their descendants (filtered in the kernel). Default: every process. */
  pids?: number[];
  /** How often every process's mappings are looked at for new TLS libraries (ms). */
  rescanMs?: number;
  /** Ring buffer size in bytes (a power of two). */
  ringBytes?: number;
  /** Capture paused: new TLS sessions are not recorded. */
  paused?: () => boolean;
  /** Where the binary's own libbpf is extracted when the system has none (a root-only directory). */
  libDir?: string;
  /** Record TLS to every host, not only known AI endpoints (by SNI). */
  allTraffic?: boolean;
}

export interface AttachedTarget {
  path: string;
  kind: TlsTarget["kind"];
  functions: SslFunction[];
}

export interface EbpfStats {
  attached: AttachedTarget[];
  /** Targets found but not attachable, with why. */
  failed: Array<{ path: string; error: string }>;
  records: number;
  recordsPerSec: number;
  /** Records the kernel could not put in the ring buffer. */
  ringDrops: number;
  /** Payload bytes not delivered (ring buffer full, unreadable buffers). */
  lostBytes: number;
  sslCalls: number;
  streams: StreamsStats;
  /** The process source beside the TLS probes (proc-capture.ts), when it runs. */
  proc?: import("./proc-capture.ts").ProcCaptureStats;
}

export interface EbpfCapture {
  stats(): EbpfStats;
  /** Looks for new TLS libraries now (also done every rescanMs and after each exec). */
  rescan(): void;
  stop(): Promise<void>;
}

const ENTRY_PROGRAM: Record<Exclude<SslFunction, "SSL_ctrl">, string> = {
  SSL_write: "ssl_write_enter",
  SSL_read: "ssl_read_enter",
  SSL_write_ex: "ssl_write_ex_enter",
  SSL_read_ex: "ssl_read_ex_enter",
};
const TRACEPOINTS = ["sys_enter", "process_fork", "process_exit", "process_exec"];
const STAT = { records: 0, dropped: 1, lostBytes: 2, calls: 3 } as const;
const MAX_PENDING_BATCHES = 64;
/** After an exec, the process's mappings are read again after each of these delays. */
const EXEC_RESCAN_DELAYS_MS = [20, 500, 2000];

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);

export async function startEbpfCapture(opts: EbpfCaptureOptions): Promise<EbpfCapture> {
  ebpfPreflight();
  const { log } = opts;
  const libbpf = await prepareLibbpf(opts.libDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "oisp-lib-")));
  if (libbpf !== "libbpf.so.1") log("info", `ebpf: using the libbpf carried by oisp (${libbpf}): the system has no libbpf 1.x`);
  captureLibbpfPrint((level, line) => {
    if (level === 0) log("debug", `libbpf: ${line}`);
  });
  const obj = BpfObject.open(await bpfObject("tls"), "tls.bpf.o");
  const links: BpfLink[] = [];
  let worker: Worker | undefined;
  const timers: Array<ReturnType<typeof setInterval>> = [];
  try {
    if (opts.ringBytes) obj.map("events").setMaxEntries(opts.ringBytes);
    obj.load();
    const settings = obj.map("settings");
    if (opts.pids) {
      const traced = obj.map("traced_pids");
      for (const pid of opts.pids) traced.update(u32(pid), new Uint8Array([1]));
      settings.update(u32(0), new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]));
    }
    for (const tp of TRACEPOINTS) links.push(obj.attach(tp));
  } catch (err) {
    for (const l of links) l.destroy();
    obj.close();
    throw err;
  }
  const statsMap = obj.map("stats");
  const mutedMap = obj.map("muted");
  const cpus = possibleCpus();

  // Attachments, one set per file.
  const attached: AttachedTarget[] = [];
  const failed: EbpfStats["failed"] = [];
  const finder = new TargetFinder();
  const attach = (t: TlsTarget) => {
    const fns: SslFunction[] = [];
    const mine: BpfLink[] = [];
    try {
      for (const fn of t.symbols) {
        if (fn === "SSL_ctrl") {
          mine.push(obj.attachUprobe("ssl_ctrl_enter", { binaryPath: t.path, funcName: fn, retprobe: false }));
        } else {
          mine.push(obj.attachUprobe(ENTRY_PROGRAM[fn], { binaryPath: t.path, funcName: fn, retprobe: false }));
          mine.push(obj.attachUprobe("ssl_return", { binaryPath: t.path, funcName: fn, retprobe: true }));
        }
        fns.push(fn);
      }
    } catch (err) {
      for (const l of mine) l.destroy();
      // Found through a process that exited before the attachment: a later sighting may succeed.
      if (!fs.existsSync(t.path)) finder.forget(t);
      failed.push({ path: t.shownPath, error: (err as Error).message });
      if (failed.length > 100) failed.shift();
      log("warn", `ebpf: cannot attach to ${t.shownPath}: ${(err as Error).message}`);
      return;
    }
    links.push(...mine);
    attached.push({ path: t.shownPath, kind: t.kind, functions: fns });
    log("info", `ebpf: TLS probes on ${t.shownPath}${t.pid ? ` (seen in pid ${t.pid})` : ""}`);
  };
  const rescan = (pids?: Iterable<number>) => {
    for (const t of finder.scan(pids)) attach(t);
  };
  for (const t of finder.systemTargets()) attach(t);
  rescan();

  // CLOCK_MONOTONIC → epoch, refreshed on each tick (the wall clock may be stepped).
  let offsetMs = 0;
  const syncClock = () => {
    offsetMs = nowMs() - Number(monotonicNs()) / 1e6;
  };
  syncClock();
  const users = new UserNames();
  // /proc is read as soon as a pid shows up (its exec, SNI or first data record), not when its connection
  // opens: a short-lived client (curl) may be gone by then, taking its command line with it.
  const processes = new Map<number, ProcessInfo>();
  const readProcess = (pid: number): ProcessInfo => {
    let uid = -1;
    try {
      uid = fs.statSync(`/proc/${pid}`).uid;
    } catch {
      // exited already: the probe's pid and comm remain
    }
    const info: ProcessInfo = uid >= 0 ? describeProcess("/proc", pid, uid) : { pid };
    const user = uid >= 0 ? users.name(uid) : undefined;
    if (user) info.user = user;
    return info;
  };
  const remember = (pid: number, fresh: boolean) => {
    if (!fresh && processes.has(pid)) return;
    const info = readProcess(pid);
    processes.delete(pid);
    processes.set(pid, info);
    if (processes.size > 4096) processes.delete(processes.keys().next().value!);
  };
  const streams = new TlsStreams({
    tap: opts.tap,
    runId: `ebpf-${process.pid}-${Date.now().toString(36)}`,
    paused: opts.paused,
    wanted: opts.allTraffic ? undefined : (host, port) => isAiHost(host, port),
    onIgnored: (pid, ssl) => {
      const key = new Uint8Array(16);
      const v = new DataView(key.buffer);
      v.setUint32(0, pid, true);
      v.setBigUint64(8, ssl, true);
      try {
        mutedMap.update(key, new Uint8Array([1]));
      } catch {
        // the map is an LRU: never full; a failure only means the bytes keep coming and are dropped here
      }
    },
    toEpochMs: (ts) => Number(ts) / 1e6 + offsetMs,
    describe: (pid, comm) => {
      const known = processes.get(pid);
      // Read at the pid's first record; a fresh read now only if the program changed since (exec).
      const info = known && (!comm || known.name === comm || !known.name) ? { ...known } : readProcess(pid);
      if (!info.name && comm) info.name = comm;
      return info;
    },
  });

  // Processes that just ran a new program: the loader maps linked libraries within milliseconds, and
  // interpreters load theirs when the program imports them (Python's ssl), so look again a little later.
  // A full rescan of every process is rarer (rescanMs): its cost grows with the number of processes.
  const execWaves = EXEC_RESCAN_DELAYS_MS.map((delay) => ({ delay, pids: new Set<number>(), timer: undefined as ReturnType<typeof setTimeout> | undefined }));
  const onExec = (pid: number) => {
    for (const w of execWaves) {
      if (w.pids.size >= 4096) continue; // an exec storm: the full rescan catches up
      w.pids.add(pid);
      w.timer ??= setTimeout(() => {
        w.timer = undefined;
        const pids = [...w.pids];
        w.pids.clear();
        rescan(pids);
      }, w.delay);
    }
  };

  // The ring buffer, drained by a Worker.
  const pending = new SharedArrayBuffer(4);
  const pendingCount = new Int32Array(pending);
  let records = 0;
  let stopped: (() => void) | undefined;
  const onMessage = (m: RingWorkerMessage) => {
    if (m.t === "batch") {
      Atomics.sub(pendingCount, 0, 1);
      records += m.records;
      for (const bytes of batchRecords(new Uint8Array(m.buf))) {
        const r = decodeRecord(bytes);
        if (!r) continue;
        if (r.kind === "exec") {
          remember(r.pid, true);
          onExec(r.pid);
        } else if (r.kind === "sni" || r.kind === "data") {
          remember(r.pid, false);
        }
        streams.push(r);
      }
    } else if (m.t === "error") {
      log("error", `ebpf: ring buffer worker: ${m.message}`);
    } else if (m.t === "stopped") {
      stopped?.();
    }
  };
  try {
    worker = await startRingWorker(onMessage);
  } catch (err) {
    for (const l of links) l.destroy();
    obj.close();
    throw err;
  }
  worker.postMessage({ libbpfPath: libbpf, mapFd: obj.map("events").fd, pending, maxPending: MAX_PENDING_BATCHES, batchBytes: 1 << 20 } satisfies RingWorkerStart);

  timers.push(
    setInterval(() => {
      syncClock();
      streams.tick(nowMs());
    }, 500),
  );
  timers.push(setInterval(() => rescan(), opts.rescanMs ?? 30_000));
  for (const t of timers) t.unref();

  // Records per second over the last few seconds, sampled on each stats() call.
  let rate = { at: nowMs(), records: 0, perSec: 0 };
  const kernelStat = (map: BpfMap, i: number) => {
    const v = map.lookup(u32(i), 8 * cpus);
    if (!v) return 0;
    const dv = new DataView(v.buffer);
    let n = 0;
    for (let c = 0; c < cpus; c++) n += Number(dv.getBigUint64(c * 8, true));
    return n;
  };

  return {
    stats() {
      const now = nowMs();
      if (now - rate.at >= 1000) rate = { at: now, records, perSec: Math.round(((records - rate.records) * 1000) / (now - rate.at)) };
      return {
        attached: [...attached],
        failed: [...failed],
        records,
        recordsPerSec: rate.perSec,
        ringDrops: kernelStat(statsMap, STAT.dropped),
        lostBytes: kernelStat(statsMap, STAT.lostBytes),
        sslCalls: kernelStat(statsMap, STAT.calls),
        streams: streams.stats(),
      };
    },
    rescan: () => rescan(),
    async stop() {
      for (const t of timers) clearInterval(t);
      for (const w of execWaves) if (w.timer) clearTimeout(w.timer);
      // Detach first: no new records; then let the Worker drain what is in the ring buffer.
      for (const l of links) l.destroy();
      if (worker) {
        const w = worker;
        worker = undefined;
        await new Promise<void>((resolve) => {
          stopped = resolve;
          w.postMessage("stop");
          setTimeout(resolve, 2000).unref();
        });
        w.terminate();
      }
      streams.closeAll(nowMs(), "capture stopped");
      obj.close();
    },
  };
}

/** The ring-buffer Worker, from the first module candidate that loads (source tree or compiled binary). */
function startRingWorker(onMessage: (m: RingWorkerMessage) => void): Promise<Worker> {
  return startReadyWorker<RingWorkerMessage>("capture/ebpf/ring-worker.ts", "oisp-ebpf-ring", onMessage, (msg) => onMessage({ t: "error", message: msg }));
}
