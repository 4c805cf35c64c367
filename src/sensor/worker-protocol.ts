// Messages between `oisp up`'s relay thread (worker-tap.ts) and the sensor worker (sensor-worker.ts).
// Tap frames travel in batches (every few ms, see worker-tap.ts) as ONE transferred ArrayBuffer: a header of
// `nOps` float64 op records, then the payload bytes of all data records, packed in order. Structured clone
// then only walks `strs` (connection metadata, close errors: one per connection), never a string per chunk.
import type { ExporterStats } from "../sinks/queue.ts";
import type { SensorConfig } from "./core.ts";
import type { PipelineStats } from "./pipeline.ts";

/** SensorConfig without its logger, which cannot cross threads (derived, so the two cannot drift apart). */
export type WorkerSensorConfig = Omit<SensorConfig, "log">;

/**
 * Op records, OP_WIDTH float64 each (unused slots 0). A connection is named once, by its OP_OPEN (the meta
 * from `strs`), and then referred to by a small integer `conn`, released at OP_CLOSE.
 */
export const OP_OPEN = 0; // OP_OPEN, conn + next strs item: ConnMeta
export const OP_DATA = 1; // OP_DATA, conn, dir (0 c2s, 1 s2c), ts, byteLength
export const OP_CLOSE = 2; // OP_CLOSE, conn, ts, hasError (1: next strs item is the error string)
export const OP_ACTIVITY = 3; // OP_ACTIVITY, 0 + next strs item: HostActivity[] (in order with the connections' ops)
export const OP_WIDTH = 5;

/**
 * Batch buffers the worker hands back and the relay keeps for reuse, at most. Under steady traffic one batch
 * is in flight at a time (it comes back with the stats of its own task); a burst that outruns the worker
 * takes fresh ones meanwhile.
 */
export const REUSED_BUFFERS = 2;
/**
 * Batch buffers smaller than this are neither reused nor handed back: a small new buffer comes from memory the
 * allocator still holds (no page faults), and a buffer crossing threads counts as that much new memory in the
 * receiving thread's heap, which brings its next collection closer (at 10 calls/s, 64 KiB buffers sent both
 * ways every second: more collections than the 10 KiB batches they carried).
 */
export const MIN_REUSED_BYTES = 32 * 1024;

/** Where a batch's payload bytes start in its buffer: after its `nOps` op records. */
export function payloadOffset(nOps: number): number {
  return nOps * OP_WIDTH * Float64Array.BYTES_PER_ELEMENT;
}

export type ToWorker =
  /** `ackBytes`: decoded bytes the worker may hold back before acking outside the stats tick (see sensor-worker.ts). */
  | { t: "init"; cfg: WorkerSensorConfig; ackBytes: number; /** the nice value the Worker lowers its own thread to (Linux) */ nice: number }
  /**
   * `buf`: the `nOps` op records, then `bytes` payload bytes from payloadOffset(nOps) (a reused buffer may be
   * longer). The worker hands `buf` back for reuse once decoded ("ack" or "stats" `spent`): its payload is lent
   * for the batch's task only, as TapSink.data's bytes are for the call.
   */
  /** `upTo`: ops the relay has tapped through this batch; a later "stats" says `durable` once their events are committed. */
  /** `replayDone`: the last batch replayed from a journal at start; answered with "replayed" once committed. */
  | { t: "batch"; buf: ArrayBuffer; nOps: number; bytes: number; strs: unknown[]; upTo?: number; replayDone?: boolean }
  /** Whether to report event counts (only while a dashboard or terminal view listens). */
  | { t: "live"; on: boolean }
  | { t: "close" };

export interface WorkerStats {
  pipeline: PipelineStats;
  store: { written: number; dropped: number; pending: number; lastError?: string };
  exporters: ExporterStats[];
  /** Tap items the sensor threw on (counted, never fatal). */
  errors: number;
}

export type FromWorker =
  | { t: "ready"; stats: WorkerStats }
  | { t: "error"; message: string; usage: boolean }
  /**
   * Batches were decoded: their payload bytes no longer count against the relay's queue bound. `spent`: their
   * buffers, transferred back for the relay's next batches (a fresh large buffer costs a page fault per 4 KiB).
   */
  | { t: "ack"; bytes: number; spent: ArrayBuffer[] }
  /**
   * Sent only after something changed (see sensor-worker.ts). `acked`: payload bytes decoded since the last
   * ack (acks ride on stats unless they pile up), `spent` their buffers, as with "ack". `durable`: the events of
   * every op before it are committed (store and JSONL): the tap journal may forget them.
   */
  | { t: "stats"; stats: WorkerStats; acked: number; spent: ArrayBuffer[]; durable?: number }
  | { t: "events"; n: number }
  | { t: "replayed" }
  | { t: "log"; level: "debug" | "info" | "warn" | "error"; msg: string }
  | { t: "closed"; stats: WorkerStats };
