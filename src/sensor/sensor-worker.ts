// The sensor of `oisp up`, on its own thread: decoding, redaction, SQLite and exporters run here so the
// relay's event loop does nothing but TLS and forwarding. Fed by worker-tap.ts (see worker-protocol.ts).
// A build entry point of the compiled binary (build.ts), like every Worker module.
import { startSensorCore, type RunningSensor } from "./core.ts";
import { emptyPipelineStats } from "./pipeline.ts";
import { OP_DATA, OP_OPEN, type FromWorker, type ToWorker, type WorkerStats } from "./worker-protocol.ts";
import type { ConnMeta } from "../capture/types.ts";
import { UsageError } from "../util/args.ts";
import type { Logger } from "../util/log.ts";

declare const self: Worker;
const post = (m: FromWorker) => self.postMessage(m);

/** Counters reach the relay thread this often (status file, dashboard). */
const STATS_INTERVAL_MS = 250;

let sensor: RunningSensor | undefined;
let errors = 0;
let liveCount = 0;
let liveScheduled = false;
let unsubscribeLive: (() => void) | undefined;
let statsTimer: ReturnType<typeof setInterval> | undefined;

const log: Logger = (level, msg) => post({ t: "log", level, msg });

function stats(s: RunningSensor): WorkerStats {
  return { pipeline: s.pipeline.stats(), store: s.storeOutput.stats(), exporters: s.exporters.map((e) => e.stats()), errors };
}

function onError(err: unknown): void {
  errors++;
  // Off the relay's thread: nothing above would catch this. Count it, say it, carry on.
  if (errors <= 100 || errors % 1000 === 0) log("error", `sensor: ${(err as Error)?.stack ?? err}`);
}

function runBatch(s: RunningSensor, ops: unknown[], buf: ArrayBuffer): void {
  let offset = 0;
  for (let i = 0; i < ops.length; ) {
    const op = ops[i] as number;
    try {
      if (op === OP_OPEN) {
        const meta = ops[i + 1] as ConnMeta;
        i += 2;
        s.pipeline.open(meta);
      } else if (op === OP_DATA) {
        const connId = ops[i + 1] as string;
        const dir = ops[i + 2] === 0 ? "c2s" : "s2c";
        const ts = ops[i + 3] as number;
        const len = ops[i + 4] as number;
        i += 5;
        const bytes = new Uint8Array(buf, offset, len);
        offset += len;
        s.pipeline.data(connId, dir, bytes, ts);
      } else {
        const connId = ops[i + 1] as string;
        const ts = ops[i + 2] as number;
        const error = ops[i + 3] as string | null;
        i += 4;
        s.pipeline.close(connId, ts, error ?? undefined);
      }
    } catch (err) {
      onError(err);
    }
  }
}

function setLive(s: RunningSensor, on: boolean): void {
  if (on && !unsubscribeLive) {
    unsubscribeLive = s.live.subscribe((events) => {
      liveCount += events.length;
      if (liveScheduled) return;
      liveScheduled = true;
      setImmediate(() => {
        liveScheduled = false;
        const n = liveCount;
        liveCount = 0;
        if (n > 0) post({ t: "events", n });
      });
    });
  } else if (!on && unsubscribeLive) {
    unsubscribeLive();
    unsubscribeLive = undefined;
  }
}

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  switch (m.t) {
    case "init":
      try {
        sensor = startSensorCore({ ...m.cfg, log });
      } catch (err) {
        post({ t: "error", message: (err as Error).message, usage: err instanceof UsageError });
        return;
      }
      statsTimer = setInterval(() => sensor && post({ t: "stats", stats: stats(sensor) }), STATS_INTERVAL_MS);
      post({ t: "ready", stats: stats(sensor) });
      return;
    case "batch":
      if (sensor) runBatch(sensor, m.ops, m.buf);
      post({ t: "ack", bytes: m.bytes });
      return;
    case "live":
      if (sensor) setLive(sensor, m.on);
      return;
    case "close": {
      clearInterval(statsTimer);
      const s = sensor;
      sensor = undefined;
      if (!s) return post({ t: "closed", stats: emptyStats() });
      try {
        await s.close();
      } catch (err) {
        log("error", `sensor: closing: ${(err as Error).message}`);
      }
      post({ t: "closed", stats: stats(s) });
      return;
    }
  }
};

function emptyStats(): WorkerStats {
  return {
    pipeline: emptyPipelineStats(),
    store: { written: 0, dropped: 0, pending: 0 },
    exporters: [],
    errors,
  };
}
