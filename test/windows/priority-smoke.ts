// A small program compiled like oisp (its Worker as an extra entry point), run under Wine by wine.test.ts: a
// Worker lowers its own thread's priority the way the sensor Worker does (src/util/thread-priority.ts,
// kernel32 through bun:ffi), and the main thread (the relay's, in oisp) keeps its own. One JSON line.
import { currentThreadPriority } from "../../ffi/win32.ts";

/** Where the Worker module is: beside this file when run from source, by its embedded path when compiled. */
const candidates = [new URL("./priority-worker.ts", import.meta.url).href, "./priority-worker.ts", "./test/windows/priority-worker.ts"];

function tryWorker(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const w = new Worker(url);
    w.onmessage = (e) => {
      resolve(e.data);
      void w.terminate();
    };
    w.onerror = (e) => reject(new Error(e.message));
  });
}

let worker: unknown;
const errors: string[] = [];
for (const url of candidates) {
  try {
    worker = await tryWorker(url);
    break;
  } catch (err) {
    errors.push(`${url}: ${(err as Error).message}`);
  }
}
console.log(JSON.stringify({ platform: process.platform, worker, main: currentThreadPriority(), errors: worker ? [] : errors }));
process.exit(0);
