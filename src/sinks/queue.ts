// What every exporter sits behind: a bounded memory queue, a disk spool for what does not fit or
// cannot be sent, and one send loop with exponential backoff. The pipeline's write() never waits and
// never throws; a backend that is down costs memory up to `maxQueued` events, then disk up to the
// spool's limit, then events are dropped and counted. Each batch gets an id when it is formed and keeps
// it through retries, spooling and restarts: backends use it as an idempotency key (at-least-once).
import { ulid } from "ulidx";
import type { OispEvent } from "../events/index.ts";
import type { EventOutput } from "../events/output.ts";
import type { Logger } from "../util/log.ts";
import type { BatchSpool } from "./spool.ts";

export interface ExportBatch {
  /** Stable across retries and restarts: the idempotency key. */
  id: string;
  events: OispEvent[];
}

export interface Exporter {
  readonly name: string;
  /** Resolves once the backend accepted the whole batch; throws otherwise (ExportError says whether to retry). */
  send(batch: ExportBatch): Promise<void>;
  close(): Promise<void>;
  /** What to write to the spool for `batch` so that a later run can send it alone (same id). */
  spoolForm?(batch: ExportBatch): ExportBatch;
}

/** A failed send. Permanent failures (the backend rejects the data itself) are dropped, not retried. */
export class ExportError extends Error {
  constructor(
    message: string,
    readonly permanent = false,
    /** The backend said when to come back (Retry-After). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface ExportQueueOptions {
  /** Events per batch. Default 100. */
  batchSize?: number;
  /** A partial batch is sent after waiting this long. Default 1000 ms. */
  flushMs?: number;
  /** Events held in memory; beyond, the oldest go to the spool in batches. Default 10 000. */
  maxQueued?: number;
  spool?: BatchSpool;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** How long close() keeps trying to send before spooling the rest. Default 3000 ms. */
  closeTimeoutMs?: number;
  log?: Logger;
}

export interface ExporterStats {
  name: string;
  state: "ok" | "retrying" | "closed";
  /** Events the backend accepted. */
  sent: number;
  sentBatches: number;
  /** Events in memory (including the batch being sent). */
  queued: number;
  spooledBatches: number;
  spooledBytes: number;
  /** Events lost: queue and spool full, or rejected by the backend as permanently invalid. */
  dropped: number;
  failedAttempts: number;
  lastError?: string;
  lastSentAt?: string;
}

interface InFlight {
  batch: ExportBatch;
  fromSpool: boolean;
  attempts: number;
}

export class ExportQueue implements EventOutput {
  private mem: OispEvent[] = [];
  private oldestAt = 0;
  private inflight?: InFlight;
  private stopping = false;
  private closed = false;
  private draining = false;
  private wake?: () => void;
  private readonly loop: Promise<void>;
  private readonly counters = { sent: 0, sentBatches: 0, dropped: 0, failedAttempts: 0 };
  private lastError?: string;
  private lastSentAt?: number;
  private retrying = false;
  /** After the spool refused a batch, don't serialise another one for it before this time. */
  private spoolRefusedUntil = 0;
  private readonly opts: Required<Omit<ExportQueueOptions, "spool" | "log">>;

  constructor(
    readonly exporter: Exporter,
    private readonly options: ExportQueueOptions = {},
  ) {
    this.opts = {
      batchSize: options.batchSize ?? 100,
      flushMs: options.flushMs ?? 1000,
      maxQueued: options.maxQueued ?? 10_000,
      initialBackoffMs: options.initialBackoffMs ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      closeTimeoutMs: options.closeTimeoutMs ?? 3000,
    };
    this.loop = this.run();
  }

  get name(): string {
    return this.exporter.name;
  }

  write(events: OispEvent[]): void {
    if (this.closed || this.stopping) {
      this.counters.dropped += events.length;
      return;
    }
    for (const e of events) {
      if (this.mem.length >= this.opts.maxQueued && !this.spillOldest()) {
        this.counters.dropped++;
        continue;
      }
      if (this.mem.length === 0) this.oldestAt = Date.now();
      this.mem.push(e);
    }
    if (this.mem.length >= this.opts.batchSize) this.wake?.();
  }

  stats(): ExporterStats {
    return {
      name: this.name,
      state: this.closed ? "closed" : this.retrying ? "retrying" : "ok",
      ...this.counters,
      queued: this.mem.length + (this.inflight && !this.inflight.fromSpool ? this.inflight.batch.events.length : 0),
      spooledBatches: this.options.spool?.pendingBatches ?? 0,
      spooledBytes: this.options.spool?.pendingBytes ?? 0,
      ...(this.lastError !== undefined && { lastError: this.lastError }),
      ...(this.lastSentAt !== undefined && { lastSentAt: new Date(this.lastSentAt).toISOString() }),
    };
  }

  /** Resolves when everything queued (memory and spool) was sent, or after `timeoutMs`. True if all was sent. */
  async flush(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    this.draining = true;
    try {
      while (Date.now() < deadline) {
        if (this.isEmpty()) return true;
        this.wake?.();
        await sleep(10);
      }
      return this.isEmpty();
    } finally {
      this.draining = false;
    }
  }

  /** Sends what it can within closeTimeoutMs, spools the rest for the next run, closes the exporter. */
  async close(): Promise<void> {
    if (this.closed || this.stopping) return;
    await this.flush(this.opts.closeTimeoutMs);
    this.stopping = true;
    this.wake?.();
    await Promise.race([this.loop, sleep(this.opts.closeTimeoutMs)]);
    // Whatever is left (a batch still failing, events in memory) waits on disk for the next run.
    // The batch being retried keeps its id: the backend may have received it already.
    const rest: ExportBatch[] = [];
    if (this.inflight && !this.inflight.fromSpool) rest.push(this.inflight.batch);
    this.inflight = undefined;
    for (let i = 0; i < this.mem.length; i += this.opts.batchSize) rest.push({ id: ulid(), events: this.mem.slice(i, i + this.opts.batchSize) });
    this.mem = [];
    for (const batch of rest) {
      if (!this.options.spool?.append(this.spoolForm(batch))) this.counters.dropped += batch.events.length;
    }
    this.options.spool?.close();
    this.closed = true;
    try {
      await this.exporter.close();
    } catch (err) {
      this.options.log?.("warn", `export ${this.name}: close: ${(err as Error).message}`);
    }
  }

  /** Removes a sent batch from the spool; it is the oldest there (a retried batch spooled mid-send too). */
  private shiftSpooled(id: string): void {
    const spool = this.options.spool;
    if (spool?.peek()?.id === id) spool.shift();
  }

  private spoolForm(batch: ExportBatch): ExportBatch {
    return this.exporter.spoolForm?.(batch) ?? batch;
  }

  private isEmpty(): boolean {
    return this.mem.length === 0 && !this.inflight && (this.options.spool?.pendingBatches ?? 0) === 0;
  }

  /** Moves the oldest batch of memory to the spool; false when there is no spool or it is full. */
  private spillOldest(): boolean {
    const spool = this.options.spool;
    if (!spool || Date.now() < this.spoolRefusedUntil) return false;
    // A memory batch being retried is older than anything in memory: it goes to the spool first, or a
    // restart would replay it after the newer events (a response before its request).
    const job = this.inflight;
    if (job && !job.fromSpool) {
      if (!spool.append(this.spoolForm(job.batch))) {
        this.spoolRefusedUntil = Date.now() + 1000;
        return false;
      }
      job.fromSpool = true;
    }
    const events = this.mem.slice(0, this.opts.batchSize);
    if (!spool.append(this.spoolForm({ id: ulid(), events }))) {
      this.spoolRefusedUntil = Date.now() + 1000; // full: retrying per event would serialise a batch each time
      return false;
    }
    this.mem = this.mem.slice(events.length);
    return true;
  }

  private nextBatch(): InFlight | undefined {
    if (this.inflight) return this.inflight;
    const spooled = this.options.spool?.peek();
    if (spooled) return (this.inflight = { batch: spooled as ExportBatch, fromSpool: true, attempts: 0 });
    const due = this.mem.length >= this.opts.batchSize || (this.mem.length > 0 && (this.draining || this.stopping || Date.now() - this.oldestAt >= this.opts.flushMs));
    if (!due) return undefined;
    const events = this.mem.splice(0, this.opts.batchSize);
    this.oldestAt = Date.now();
    return (this.inflight = { batch: { id: ulid(), events }, fromSpool: false, attempts: 0 });
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const job = this.nextBatch();
      if (!job) {
        await this.sleepUntilWork(this.mem.length > 0 ? Math.max(1, this.opts.flushMs - (Date.now() - this.oldestAt)) : this.opts.flushMs);
        continue;
      }
      try {
        await this.exporter.send(job.batch);
        if (job.fromSpool) this.shiftSpooled(job.batch.id);
        this.inflight = undefined;
        this.counters.sent += job.batch.events.length;
        this.counters.sentBatches++;
        this.lastSentAt = Date.now();
        if (this.retrying) this.options.log?.("info", `export ${this.name}: delivering again`);
        this.retrying = false;
      } catch (err) {
        const e = err instanceof ExportError ? err : new ExportError((err as Error)?.message ?? String(err));
        this.counters.failedAttempts++;
        if (this.lastError !== e.message || !this.retrying) this.options.log?.("warn", `export ${this.name}: ${e.message}${e.permanent ? " (batch dropped)" : " (will retry)"}`);
        this.lastError = e.message;
        if (e.permanent) {
          if (job.fromSpool) this.shiftSpooled(job.batch.id);
          this.inflight = undefined;
          this.counters.dropped += job.batch.events.length;
          continue;
        }
        this.retrying = true;
        job.attempts++;
        // Exponential backoff with jitter (half to full), or what the backend asked for.
        const backoff = Math.min(this.opts.maxBackoffMs, this.opts.initialBackoffMs * 2 ** Math.min(job.attempts - 1, 20));
        const wait = e.retryAfterMs !== undefined ? Math.min(this.opts.maxBackoffMs, e.retryAfterMs) : backoff * (0.5 + Math.random() * 0.5);
        await this.sleepUntilWork(wait, true);
      }
    }
  }

  /** Sleeps `ms`, or until write() fills a batch / close() (unless it is a backoff, which only close ends). */
  private sleepUntilWork(ms: number, backoff = false): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref?.(); // an idle exporter must not keep the process alive
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        if (!backoff || this.stopping) done();
      };
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
