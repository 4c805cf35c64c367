// Messages between `oisp up`'s relay thread (worker-tap.ts) and the sensor worker (sensor-worker.ts).
// Tap frames travel in batches (every few ms, see worker-tap.ts): `ops` is a flat list of records and the
// payload bytes of all data records are packed, in order, into one transferred ArrayBuffer.
import type { ExporterStats } from "../sinks/queue.ts";
import type { SensorConfig } from "./core.ts";
import type { PipelineStats } from "./pipeline.ts";

/** SensorConfig without its logger, which cannot cross threads (derived, so the two cannot drift apart). */
export type WorkerSensorConfig = Omit<SensorConfig, "log">;

export const OP_OPEN = 0; // OP_OPEN, meta
export const OP_DATA = 1; // OP_DATA, connId, dir (0 c2s, 1 s2c), ts, byteLength
export const OP_CLOSE = 2; // OP_CLOSE, connId, ts, error | null

export type ToWorker =
  | { t: "init"; cfg: WorkerSensorConfig }
  | { t: "batch"; ops: unknown[]; buf: ArrayBuffer; bytes: number }
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
  /** A batch was decoded: its bytes no longer count against the relay's queue bound. */
  | { t: "ack"; bytes: number }
  | { t: "stats"; stats: WorkerStats }
  | { t: "events"; n: number }
  | { t: "log"; level: "debug" | "info" | "warn" | "error"; msg: string }
  | { t: "closed"; stats: WorkerStats };
