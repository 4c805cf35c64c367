// A Worker for thread-priority.test.ts: lowers its own thread, then starts a thread of its own (a nested
// Worker named by the test) and reports its own nice value once that thread is up.
import os from "node:os";
import { lowerOwnThreadPriority } from "../../../src/util/thread-priority.ts";

declare const self: Worker;
self.onmessage = (e: MessageEvent<{ nice: number; childName: string }>) => {
  const after = lowerOwnThreadPriority(e.data.nice);
  const child = new Worker(new URL("./idle-child.ts", import.meta.url), { name: e.data.childName });
  child.onmessage = () => self.postMessage({ after, own: os.getPriority(0) });
};
