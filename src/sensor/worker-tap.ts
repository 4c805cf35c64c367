// `oisp up`'s relay thread side of the sensor worker: a TapSink that queues what the proxy taps and posts it
// to the worker every 20-1000 ms (one message: op records and payload bytes packed into one transferred buffer),
// plus a stand-in for the running sensor (live feed, counters) for the dashboard, TUI and status file.
// Never blocks the relay: past `maxQueuedBytes` not yet decoded, data is dropped and counted, and the
// connection it belonged to is marked so the sensor ends it with an error instead of decoding a gap.
import type { ConnMeta, Direction, TapSink } from "../tap/types.ts";
import type { ExporterStats } from "../sinks/queue.ts";
import { UsageError } from "../util/args.ts";
import type { Logger } from "../util/log.ts";
import { dropCompiledCode, idleGc } from "../util/idle-gc.ts";
import { atNextSlowTick, SLOW_TICK_MS } from "../util/slow-tick.ts";
import { lowerThreadPriority } from "../util/thread-priority.ts";
import { workerCandidates } from "../util/worker-module.ts";
import type { SensorConfig } from "./core.ts";
import type { PipelineStats } from "./pipeline.ts";
import { OP_ACTIVITY, OP_CLOSE, OP_DATA, OP_OPEN, OP_WIDTH, MIN_REUSED_BYTES, payloadOffset, REUSED_BUFFERS, type FromWorker, type ToWorker, type WorkerStats } from "./worker-protocol.ts";
import type { HostActivity } from "../tap/activity.ts";
import fs from "node:fs";
import path from "node:path";
import { nowMs } from "../tap/types.ts";
import { recoverJournals, TapJournal, type TapJournalStats } from "./tap-journal.ts";

export interface SensorWorkerOptions {
  /** Where the worker module is (tests); default: workerCandidates("sensor/sensor-worker.ts"). */
  workerUrl?: string | URL;
  /** Bytes posted to the worker and not yet decoded, beyond which data is dropped (default 64 MiB). */
  maxQueuedBytes?: number;
  /** How long close() waits for the worker to store what it holds (default 10 s). */
  closeTimeoutMs?: number;
  /** Where the tap journal lives (default <dataDir>/journal); null: no journal (a crash loses what is not stored yet). */
  journalDir?: string | null;
}

export interface WorkerTapStats {
  /** Batches posted to the worker. */
  batches: number;
  /** Bytes queued or posted and not yet acked (decoded bytes are acked within one stats tick, see sensor-worker.ts). */
  inFlightBytes: number;
  /** Data chunks dropped because the worker was too far behind (or gone). */
  dropped: number;
  /** Connections whose data was cut short by a drop. */
  taintedConnections: number;
  /** Tap items the sensor threw on. */
  sensorErrors: number;
  workerAlive: boolean;
  /** The crash journal (tap-journal.ts), when there is one. */
  journal?: TapJournalStats;
}

/** What the views and the status file read; the same shape as the parts of RunningSensor they use. */
export interface SensorWorker {
  tap: TapSink & { flush(): void; stats(): WorkerTapStats };
  live: { subscribe(fn: (events: unknown[]) => void): () => void };
  pipeline: { stats(): PipelineStats };
  storeOutput: { stats(): WorkerStats["store"] };
  readonly exporters: Array<{ name: string; stats(): ExporterStats }>;
  /** Sends what is queued, lets the worker store it and close its outputs, then ends the worker. */
  close(): Promise<void>;
}

const MAX_TAINTED = 10_000;
/**
 * Frames wait up to this long to share one message: each message wakes both threads and costs the relay a
 * postMessage. Sparse traffic (a request every few ms) thus shares a message per window; dense traffic fills
 * MAX_BATCH_BYTES first and goes at once. Decoding up to 20 ms later is invisible (the store commits at most
 * every 100 ms); the live view lags by at most this (POST_INTERVAL_MS while calls keep coming).
 */
const COALESCE_MS = 20;
/**
 * Under sustained traffic, messages go about this often: the worker's cost per message (its wake-up, the
 * store's commit, the stats it posts back) is fixed, against ~0.2 ms of decoding a call, so several calls
 * share one. A batch that starts after a quiet interval this long still goes after COALESCE_MS: a lone call
 * (or calls seconds apart) is stored as soon as before; a steady stream of calls is readable (store, status,
 * dashboard) up to this much later, as often as `oisp watch` looks (it polls the store every second). Such a
 * batch goes at the thread's next housekeeping tick (slow-tick.ts, one per POST_INTERVAL_MS), with the tap
 * journal's sync: one wake-up for the three instead of one each.
 * `bun bench/steady.ts --rate 10 --seconds 60`: 1000 ms against 250 ms, 0.10 messages per call instead of
 * 0.41, the Worker thread 0.45-0.55 % CPU instead of 0.80-0.85 %, the whole process 1.90-2.10 % instead of
 * 2.35-2.64 % (250 ms against 20 ms before it: 0.40 messages per call instead of 1.03).
 */
const POST_INTERVAL_MS = SLOW_TICK_MS;

/** The sensor Worker's thread name (top -H, ps -L, /proc/PID/task/TID/comm). */
export const SENSOR_THREAD_NAME = "oisp-sensor";
/**
 * Its nice value. Decoding and storing can wait; a call cannot. At the same priority the Worker took turns
 * for a CPU with the relay, the client and the upstream, and the calls that came while it ran waited: one warm
 * keep-alive connection through `oisp up`, 8 alternating rounds on 2 shared cores, p99 1.8-10 ms at nice 0
 * against 1.2-6.7 ms at nice 10 (better in 7 of 8 rounds, p90 too). Under sustained load it still gets its
 * share when nothing else waits (20,000 requests on 32 connections: none dropped, throughput unchanged).
 */
const SENSOR_NICE = 10;
/** A batch this large is posted at once. */
const MAX_BATCH_BYTES = 1024 * 1024;
/** Batch buffers are allocated in multiples of this. */
const BUFFER_GRAIN = 64 * 1024;
/** A batch buffer larger than this (a full batch of many tiny chunks: its op records) is not kept for reuse. */
const MAX_REUSED_BYTES = 2 * MAX_BATCH_BYTES;
/** Decoded bytes the worker may leave unacked until its next stats tick: the queue bound's slack (see sensor-worker.ts). */
const ACK_SLACK_DIVISOR = 64;
const TAINT_NOTE = "sensor queue full: some captured bytes were dropped";

/** Starts the worker, opens the store in it and resolves once it is ready (rejects with its error). */
export async function startSensorWorker(cfg: SensorConfig, opts: SensorWorkerOptions = {}): Promise<SensorWorker> {
  const { log, ...plain } = cfg;
  const candidates = opts.workerUrl ? [opts.workerUrl] : workerCandidates("sensor/sensor-worker.ts");
  let latest: WorkerStats | undefined;
  let onClosed: (() => void) | undefined;
  let onReplayed: (() => void) | undefined;
  const live = new RemoteLive();
  const maxQueuedBytes = opts.maxQueuedBytes ?? 64 * 1024 * 1024;
  let tap!: WorkerTap;

  const spawn = (candidate: number): Promise<Worker> =>
    new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(candidates[candidate]!, { name: SENSOR_THREAD_NAME });
      let ready = false;
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        switch (m.t) {
          case "ready":
            ready = true;
            latest = m.stats;
            lowerThreadPriority(SENSOR_THREAD_NAME, SENSOR_NICE);
            resolve(worker);
            break;
          case "error":
            worker.terminate();
            reject(m.usage ? new UsageError(m.message) : new Error(m.message));
            break;
          case "ack":
            tap.acked(m.bytes);
            tap.reuse(m.spent);
            break;
          case "stats":
            latest = m.stats;
            if (m.acked > 0) tap.acked(m.acked);
            tap.reuse(m.spent);
            if (m.durable !== undefined) tap.journal?.durable(m.durable);
            break;
          case "events":
            live.emit(m.n);
            break;
          case "replayed":
            onReplayed?.();
            break;
          case "log":
            log(m.level, m.msg);
            break;
          case "closed":
            latest = m.stats;
            onClosed?.();
            break;
        }
      };
      worker.onerror = (e) => {
        e.preventDefault?.();
        if (!ready && /ModuleNotFound|Cannot find module/i.test(e.message) && candidate + 1 < candidates.length) {
          worker.terminate();
          spawn(candidate + 1).then(resolve, reject);
          return;
        }
        if (!ready) {
          worker.terminate();
          reject(new Error(`sensor worker failed to start: ${e.message}`));
          return;
        }
        // The relay carries on without observation rather than going down with the sensor.
        log("error", `sensor worker crashed: ${e.message}; traffic is relayed but no longer recorded`);
        tap.dead = true;
        onClosed?.();
      };
      worker.postMessage({ t: "init", cfg: plain, ackBytes: Math.max(1, Math.floor(maxQueuedBytes / ACK_SLACK_DIVISOR)), nice: SENSOR_NICE } satisfies ToWorker);
    });

  // The tap needs the worker to post to, the worker's handler needs the tap: create the worker through a late binding.
  let workerRef: Worker | undefined;
  // The relay thread collects its garbage once the traffic it taps stops (the worker does the same on its side).
  // The first quiet period, from start-up on, also drops compiled code: start-up's (settings, CA, modules'
  // top level) never runs again. Later ones keep it: the relay's own code rebuilt would delay the next call.
  // Batch buffers kept for reuse go too: idle memory stays what it was without them.
  const gcWhenIdle = idleGc(10_000, (period) => {
    tap.releaseBuffers();
    if (period === 0) dropCompiledCode();
    else Bun.gc(true);
  });
  gcWhenIdle.touch();
  const post = (m: ToWorker, transfer: Transferable[]) => {
    gcWhenIdle.touch();
    workerRef?.postMessage(m, transfer);
  };
  tap = new WorkerTap(post, log, maxQueuedBytes, () => latest?.errors ?? 0);
  const worker = await spawn(0);
  workerRef = worker;
  const journalDir = opts.journalDir === undefined ? path.join(cfg.dataDir, "journal") : opts.journalDir;
  let replayFiles: string[] = [];
  if (journalDir) {
    replayFiles = replayJournals(journalDir, worker, log);
    if (replayFiles.length) onReplayed = () => removeFiles(replayFiles.splice(0));
    tap.journal = new TapJournal({ dir: journalDir, runId: Date.now().toString(36), onError: (msg) => log("error", msg) });
  }
  live.onActive = (on) => worker.postMessage({ t: "live", on } satisfies ToWorker);

  const stats = (): WorkerStats => latest!;
  let closing: Promise<void> | undefined;
  return {
    tap,
    live,
    pipeline: { stats: () => stats().pipeline },
    storeOutput: { stats: () => stats().store },
    get exporters() {
      return stats().exporters.map((s) => ({ name: s.name, stats: () => s }));
    },
    close() {
      closing ??= (async () => {
        tap.flush();
        if (!tap.dead) {
          const closed = new Promise<void>((resolve) => (onClosed = resolve));
          worker.postMessage({ t: "close" } satisfies ToWorker);
          const timeoutMs = opts.closeTimeoutMs ?? 10_000;
          let timer: ReturnType<typeof setTimeout> | undefined;
          const timedOut = await Promise.race([closed.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)))]);
          clearTimeout(timer);
          if (timedOut) log("warn", `sensor worker did not finish storing within ${timeoutMs} ms; stopping it`);
          // Everything journaled is stored: the journal (and any replayed one) can go. Otherwise it stays for the next start.
          if (!timedOut && !tap.dead) removeFiles(replayFiles.splice(0));
          tap.journal?.close(!timedOut && !tap.dead);
        } else tap.journal?.close(false);
        tap.dead = true;
        gcWhenIdle.stop();
        worker.terminate();
      })();
      return closing;
    },
  };
}

export class WorkerTap implements TapSink {
  dead = false;
  journal?: TapJournal;
  /** Ops ever queued: the position the worker's durable acks refer to. */
  private opsTotal = 0;
  /** The part of the current batch not journaled yet: first op, string and chunk, and its payload bytes. */
  private jOp = 0;
  private jStr = 0;
  private jChunk = 0;
  private jBytes = 0;
  private jOpened: string[] = [];
  private jClosed: string[] = [];
  private jScheduled = false;
  /** Forwards of answers (and what must follow them) waiting for this turn's journal write: see afterJournal. */
  private gated: Array<() => void> = [];
  /** Op records (OP_WIDTH float64 each), grown by doubling; `nOps` of them are queued. */
  private ops = new Float64Array(OP_WIDTH * 64);
  private nOps = 0;
  /** Connection metadata and close errors, in the order the ops consume them. */
  private strs: unknown[] = [];
  /** Small integer per open connection: ops carry it instead of the connId string. */
  private readonly connNos = new Map<string, number>();
  private nextConnNo = 0;
  private chunks: Uint8Array[] = [];
  private batchBytes = 0;
  private inFlight = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Cancels the batch's ride on the next housekeeping tick (see POST_INTERVAL_MS). */
  private cancelTick: (() => void) | undefined;
  /** Batch buffers the worker handed back, for the next posts (see REUSED_BUFFERS). */
  private buffers: ArrayBuffer[] = [];
  private readonly tainted = new Set<string>();
  private readonly counters = { batches: 0, dropped: 0 };
  private saidFull = false;
  /** performance.now() of the last post. */
  private lastPostAt = -Infinity;

  constructor(
    private readonly post: (m: ToWorker, transfer: Transferable[]) => void,
    private readonly log: Logger,
    private readonly maxQueuedBytes: number,
    private readonly sensorErrors: () => number,
  ) {}

  open(meta: ConnMeta): void {
    if (this.dead) return;
    const no = this.nextConnNo++;
    this.connNos.set(meta.connId, no);
    this.strs.push(meta);
    this.op(OP_OPEN, no, 0, 0, 0);
    this.jOpened.push(meta.connId);
    this.schedule();
  }

  data(connId: string, dir: Direction, bytes: Uint8Array, ts: number): void {
    if (this.dead || this.tainted.has(connId)) return void this.counters.dropped++;
    const no = this.connNos.get(connId);
    if (no === undefined) return; // never opened here: the sensor would ignore it (ConnTap always opens first)
    if (this.inFlight + this.batchBytes + bytes.length > this.maxQueuedBytes) return this.drop(connId);
    this.op(OP_DATA, no, dir === "c2s" ? 0 : 1, ts, bytes.length);
    this.chunks.push(bytes);
    this.batchBytes += bytes.length;
    this.jBytes += bytes.length;
    // An answer is on disk before the client can have it: the relay forwards it through afterJournal, after
    // the one write of everything tapped in this event-loop turn. A crash then never loses a call a client got.
    // What comes before an answer (its connection's open, its request) needs no write of its own: it goes
    // to disk with the answer's, or before its batch is posted (flush), whichever is first.
    if (dir === "s2c") this.scheduleJournal();
    this.schedule();
  }

  close(connId: string, ts: number, error?: string): void {
    if (this.dead) return;
    const cut = this.tainted.delete(connId);
    const err = cut ? (error ? `${error}; ${TAINT_NOTE}` : TAINT_NOTE) : error;
    const no = this.connNos.get(connId);
    if (no === undefined) return;
    this.connNos.delete(connId);
    if (err !== undefined) this.strs.push(err);
    this.op(OP_CLOSE, no, ts, err !== undefined ? 1 : 0, 0);
    this.jClosed.push(connId);
    this.schedule();
  }

  activity(items: HostActivity[]): void {
    if (this.dead || items.length === 0) return;
    this.strs.push(items);
    this.op(OP_ACTIVITY, 0, 0, 0, 0);
    this.schedule();
  }

  private op(code: number, a: number, b: number, c: number, d: number): void {
    let at = this.nOps * OP_WIDTH;
    if (at + OP_WIDTH > this.ops.length) {
      const grown = new Float64Array(this.ops.length * 2);
      grown.set(this.ops);
      this.ops = grown;
    }
    const ops = this.ops;
    ops[at++] = code;
    ops[at++] = a;
    ops[at++] = b;
    ops[at++] = c;
    ops[at] = d;
    this.nOps++;
    this.opsTotal++;
  }

  /**
   * Runs `fn` once everything tapped so far is in the journal's file: at once when it is (or there is no
   * journal), else right after the turn's write. In order: an answer's end or close queued after its chunks
   * runs after them.
   */
  afterJournal(fn: () => void): void {
    if (!this.journal || (this.jOp === this.nOps && this.gated.length === 0)) return fn();
    this.gated.push(fn);
    this.scheduleJournal();
  }

  /**
   * One journal write per event-loop turn: setImmediate runs after every socket callback of the turn, so the
   * chunks of all connections that arrived together share one writev(2) instead of one each.
   */
  private scheduleJournal(): void {
    if (!this.journal || this.jScheduled) return;
    this.jScheduled = true;
    setImmediate(() => {
      this.jScheduled = false;
      this.writeJournal();
      const gated = this.gated;
      this.gated = [];
      for (const fn of gated) {
        try {
          fn();
        } catch (err) {
          this.log("error", `relay after the tap journal: ${(err as Error).message}`);
        }
      }
    });
  }

  /** Appends the ops queued since the last journal write (before the batch holding them is posted). */
  private writeJournal(): void {
    if (!this.journal || this.jOp === this.nOps) return;
    try {
      this.journal.append({
        ops: this.ops.subarray(this.jOp * OP_WIDTH, this.nOps * OP_WIDTH), // written before this returns
        strs: this.strs.slice(this.jStr),
        chunks: this.chunks.slice(this.jChunk),
        payloadBytes: this.jBytes,
        opened: this.jOpened,
        closed: this.jClosed,
        opEnd: this.opsTotal,
      });
    } catch (err) {
      this.log("error", `tap journal: ${(err as Error).message}`);
    }
    this.jOp = this.nOps;
    this.jStr = this.strs.length;
    this.jChunk = this.chunks.length;
    this.jBytes = 0;
    this.jOpened = [];
    this.jClosed = [];
  }

  /** Posts everything queued now: one message, ops and payloads copied once into a buffer lent to the worker. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.cancelTick?.();
    this.cancelTick = undefined;
    const nOps = this.nOps;
    if (nOps === 0) return;
    this.writeJournal();
    this.journal?.syncNow();
    this.jOp = this.jStr = this.jChunk = 0;
    const chunks = this.chunks;
    const strs = this.strs;
    const bytes = this.batchBytes;
    this.nOps = 0;
    this.strs = [];
    this.chunks = [];
    this.batchBytes = 0;
    if (this.dead) return;
    // The relay's chunks may be views into buffers it reuses or shares: copy, then transfer the copy.
    let offset = payloadOffset(nOps);
    const buf = this.bufferFor(offset + bytes);
    new Float64Array(buf, 0, nOps * OP_WIDTH).set(this.ops.subarray(0, nOps * OP_WIDTH));
    const view = new Uint8Array(buf);
    for (const c of chunks) {
      view.set(c, offset);
      offset += c.length;
    }
    this.lastPostAt = performance.now();
    try {
      // Only a journaled close waits for the worker's durable mark (tap-journal.ts): without one, asking for
      // it would cost a message back per batch, waking the relay thread for nothing.
      this.post({ t: "batch", buf, nOps, bytes, strs, ...(this.journal?.awaitsDurable() && { upTo: this.opsTotal }) }, [buf]);
      this.inFlight += bytes;
      this.counters.batches++;
    } catch (err) {
      // A metadata object that cannot be cloned: a bug, but never the relay's problem.
      this.counters.dropped += chunks.length;
      this.log("error", `sensor worker: batch not sent: ${(err as Error).message}`);
    }
  }

  /**
   * A buffer of at least `size` bytes to post a batch in: one the worker handed back if one is large enough,
   * else a new one with room to spare, so that the next batches, a little larger or smaller, fit it too. A new
   * large ArrayBuffer is zero-filled on pages new to the process (the allocator returns freed memory to the OS
   * after a moment): a page fault per 4 KiB, more than copying the batch costs. Small ones: see MIN_REUSED_BYTES.
   */
  private bufferFor(size: number): ArrayBuffer {
    if (size < MIN_REUSED_BYTES) return new ArrayBuffer(size);
    const at = this.buffers.findIndex((b) => b.byteLength >= size);
    if (at >= 0) return this.buffers.splice(at, 1)[0]!;
    return new ArrayBuffer(Math.ceil((size * 1.25) / BUFFER_GRAIN) * BUFFER_GRAIN);
  }

  /** Buffers of decoded batches, back from the worker: the largest are kept, at most REUSED_BUFFERS of MAX_REUSED_BYTES. */
  reuse(spent: ArrayBuffer[]): void {
    if (spent.length === 0) return;
    const kept = [...this.buffers, ...spent.filter((b) => b.byteLength <= MAX_REUSED_BYTES)];
    this.buffers = kept.sort((a, b) => b.byteLength - a.byteLength).slice(0, REUSED_BUFFERS);
  }

  /** Lets the buffers kept for reuse go (traffic has stopped). */
  releaseBuffers(): void {
    this.buffers = [];
  }

  acked(bytes: number): void {
    this.inFlight = Math.max(0, this.inFlight - bytes);
    if (this.inFlight < this.maxQueuedBytes / 2) this.saidFull = false;
  }

  stats(): WorkerTapStats {
    return {
      batches: this.counters.batches,
      inFlightBytes: this.inFlight + this.batchBytes,
      dropped: this.counters.dropped,
      taintedConnections: this.tainted.size,
      sensorErrors: this.sensorErrors(),
      workerAlive: !this.dead,
      ...(this.journal && { journal: this.journal.stats() }),
    };
  }

  private drop(connId: string): void {
    this.counters.dropped++;
    if (this.tainted.size >= MAX_TAINTED) this.tainted.delete(this.tainted.values().next().value!);
    this.tainted.add(connId);
    if (!this.saidFull) {
      this.saidFull = true;
      this.log("warn", `sensor is ${this.maxQueuedBytes} bytes behind the relay: dropping captured data (traffic is unaffected)`);
    }
  }

  private schedule(): void {
    if (this.batchBytes >= MAX_BATCH_BYTES) return this.flush();
    if (this.timer !== undefined || this.cancelTick !== undefined) return;
    const delay = batchDelayMs(performance.now() - this.lastPostAt);
    if (delay !== undefined) this.timer = setTimeout(() => this.flush(), delay);
    else this.cancelTick = atNextSlowTick(() => this.flush());
  }
}

/**
 * How long a batch whose first op comes `sinceLastPostMs` after the last message waits: COALESCE_MS after a
 * quiet interval, else undefined: until the next housekeeping tick (see POST_INTERVAL_MS).
 */
export function batchDelayMs(sinceLastPostMs: number): number | undefined {
  return sinceLastPostMs >= POST_INTERVAL_MS ? COALESCE_MS : undefined;
}

/**
 * Hands the journals of runs that did not stop cleanly to the worker (before any new traffic, so connection
 * numbers cannot clash); returns the files to delete once the replay is committed.
 */
function replayJournals(dir: string, worker: Worker, log: Logger): string[] {
  const rec = recoverJournals(dir, nowMs());
  for (const p of rec.problems) log("warn", `tap journal: ${p}`);
  if (rec.batches.length === 0) return rec.files;
  log("info", `replaying ${rec.connections} connections (${rec.bytes} bytes) journaled by an oisp that did not stop cleanly`);
  rec.batches.forEach((b, i) => {
    const last = i === rec.batches.length - 1;
    const bytes = b.buf.byteLength - payloadOffset(b.nOps);
    worker.postMessage({ t: "batch", buf: b.buf, nOps: b.nOps, bytes, strs: b.strs, ...(last && { replayDone: true }) } satisfies ToWorker, [b.buf]);
  });
  return rec.files;
}

function removeFiles(files: string[]): void {
  for (const f of files) {
    try {
      fs.rmSync(f, { force: true });
    } catch {
      // gone already
    }
  }
}

/** The main thread's live feed: counts of new events from the worker, asked for only while someone listens. */
class RemoteLive {
  onActive?: (on: boolean) => void;
  private readonly listeners = new Set<(events: unknown[]) => void>();

  subscribe(fn: (events: unknown[]) => void): () => void {
    this.listeners.add(fn);
    if (this.listeners.size === 1) this.onActive?.(true);
    return () => {
      if (this.listeners.delete(fn) && this.listeners.size === 0) this.onActive?.(false);
    };
  }

  /** Listeners get an array as long as the batch (its items are not sent across: the views read the store). */
  emit(n: number): void {
    const events = new Array<unknown>(n).fill(undefined);
    for (const fn of this.listeners) {
      try {
        fn(events);
      } catch {
        this.listeners.delete(fn);
      }
    }
  }
}
