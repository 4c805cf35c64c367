// src/util/thread-priority.ts on Linux, with real threads: a thread that lowers itself passes its nice value
// to the threads it starts afterwards (the sensor Worker's GC and SQLite threads), and leaves the rest of the
// process alone. Before, the Worker was reniced from outside by its name, and a thread it started in between
// kept nice 0.
import { afterEach, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";

const workers: Worker[] = [];
afterEach(() => {
  for (const w of workers.splice(0)) w.terminate();
});

function nicesNamed(name: string): number[] {
  const nices: number[] = [];
  for (const tid of fs.readdirSync("/proc/self/task")) {
    try {
      if (fs.readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim() !== name) continue;
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      nices.push(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]));
    } catch {
      // the thread ended
    }
  }
  return nices;
}

test.if(process.platform === "linux")("a thread that lowers itself: its own nice value, inherited by the threads it starts, the rest unchanged", async () => {
  const before = os.getPriority(0);
  const nice = Math.max(before, 12);
  const childName = `pchild-${process.pid}`; // thread names are cut at 15 characters
  const parent = new Worker(new URL("../support/workers/lowered-parent.ts", import.meta.url), { name: `pparent-${process.pid}` });
  workers.push(parent);
  const report = await new Promise<{ after: number; own: number }>((resolve, reject) => {
    parent.onmessage = (e) => resolve(e.data);
    parent.onerror = (e) => reject(new Error(e.message));
    parent.postMessage({ nice, childName });
  });
  expect(report).toEqual({ after: nice, own: nice });
  const children = nicesNamed(childName);
  expect(children.length).toBeGreaterThan(0);
  for (const n of children) expect(n).toBe(nice);
  expect(os.getPriority(0)).toBe(before);
});
