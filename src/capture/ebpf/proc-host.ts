// What the eBPF process capture reads from the host itself: /proc facts about a pid, and the clock that
// turns the probes' CLOCK_MONOTONIC nanoseconds into epoch milliseconds.
import { dlopen, ptr, type Pointer } from "bun:ffi";
import fs from "node:fs";
import type { ProcessInfo } from "../../tap/types.ts";

/** pid → name, exe, ppid, uid, cmdline from /proc; what cannot be read (process gone) is left out. */
export function describePid(pid: number): ProcessInfo {
  const out: ProcessInfo = { pid };
  const read = (f: string) => {
    try {
      return fs.readFileSync(`/proc/${pid}/${f}`, "utf8");
    } catch {
      return undefined;
    }
  };
  const status = read("status");
  if (status) {
    const name = /^Name:\s*(.*)$/m.exec(status)?.[1];
    const ppid = /^PPid:\s*(\d+)/m.exec(status)?.[1];
    const uid = /^Uid:\s*(\d+)/m.exec(status)?.[1];
    if (name) out.name = name;
    if (ppid) out.ppid = Number(ppid);
    if (uid) out.uid = Number(uid);
  }
  try {
    out.exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // gone, or a kernel thread
  }
  const cmdline = read("cmdline");
  if (cmdline) out.cmdline = cmdline.replace(/\0+$/, "").split("\0").join(" ");
  return out;
}

/** CLOCK_MONOTONIC in ns through libc (Bun's process.hrtime counts from the process start instead). */
function monotonicNs(): bigint {
  const ts = new BigInt64Array(2);
  const rc = libcClock().clock_gettime(CLOCK_MONOTONIC, ptr(ts));
  if (rc !== 0) throw new Error("clock_gettime(CLOCK_MONOTONIC) failed");
  return ts[0]! * 1_000_000_000n + ts[1]!;
}

let clockLib: { clock_gettime: (id: number, p: Pointer) => number } | undefined;
function libcClock() {
  clockLib ??= dlopen("libc.so.6", { clock_gettime: { args: ["i32", "ptr"], returns: "i32" } }).symbols;
  return clockLib;
}
const CLOCK_MONOTONIC = 1;

/** bpf_ktime_get_ns() is CLOCK_MONOTONIC: one offset to the wall clock, taken now. */
export function monotonicToEpochMs(): (tsNs: bigint) => number {
  const offsetMs = Date.now() - Number(monotonicNs()) / 1e6;
  return (tsNs) => offsetMs + Number(tsNs) / 1e6;
}

/** The live children of a process (all its threads'), from /proc. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const c of fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" ")) if (c.trim()) out.push(Number(c));
    } catch {
      // thread gone
    }
  }
  return out;
}
