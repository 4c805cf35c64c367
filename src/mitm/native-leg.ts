// A TLS leg on one of Bun's native sockets (TLS in uSockets, no node:stream in between), shaped as the part of a
// Duplex that relay() drives. Writes go straight to the socket; what it does not take yet waits in an outbox,
// flushed on drain. While paused, arriving data, end and close wait in order, so nothing overtakes a chunk.
import { EventEmitter } from "node:events";

/** The calls of a Bun native socket (Bun.Socket) a leg makes. */
export interface NativeSocket {
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}

type Queued = Uint8Array | "end" | "close";

export class NativeLeg extends EventEmitter {
  destroyed = false;
  writableEnded = false;
  readableEnded = false;
  private sock?: NativeSocket;
  private outbox: Uint8Array[] = [];
  private endAfterFlush = false;
  /** Paused until the relay resumes it: data that arrives during the handshake waits for it. */
  private paused = true;
  private queued: Queued[] = [];
  private closeError?: Error;

  /** `onWrite`: called for every chunk written (the client leg keeps its idle timer fresh with it). */
  constructor(private readonly onWrite?: () => void) {
    super();
  }

  /** Socket handlers for Bun (upgradeTLS, Bun.connect); `attach` must be called with the socket they serve. */
  handlers() {
    return {
      data: (_s: unknown, d: Uint8Array) => this.arrive(d),
      drain: () => this.flush(),
      end: () => this.arrive("end"),
      close: (_s: unknown, err?: Error) => {
        if (err) this.closeError ??= err;
        this.arrive("close");
      },
      error: (_s: unknown, err: Error) => void (this.closeError ??= err),
    };
  }

  attach(sock: NativeSocket): void {
    this.sock = sock;
  }

  /** The handshake is done: reads stop until the relay resumes the leg (what arrives meanwhile stays bounded). */
  holdReads(): void {
    if (this.paused) this.sock?.pause();
  }

  write(chunk: Uint8Array): boolean {
    if (this.destroyed || this.writableEnded || !this.sock) return false;
    this.onWrite?.();
    if (this.outbox.length) {
      this.outbox.push(chunk);
      return false;
    }
    const n = this.sock.write(chunk);
    if (n >= chunk.length) return true;
    this.outbox.push(n > 0 ? chunk.subarray(n) : chunk);
    return false;
  }

  end(): void {
    if (this.writableEnded || this.destroyed) return;
    this.writableEnded = true;
    if (this.outbox.length) this.endAfterFlush = true;
    else this.sock?.end();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.outbox = [];
    this.sock?.terminate();
    // As node does: "close" on a later tick, after whatever the caller does next.
    queueMicrotask(() => this.emit("close"));
  }

  pause(): this {
    if (!this.paused) {
      this.paused = true;
      this.sock?.pause();
    }
    return this;
  }

  resume(): this {
    if (!this.paused || this.destroyed) return this;
    this.paused = false;
    while (this.queued.length && !this.paused) this.deliver(this.queued.shift()!);
    if (!this.paused && !this.destroyed) this.sock?.resume();
    return this;
  }

  private arrive(q: Queued): void {
    if (this.paused || this.queued.length) this.queued.push(q);
    else this.deliver(q);
  }

  private deliver(q: Queued): void {
    if (q === "end") {
      if (this.readableEnded) return;
      this.readableEnded = true;
      this.emit("end");
    } else if (q === "close") {
      if (this.destroyed) return;
      this.destroyed = true;
      this.outbox = [];
      if (this.closeError) this.emit("error", this.closeError);
      this.emit("close");
    } else if (!this.destroyed) {
      this.emit("data", q);
    }
  }

  private flush(): void {
    if (!this.sock || this.destroyed) return;
    while (this.outbox.length) {
      const d = this.outbox[0]!;
      const n = this.sock.write(d);
      if (n < d.length) {
        if (n > 0) this.outbox[0] = d.subarray(n);
        return;
      }
      this.outbox.shift();
    }
    if (this.endAfterFlush) {
      this.endAfterFlush = false;
      this.sock.end();
    }
    this.emit("drain");
  }
}
