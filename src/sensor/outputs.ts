// Where the pipeline's events go: the SQLite store (batched), a JSONL file, live listeners.
// Each output owns its failures: a full disk or a locked database is counted and reported,
// never thrown back into decoding.
import type { OispEvent } from "../events/index.ts";
import type { openStore } from "../store/index.ts";
import type { JsonlSink } from "../sinks/jsonl.ts";
import type { Logger } from "../util/log.ts";
import type { EventOutput } from "./pipeline.ts";

type Store = ReturnType<typeof openStore>;

export interface OutputStats {
  written: number;
  dropped: number;
  lastError?: string;
}

/** Batches events into one transaction per tick; holds at most `maxPending` while the database is unavailable. */
export class StoreOutput implements EventOutput {
  private queue: OispEvent[] = [];
  private scheduled = false;
  private readonly counters: OutputStats = { written: 0, dropped: 0 };

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly maxPending = 100_000,
  ) {}

  write(events: OispEvent[]): void {
    const room = this.maxPending - this.queue.length;
    if (room < events.length) this.counters.dropped += events.length - Math.max(room, 0);
    if (room > 0) this.queue.push(...events.slice(0, room));
    if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => this.flush(), 100);
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    try {
      this.store.insertEvents(batch);
      this.counters.written += batch.length;
      this.counters.lastError = undefined;
    } catch (err) {
      const message = (err as Error).message;
      if (this.counters.lastError !== message) this.log("error", `store: ${message} (events kept in memory and retried)`);
      this.counters.lastError = message;
      // Put the batch back in front and retry later; beyond maxPending the oldest are dropped and counted.
      const keep = batch.concat(this.queue);
      const overflow = Math.max(0, keep.length - this.maxPending);
      this.counters.dropped += overflow;
      this.queue = keep.slice(overflow);
      this.scheduled = true;
      setTimeout(() => this.flush(), 1000).unref?.();
    }
  }

  stats(): OutputStats & { pending: number } {
    return { ...this.counters, pending: this.queue.length };
  }
}

export class JsonlOutput implements EventOutput {
  constructor(private readonly sink: JsonlSink) {}
  write(events: OispEvent[]): void {
    for (const e of events) this.sink.write(e);
  }
}

/** Fan-out to in-process subscribers (the dashboard's live view, tests). A throwing listener is removed. */
export class LiveOutput implements EventOutput {
  private readonly listeners = new Set<(events: OispEvent[]) => void>();
  subscribe(fn: (events: OispEvent[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  write(events: OispEvent[]): void {
    for (const fn of this.listeners) {
      try {
        fn(events);
      } catch {
        this.listeners.delete(fn);
      }
    }
  }
}
