// Where the pipeline's events go: the SQLite store (batched), a JSONL file, live listeners.
// Each output owns its failures: a full disk or a locked database is counted and reported,
// never thrown back into decoding.
import fs from "node:fs";
import type { OispEvent } from "../events/index.ts";
import type { openStore } from "../store/index.ts";
import type { JsonlSink } from "../sinks/jsonl.ts";
import type { Logger } from "../util/log.ts";
import type { EventOutput } from "../events/output.ts";

type Store = ReturnType<typeof openStore>;

export interface OutputStats {
  written: number;
  dropped: number;
  lastError?: string;
}

/**
 * Batches events into one transaction, FLUSH_MS after the first event not committed yet, or sooner through
 * commitIfQuiet. Holds at most `maxPending` while the database is unavailable.
 */
export class StoreOutput implements EventOutput {
  private queue: OispEvent[] = [];
  private scheduled = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastCommitAt = -Infinity;
  private readonly counters: OutputStats = { written: 0, dropped: 0 };
  /** Events ever queued. The queue holds the last `queue.length` of them (oldest dropped first), so
   *  `accepted - queue.length` of them are done: committed, or dropped and counted. */
  private accepted = 0;
  /** whenCommitted callbacks, marks ascending. */
  private waiters: Array<{ mark: number; done: () => void }> = [];

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly maxPending = 100_000,
  ) {}

  write(events: OispEvent[]): void {
    const room = this.maxPending - this.queue.length;
    if (room < events.length) this.counters.dropped += events.length - Math.max(room, 0);
    if (room > 0) {
      const taken = events.slice(0, room);
      this.queue.push(...taken);
      this.accepted += taken.length;
    }
    if (!this.scheduled) this.schedule(FLUSH_MS);
  }

  private schedule(ms: number): ReturnType<typeof setTimeout> {
    this.scheduled = true;
    this.dueAt = performance.now() + ms;
    return (this.timer = setTimeout(() => this.flush(), ms));
  }

  /**
   * Commits now if the last commit is at least FLUSH_MS old. The sensor worker calls it at the end of a batch
   * after which no call awaits its response: at low rates a call is then readable at once and no flush timer
   * fires for it, while under load (calls in flight, or a commit less than FLUSH_MS ago) calls share commits.
   */
  commitIfQuiet(now = performance.now()): void {
    if (this.scheduled && now - this.lastCommitAt >= FLUSH_MS) this.flush();
  }

  /** When the scheduled flush is due (performance.now()). */
  private dueAt = 0;

  /**
   * Flushes if the scheduled flush is due. The sensor worker calls it after each batch: a Bun Worker
   * whose message queue never empties (a burst it decodes slower than the relay taps) runs no timers at
   * all, so the flush timer alone left a burst's events in memory until the burst ended.
   */
  flushIfDue(now = performance.now()): void {
    if (this.scheduled && now >= this.dueAt) this.flush();
  }

  /**
   * Calls `done` once every event written so far is committed (or was dropped and counted): the IPC
   * server acknowledges a connection to the redirector only then. Right away if nothing is pending.
   */
  whenCommitted(done: () => void): void {
    if (this.queue.length === 0) return done();
    // Bounded while the database is failing: the oldest waiters are forgotten (their connections stay
    // unacknowledged, which the redirector bounds on its side).
    if (this.waiters.length >= MAX_COMMIT_WAITERS) this.waiters.shift();
    this.waiters.push({ mark: this.accepted, done });
  }

  private wakeWaiters(): void {
    const doneThrough = this.accepted - this.queue.length;
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.mark <= doneThrough) n++;
    for (const w of this.waiters.splice(0, n)) {
      try {
        w.done();
      } catch (err) {
        this.log("error", `store: commit listener failed: ${(err as Error).message}`);
      }
    }
  }

  /**
   * Runs before each commit. The JSONL file is flushed here, so whatever SQLite holds the file holds too:
   * after a crash, events re-derived from the tap journal that the store already has are skipped by the
   * JSONL output (JsonlOutput's isStored), which is then safe.
   */
  beforeCommit?: () => void;

  flush(): void {
    this.scheduled = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length === 0) return this.wakeWaiters();
    this.lastCommitAt = performance.now();
    try {
      this.beforeCommit?.();
    } catch (err) {
      this.log("error", `store: before commit: ${(err as Error).message}`);
    }
    const batch = this.queue;
    this.queue = [];
    try {
      this.store.insertEvents(batch);
      this.counters.written += batch.length;
      this.counters.lastError = undefined;
      this.wakeWaiters();
    } catch (err) {
      const message = (err as Error).message;
      if (this.counters.lastError !== message) this.log("error", `store: ${message} (events kept in memory and retried)`);
      this.counters.lastError = message;
      // Put the batch back in front and retry later; beyond maxPending the oldest are dropped and counted.
      const keep = batch.concat(this.queue);
      const overflow = Math.max(0, keep.length - this.maxPending);
      this.counters.dropped += overflow;
      this.queue = keep.slice(overflow);
      if (overflow > 0) this.wakeWaiters();
      this.schedule(RETRY_MS).unref?.();
    }
  }

  stats(): OutputStats & { pending: number } {
    return { ...this.counters, pending: this.queue.length };
  }
}

/**
 * Events to a JSONL file, each event_id once. A redirector resends the connections a killed sensor never
 * acknowledged, from their open, and the events re-derived from them carry the same stable ids: those
 * already exported are skipped. Two checks, both bounded:
 *  - ids written recently, primed at start from the file's tail (lines flushed just before a kill, maybe
 *    before their SQLite commit);
 *  - for events older than this output (only a replay or traffic spooled while no sensor ran can be),
 *    whether the store already has the id: a long keep-alive connection replayed from an open of hours ago.
 * An event in neither (written long ago but never committed) could repeat: at-least-once, never lost.
 */
export class JsonlOutput implements EventOutput {
  private readonly recent = new Set<string>();
  private readonly startedAt = Date.now();

  constructor(
    private readonly sink: JsonlSink,
    private readonly opts: { maxRemembered?: number; isStored?: (eventId: string) => boolean } = {},
  ) {
    for (const id of idsInTail(sink.path, 8 * 1024 * 1024)) this.remember(id);
  }

  write(events: OispEvent[]): void {
    for (const e of events) {
      if (this.recent.has(e.event_id) || (this.opts.isStored && Date.parse(e.ts) < this.startedAt && this.storedQuietly(e.event_id))) continue;
      this.remember(e.event_id);
      this.sink.write(e);
    }
  }

  private storedQuietly(id: string): boolean {
    try {
      return this.opts.isStored!(id);
    } catch {
      return false; // store unavailable: export it (at-least-once)
    }
  }

  private remember(id: string): void {
    if (this.recent.size >= (this.opts.maxRemembered ?? 50_000)) this.recent.delete(this.recent.values().next().value!);
    this.recent.add(id);
  }
}

/**
 * The IPC server's `whenDurable` for a sensor: `done` once the events produced so far are committed to
 * SQLite and the JSONL lines written with them have left our buffer for the file (the OS keeps them if
 * the sensor is killed). Only then may a redirector forget the frames they came from.
 */
export function durableAfter(store: StoreOutput, files: Array<{ flush(): void }>): (done: () => void) => void {
  return (done) =>
    store.whenCommitted(() => {
      for (const f of files) f.flush();
      done();
    });
}

const MAX_COMMIT_WAITERS = 200_000;
/**
 * Events wait at most this long for their commit (see StoreOutput); a failing database is retried every
 * RETRY_MS. A fixed 500 ms cadence measured cheaper at low rates (each commit writes ~35 WAL pages for a
 * call's two events) but was taken back: stored lists, `oisp status`, redirector acks and tests that read
 * the store all lagged. Committing a finished lone call at once (commitIfQuiet) costs the same commits at
 * low rates (one per call either way) without the lag or the timer's wake-up.
 */
const FLUSH_MS = 100;
const RETRY_MS = 1000;
const EVENT_ID_RE = /"event_id":"([^"\\]{1,64})"/;

/** event_ids of the last `maxBytes` of a JSONL file, oldest first. Missing or unreadable file: none. */
function idsInTail(file: string, maxBytes: number): string[] {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, "r");
    const size = fs.fstatSync(fd).size;
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    let done = 0;
    while (done < buf.length) {
      const n = fs.readSync(fd, buf, done, buf.length - done, start + done);
      if (n === 0) break;
      done += n;
    }
    const lines = buf.subarray(0, done).toString("utf8").split("\n");
    if (start > 0) lines.shift(); // cut mid-line
    const ids: string[] = [];
    for (const line of lines) {
      const m = EVENT_ID_RE.exec(line);
      if (m) ids.push(m[1]!);
    }
    return ids;
  } catch {
    return [];
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Feeds the live view once the store has committed a batch: the dashboard and the TUI answer a live
 * notification by reading the store, so a notification that outran the commit (FLUSH_MS) showed nothing
 * until the next event arrived.
 */
export class CommittedLiveOutput implements EventOutput {
  constructor(
    private readonly store: StoreOutput,
    private readonly live: LiveOutput,
  ) {}
  write(events: OispEvent[]): void {
    this.store.whenCommitted(() => this.live.write(events));
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
