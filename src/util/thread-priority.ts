// Lower scheduling priority for a background thread of this process, found by its name (Linux: the thread
// names are /proc/self/task/<tid>/comm; Bun names a Worker's threads after its `name` option). Linux applies
// setpriority to one thread when given its id. Work that can wait (decoding, storing) then yields a shared
// CPU to the threads a user's call waits on (the relay, the client, the upstream) instead of taking turns
// with them. Only ever raises the nice value, which needs no privilege. Elsewhere: nothing (not measured).
import fs from "node:fs";
import os from "node:os";

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
