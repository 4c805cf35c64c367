// What the eBPF process capture reads from the host itself: /proc facts about a pid, and the clock that
// turns the probes' CLOCK_MONOTONIC nanoseconds into epoch milliseconds.
import fs from "node:fs";
import { monotonicNs } from "../../../ffi/libbpf.ts";
import { describeProcess } from "../process/describe.ts";
import type { ProcessInfo } from "../../tap/types.ts";

/** pid → name, exe, ppid, uid, cmdline from /proc (uid: the owner of /proc/PID); only what can be read. */
export function describePid(pid: number): ProcessInfo {
  let uid: number | undefined;
  try {
    uid = fs.statSync(`/proc/${pid}`).uid;
  } catch {
    return { pid }; // gone
  }
  return describeProcess("/proc", pid, uid);
}

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
