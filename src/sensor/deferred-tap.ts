// In `oisp up` the sensor shares the relay's event loop. This tap queues what the proxy taps and decodes it
// on the next turn of the loop (setImmediate), in one batch, so decoding, redaction and storing never run
// between a chunk's arrival and its forwarding, and a burst of chunks costs one wake-up. Bounded: past
// `maxQueuedBytes` it drains at once (the relay then waits for the sensor rather than memory growing).
import type { ConnMeta, Direction, TapSink } from "../capture/types.ts";

type Item =
  | { k: "open"; meta: ConnMeta }
  | { k: "data"; connId: string; dir: Direction; bytes: Uint8Array; ts: number }
  | { k: "close"; connId: string; ts: number; error?: string };

export class DeferredTap implements TapSink {
  private queue: Item[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private errors = 0;

  constructor(
    private readonly sink: TapSink,
    private readonly onError: (err: unknown) => void = () => {},
    private readonly maxQueuedBytes = 32 * 1024 * 1024,
  ) {}

  open(meta: ConnMeta): void {
    this.push({ k: "open", meta }, 0);
  }

  data(connId: string, dir: Direction, bytes: Uint8Array, ts: number): void {
    this.push({ k: "data", connId, dir, bytes, ts }, bytes.length);
  }

  close(connId: string, ts: number, error?: string): void {
    this.push({ k: "close", connId, ts, error }, 0);
  }

  /** Hands everything queued to the sink now (also used before shutting the sensor down). */
  flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      this.queuedBytes = 0;
      for (const item of batch) {
        try {
          if (item.k === "open") this.sink.open(item.meta);
          else if (item.k === "data") this.sink.data(item.connId, item.dir, item.bytes, item.ts);
          else this.sink.close(item.connId, item.ts, item.error);
        } catch (err) {
          // Off the relay's call stack now, so nothing above would catch this: count it and carry on.
          this.errors++;
          this.onError(err);
        }
      }
    }
  }

  stats(): { queued: number; queuedBytes: number; errors: number } {
    return { queued: this.queue.length, queuedBytes: this.queuedBytes, errors: this.errors };
  }

  private push(item: Item, size: number): void {
    this.queue.push(item);
    this.queuedBytes += size;
    if (this.queuedBytes > this.maxQueuedBytes) return this.flush();
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }
}
