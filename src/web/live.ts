// Server-sent events for the live timeline. The stream carries only "something new arrived" and a count:
// browsers then fetch the new rows through the normal filtered query, so the stream never holds event
// content and a filter applies to live rows exactly as to the rest of the page.
// Bursts are coalesced (one message per debounce window), clients are capped, and every stream ends on close().
import type { LiveSource } from "../view/live.ts";

export interface LiveHubOptions {
  /** In-process event feed (the sensor's LiveOutput). */
  live?: LiveSource;
  /** Fallback when there is no feed: a value that changes when the database changes (PRAGMA data_version). */
  dataVersion?: () => number;
  debounceMs?: number;
  pollMs?: number;
  heartbeatMs?: number;
  maxClients?: number;
}

const encoder = new TextEncoder();

export class LiveHub {
  private readonly clients = new Set<ReadableStreamDefaultController<Uint8Array>>();
  private pending = 0;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private poller: ReturnType<typeof setInterval> | undefined;
  private unsubscribe: (() => void) | undefined;
  private lastVersion: number | undefined;
  private closed = false;
  private readonly debounceMs: number;
  private readonly maxClients: number;

  constructor(private readonly opts: LiveHubOptions) {
    this.debounceMs = opts.debounceMs ?? 250;
    this.maxClients = opts.maxClients ?? 32;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** A text/event-stream response, or undefined when the client limit is reached. */
  open(): Response | undefined {
    if (this.closed || this.clients.size >= this.maxClients) return undefined;
    let self: ReadableStreamDefaultController<Uint8Array> | undefined;
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        self = controller;
        this.clients.add(controller);
        // retry: how long EventSource waits before reconnecting after the server went away.
        controller.enqueue(encoder.encode(`retry: 2000\nevent: hello\ndata: {}\n\n`));
        this.startSources();
      },
      cancel: () => {
        if (self) this.drop(self);
      },
    });
    return new Response(stream, {
      headers: { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", "X-Accel-Buffering": "no" },
    });
  }

  /** Counts new events and schedules one coalesced notification. */
  notify(count: number): void {
    if (this.closed || count <= 0) return;
    this.pending += count;
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), this.debounceMs);
  }

  close(): void {
    this.closed = true;
    this.stopSources();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const c of this.clients) {
      try {
        c.close();
      } catch {
        // already closed by the client
      }
    }
    this.clients.clear();
  }

  private flush(): void {
    this.flushTimer = undefined;
    const n = this.pending;
    this.pending = 0;
    if (n > 0) this.broadcast(`event: new\ndata: {"n":${n}}\n\n`);
  }

  private broadcast(text: string): void {
    const bytes = encoder.encode(text);
    for (const c of this.clients) {
      try {
        // A client that stopped reading would make its queue grow without end: drop it instead.
        if ((c.desiredSize ?? 0) < -64 * 1024) throw new Error("slow client");
        c.enqueue(bytes);
      } catch {
        this.drop(c);
        try {
          c.close();
        } catch {
          // already closed
        }
      }
    }
  }

  private drop(c: ReadableStreamDefaultController<Uint8Array>): void {
    this.clients.delete(c);
    if (this.clients.size === 0) this.stopSources();
  }

  /** Sources run only while someone listens. */
  private startSources(): void {
    if (!this.heartbeat) {
      // Comments keep proxies and Bun's idle timeout from closing a quiet stream.
      this.heartbeat = setInterval(() => this.broadcast(": ping\n\n"), this.opts.heartbeatMs ?? 15_000);
    }
    if (this.opts.live) {
      this.unsubscribe ??= this.opts.live.subscribe((events) => this.notify(Array.isArray(events) ? events.length : 1));
    } else if (this.opts.dataVersion && !this.poller) {
      const read = this.opts.dataVersion;
      this.lastVersion = safeCall(read);
      this.poller = setInterval(() => {
        const v = safeCall(read);
        if (v !== undefined && v !== this.lastVersion) {
          this.lastVersion = v;
          this.notify(1);
        }
      }, this.opts.pollMs ?? 1000);
    }
  }

  private stopSources(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.poller) clearInterval(this.poller);
    this.heartbeat = undefined;
    this.poller = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }
}

function safeCall(fn: () => number): number | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
