// Worker: drains the probes' ring buffer, blocking in ring_buffer__poll (a blocking FFI call would block the
// main thread's event loop), and posts the records to the main thread in batches. Back-pressure: while the
// main thread has too many batches unprocessed, this thread stops polling, so the kernel's ring buffer fills
// and drops (counted there) instead of memory growing here.
import { toArrayBuffer } from "bun:ffi";
import { RingBuffer, useLibbpfAt } from "../../../ffi/libbpf.ts";

declare const self: Worker;

export interface RingWorkerStart {
  /** The libbpf the main thread loaded (the system's or the binary's copy). */
  libbpfPath: string;
  mapFd: number;
  /** Int32Array over a SharedArrayBuffer: [0] batches posted and not yet processed by the main thread. */
  pending: SharedArrayBuffer;
  maxPending: number;
  batchBytes: number;
}

export type RingWorkerMessage = { t: "ready" } | { t: "batch"; buf: ArrayBuffer; records: number } | { t: "error"; message: string } | { t: "stopped" };

let stopping = false;
postMessage({ t: "ready" } satisfies RingWorkerMessage);

self.onmessage = (e: MessageEvent<RingWorkerStart | "stop">) => {
  if (e.data === "stop") {
    stopping = true;
    return;
  }
  try {
    run(e.data);
  } catch (err) {
    postMessage({ t: "error", message: (err as Error).message } satisfies RingWorkerMessage);
  }
};

function run(start: RingWorkerStart) {
  useLibbpfAt(start.libbpfPath);
  const pending = new Int32Array(start.pending);
  let batch = new Uint8Array(start.batchBytes);
  let used = 0;
  let records = 0;
  const flush = () => {
    if (!used) return;
    const out = batch.buffer.slice(0, used);
    Atomics.add(pending, 0, 1);
    postMessage({ t: "batch", buf: out, records } satisfies RingWorkerMessage, [out]);
    used = 0;
    records = 0;
  };
  const rb = new RingBuffer(start.mapFd, (p, size) => {
    if (used + 4 + size > batch.length) {
      flush();
      if (4 + size > batch.length) batch = new Uint8Array(4 + size);
    }
    new DataView(batch.buffer).setUint32(used, size, true);
    batch.set(new Uint8Array(toArrayBuffer(p, 0, size)), used + 4);
    used += 4 + size;
    records++;
  });
  const loop = () => {
    if (stopping) {
      rb.consume();
      flush();
      rb.free();
      postMessage({ t: "stopped" } satisfies RingWorkerMessage);
      return;
    }
    if (Atomics.load(pending, 0) >= start.maxPending) {
      Atomics.wait(pending, 0, Atomics.load(pending, 0), 20);
    } else {
      rb.poll(250); // returns at once when records arrive: the timeout only bounds how late "stop" is seen
      flush();
    }
    setImmediate(loop); // lets the stop message in
  };
  loop();
}
