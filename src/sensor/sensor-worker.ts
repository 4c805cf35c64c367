// The sensor of `oisp up`, on its own thread: decoding, redaction, SQLite and exporters run here so the
// relay's event loop does nothing but TLS and forwarding. Fed by worker-tap.ts (see worker-protocol.ts).
// A build entry point of the compiled binary (build.ts), like every Worker module.
import { startSensorCore, type RunningSensor } from "./core.ts";
import { durableAfter } from "./outputs.ts";
import { emptyPipelineStats } from "./pipeline.ts";
import { OP_ACTIVITY, OP_DATA, OP_OPEN, OP_WIDTH, MIN_REUSED_BYTES, payloadOffset, REUSED_BUFFERS, type FromWorker, type ToWorker, type WorkerStats } from "./worker-protocol.ts";
import type { HostActivity } from "../tap/activity.ts";
import type { ConnMeta } from "../tap/types.ts";
import { UsageError } from "../util/args.ts";
import { dropCompiledCode, idleGc } from "../util/idle-gc.ts";
import { lowerOwnThreadPriority } from "../util/thread-priority.ts";
import type { Logger } from "../util/log.ts";

declare const self: Worker;
const post = (m: FromWorker, transfer: Transferable[] = []) => self.postMessage(m, transfer);

/**
 * Counters reach the relay thread (status file, dashboard) at most this long after they changed, and not at
 * all while nothing changes: an idle sensor sends nothing, which lets both threads sleep (each wake-up also
 * costs a sweep of the thread's heap by Bun's allocator, and JSC's GC timer stays fast while anything allocates).
 */
const STATS_DELAY_MS = 250;

let sensor: RunningSensor | undefined;
let errors = 0;
let liveCount = 0;
let liveScheduled = false;
let unsubscribeLive: (() => void) | undefined;
let statsTimer: ReturnType<typeof setTimeout> | undefined;
/** When the armed stats timer is due (performance.now()); see runDueTimers. */
let statsDueAt = 0;
/** A stats message is queued for the end of this task (a commit's waiters share one). */
let statsQueued = false;
/** performance.now() of the last stats message. */
let lastPostAt = -Infinity;
/** Ops of the relay whose events are committed (the tap journal's mark), not yet reported. */
let durableUpTo: number | undefined;
/** The stats last posted (JSON), to tell a settled sensor from one whose counters still move. */
let lastPosted = "";
/**
 * Acks are coalesced: decoded bytes are acked with the next stats message (each batch arms one, due within
 * STATS_DELAY_MS), or at once when `ackBytes` of them pile up. The relay thus overcounts what is queued by less
 * than `ackBytes` (1/64 of its bound, 1 MiB of 64 MiB), for at most STATS_DELAY_MS: it may start dropping that
 * much early, never late.
 */
let ackBytes = 1;
let unacked = 0;
/** Decoded batches' buffers, handed back to the relay with the next ack or stats message (worker-protocol.ts). */
let spent: ArrayBuffer[] = [];
/**
 * Once batches stop coming: a full collection that also drops compiled code, and SQLite's cache. This thread
 * is not in a call's path, so the recompiling after a quiet period costs CPU, not latency (the relay thread
 * only collects, see worker-tap.ts).
 */
const gcWhenIdle = idleGc(10_000, () => {
  try {
    sensor?.store.releaseMemory();
  } catch (err) {
    onError(err);
  }
  dropCompiledCode();
});
/** connId of each connection number the relay has named (worker-protocol.ts), until its close. */
const connIds = new Map<number, string>();

const log: Logger = (level, msg) => post({ t: "log", level, msg });

function stats(s: RunningSensor): WorkerStats {
  return { pipeline: s.pipeline.stats(), store: s.storeOutput.stats(), exporters: s.exporters.map((e) => e.stats()), errors };
}

function onError(err: unknown): void {
  errors++;
  // Off the relay's thread: nothing above would catch this. Count it, say it, carry on.
  if (errors <= 100 || errors % 1000 === 0) log("error", `sensor: ${(err as Error)?.stack ?? err}`);
}

function runBatch(s: RunningSensor, buf: ArrayBuffer, nOps: number, strs: unknown[]): void {
  const ops = new Float64Array(buf, 0, nOps * OP_WIDTH);
  let offset = payloadOffset(nOps);
  let next = 0; // into strs
  for (let at = 0; at < ops.length; at += OP_WIDTH) {
    const op = ops[at]!;
    const no = ops[at + 1]!;
    try {
      if (op === OP_DATA) {
        const len = ops[at + 4]!;
        const bytes = new Uint8Array(buf, offset, len);
        offset += len;
        const connId = connIds.get(no);
        if (connId !== undefined) s.pipeline.data(connId, ops[at + 2] === 0 ? "c2s" : "s2c", bytes, ops[at + 3]!);
      } else if (op === OP_OPEN) {
        const meta = strs[next++] as ConnMeta;
        connIds.set(no, meta.connId);
        s.pipeline.open(meta);
      } else if (op === OP_ACTIVITY) {
        s.pipeline.activity(strs[next++] as HostActivity[]);
      } else {
        const error = ops[at + 3] === 1 ? (strs[next++] as string) : undefined;
        const connId = connIds.get(no);
        connIds.delete(no);
        if (connId !== undefined) s.pipeline.close(connId, ops[at + 2]!, error);
      }
    } catch (err) {
      onError(err);
    }
  }
}

/**
 * A Bun Worker runs no timers (nor setImmediate) while its message queue is never empty: during a burst it
 * decodes slower than the relay taps, the store's flush, the JSONL flush and the stats message (which
 * carries the acks) never fired until the burst ended. They are run here, after each batch, when due. At
 * low rates this is also where a call is committed: once nothing awaits a response, the store commits at
 * once if its last commit is old enough (outputs.ts).
 */
function runDueTimers(s: RunningSensor): void {
  const now = performance.now();
  if (!s.pipeline.awaitingResponses()) s.storeOutput.commitIfQuiet(now);
  s.storeOutput.flushIfDue(now);
  s.jsonl?.flushIfDue(now);
  if (statsTimer !== undefined && now >= statsDueAt) postStats(s);
}

function ack(bytes: number): void {
  unacked += bytes;
  if (unacked >= ackBytes) {
    post({ t: "ack", bytes: unacked, spent }, spent);
    unacked = 0;
    spent = [];
  }
}

/** Something changed: the relay thread hears of it within STATS_DELAY_MS (one timer, not re-armed per change). */
function statsSoon(): void {
  if (statsTimer !== undefined) return;
  statsDueAt = performance.now() + STATS_DELAY_MS;
  statsTimer = setTimeout(() => sensor && postStats(sensor), STATS_DELAY_MS);
}

/**
 * After a batch: its counters (and the commit at its end, runDueTimers) go with one message at the end of
 * this task, when the last went STATS_DELAY_MS ago or more, instead of a timer's wake-up later. At low
 * rates the Worker then wakes once per batch; in a burst, batches still share one message per STATS_DELAY_MS.
 */
function statsAfterBatch(): void {
  if (performance.now() - lastPostAt >= STATS_DELAY_MS) statsAfterThisTask();
  else statsSoon();
}

/** At the end of this task: after a commit, so the tap journal can drop what is stored. */
function statsAfterThisTask(): void {
  if (statsQueued) return;
  statsQueued = true;
  queueMicrotask(() => {
    statsQueued = false;
    if (sensor) postStats(sensor);
  });
}

/**
 * Posts the stats if anything changed since the last post (counters, acks not sent yet, see `ackBytes`, or
 * the durable mark), then looks again STATS_DELAY_MS later while counters can still move without a batch:
 * events waiting for the store's commit, outputs that flush on timers of their own (the JSONL export),
 * exporters that send and retry in the background. A look that finds none of them arms nothing: the sensor
 * sleeps until traffic.
 */
function postStats(s: RunningSensor): void {
  clearTimeout(statsTimer);
  statsTimer = undefined;
  const st = stats(s);
  const key = JSON.stringify(st);
  const changed = key !== lastPosted || unacked > 0 || durableUpTo !== undefined;
  if (changed) {
    post({ t: "stats", stats: st, acked: unacked, spent, ...(durableUpTo !== undefined && { durable: durableUpTo }) }, spent);
    lastPostAt = performance.now();
    lastPosted = key;
    unacked = 0;
    spent = [];
    durableUpTo = undefined;
  }
  // spooledBytes: the JSONL exporter's bytes not yet flushed (its `sent` moves when they are), or a batch
  // taken from a disk spool and being sent. Without it the last look could come before that flush and the
  // relay kept the old counters until the next call.
  if (st.store.pending > 0 || st.exporters.some((e) => e.queued > 0 || e.spooledBatches > 0 || e.spooledBytes > 0 || e.state === "retrying")) statsSoon();
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
      lowerOwnThreadPriority(m.nice); // before the store starts threads, so that they inherit it
      try {
        sensor = startSensorCore({ ...m.cfg, log });
      } catch (err) {
        post({ t: "error", message: (err as Error).message, usage: err instanceof UsageError });
        return;
      }
      ackBytes = m.ackBytes;
      post({ t: "ready", stats: stats(sensor) });
      return;
    case "batch":
      gcWhenIdle.touch();
      if (sensor) runBatch(sensor, m.buf, m.nOps, m.strs);
      // Nothing decoded keeps a view of the payload (decoders copy what they hold), so the buffer can go back.
      if (spent.length < REUSED_BUFFERS && m.buf.byteLength >= MIN_REUSED_BYTES) spent.push(m.buf);
      ack(m.bytes);
      if (sensor) {
        const { upTo, replayDone } = m;
        if (upTo !== undefined || replayDone) {
          durableAfter(sensor.storeOutput, sensor.jsonl ? [sensor.jsonl] : [])(() => {
            if (replayDone) return post({ t: "replayed" });
            durableUpTo = Math.max(durableUpTo ?? 0, upTo!);
            statsAfterThisTask();
          });
        }
        runDueTimers(sensor);
        statsAfterBatch();
      }
      return;
    case "live":
      if (sensor) setLive(sensor, m.on);
      return;
    case "close": {
      gcWhenIdle.stop();
      clearTimeout(statsTimer);
      statsTimer = undefined;
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
