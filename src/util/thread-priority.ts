// Lower scheduling priority for a background thread of this process, found by its name (Linux: the thread
// names are /proc/self/task/<tid>/comm; Bun names a Worker's threads after its `name` option). Linux applies
// setpriority to one thread when given its id. Work that can wait (decoding, storing) then yields a shared
// CPU to the threads a user's call waits on (the relay, the client, the upstream) instead of taking turns
// with them. Only ever raises the nice value, which needs no privilege.
// A thread also lowers itself first thing (lowerOwnThreadPriority, called by the Worker before it opens
// anything): the threads it starts afterwards (JSC's GC helpers, SQLite's) inherit its nice value at their
// creation, which a sweep by name from another thread races (a thread born between the sweep's listing and
// its parent's renice kept nice 0). On Windows: SetThreadPriority one step below normal. Windows priorities are
// strict, not weights like nice, so one step already yields the CPU to every normal thread that wants it; the
// sensor's queue is bounded either way (dropped bytes are counted). Not measured on Windows.
import fs from "node:fs";
import os from "node:os";
import { lowerCurrentThreadPriority, THREAD_PRIORITY_BELOW_NORMAL } from "../../ffi/win32.ts";

/** Sets `nice` on every thread of this process named `name` that runs at a higher priority; returns how many threads carry the name. */
export function lowerThreadPriority(name: string, nice: number): number {
  if (process.platform !== "linux") return 0;
  let found = 0;
  let tids: string[];
  try {
    tids = fs.readdirSync("/proc/self/task");
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      if (fs.readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim() !== name) continue;
      found++;
      if (os.getPriority(Number(tid)) < nice) os.setPriority(Number(tid), nice);
    } catch {
      // the thread ended, or no permission: it keeps its priority
    }
  }
  return found;
}

/**
 * The calling thread at a lower priority: nice `nice` on Linux (setpriority on pid 0 is the calling thread
 * there), one step below normal on Windows. Returns its priority afterwards (undefined elsewhere or on failure).
 */
export function lowerOwnThreadPriority(nice: number): number | undefined {
  try {
    if (process.platform === "linux") {
      if (os.getPriority(0) < nice) os.setPriority(0, nice);
      return os.getPriority(0);
    }
    if (process.platform === "win32") return lowerCurrentThreadPriority(THREAD_PRIORITY_BELOW_NORMAL);
  } catch {
    // no permission, or kernel32 not loadable: the thread keeps its priority
  }
  return undefined;
}
