// Worker: drains proc.bpf.c's ring buffer (ring_buffer__poll blocks), decodes the records and merges file
// writes (hashing their content here, off the main thread). Posts activity and ClientHellos to the main
// thread, which owns the BPF object and its maps.
import { toArrayBuffer } from "bun:ffi";
import { RingBuffer, useLibbpfAt } from "../../../ffi/libbpf.ts";
import { ProcActivity } from "./proc-activity.ts";
import { decodeRecord, type ProcRecord } from "./proc-records.ts";
import { describePid, monotonicToEpochMs } from "./proc-host.ts";

/** libbpfPath: the libbpf the main thread loaded (the system's, or the binary's own copy). */
export type ToProcWorker = { t: "start"; ringFd: number; libbpfPath: string } | { t: "stop" };
export type FromProcWorker =
  /** The module loaded (in a compiled binary the first candidate path may not exist: see workerCandidates). */
  | { t: "ready" }
  | { t: "batch"; activity: ReturnType<ProcActivity["takeObserved"]>; hellos: Array<Extract<ProcRecord, { type: "hello" }>>; stats: ProcWorkerStats }
  | { t: "error"; message: string }
  | { t: "stopped"; stats: ProcWorkerStats };

export interface ProcWorkerStats {
  records: number;
  malformed: number;
  execs: number;
  fileWrites: number;
  lostChunks: number;
  unknownPaths: number;
  merging: number;
}

declare const self: Worker;
const post = (m: FromProcWorker) => self.postMessage(m);

let running = false;
let rb: RingBuffer | undefined;
const counters = { records: 0, malformed: 0 };
/** Made at start: its clock reads CLOCK_MONOTONIC through libc, loaded beside libbpf. */
let activity: ProcActivity;
let hellos: Array<Extract<ProcRecord, { type: "hello" }>> = [];

function stats(): ProcWorkerStats {
  return { ...counters, ...activity.stats() };
}

function onRecord(p: import("bun:ffi").Pointer, size: number): void {
  counters.records++;
  const rec = decodeRecord(new Uint8Array(toArrayBuffer(p, 0, size)));
  if (!rec) return void counters.malformed++;
  if (rec.type === "hello") hellos.push({ ...rec, data: rec.data.slice() });
  else activity.push(rec);
}

/** Polls in slices so messages (stop) get through; posts what each slice produced. */
async function loop(): Promise<void> {
  let lastStats = 0;
  while (running && rb) {
    try {
      rb.poll(250);
    } catch (err) {
      post({ t: "error", message: (err as Error).message });
      break;
    }
    const now = Date.now();
    activity.tick(now);
    const items = activity.takeObserved();
    if (items.length > 0 || hellos.length > 0 || now - lastStats > 1000) {
      post({ t: "batch", activity: items, hellos, stats: stats() });
      hellos = [];
      lastStats = now;
    }
    await new Promise((r) => setTimeout(r, 0)); // let onmessage run
  }
  rb?.consume();
  activity.flushAll();
  post({ t: "batch", activity: activity.takeObserved(), hellos, stats: stats() });
  rb?.free();
  rb = undefined;
  post({ t: "stopped", stats: stats() });
}

self.onmessage = (e: MessageEvent<ToProcWorker>) => {
  const m = e.data;
  if (m.t === "start") {
    try {
      useLibbpfAt(m.libbpfPath);
      activity = new ProcActivity({
        toEpochMs: monotonicToEpochMs(),
        describe: (pid) => {
          const p = describePid(pid);
          return { comm: p.name, exe: p.exe, ppid: p.ppid, uid: p.uid };
        },
      });
      rb = new RingBuffer(m.ringFd, onRecord);
    } catch (err) {
      post({ t: "error", message: (err as Error).message });
      return;
    }
    running = true;
    void loop();
  } else if (m.t === "stop") {
    running = false;
  }
};

post({ t: "ready" });
