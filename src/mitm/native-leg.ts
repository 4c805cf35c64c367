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

/** Bytes a leg reads ahead while it waits for the relay before it stops reading (node streams hold 16–64 KiB). */
const MAX_QUEUED_BYTES = 64 * 1024;

/** One or more ALPN protocol names in the wire format Bun's native TLS options take (each length-prefixed). */
export function alpnWire(names: readonly string[]): Uint8Array {
  return Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([Buffer.byteLength(n, "latin1")]), Buffer.from(n, "latin1")])));
}

/**
 * The native socket inside a net.Socket (Bun keeps a Bun.Socket in `_handle`), whose `upgradeTLS` starts TLS on it
 * in place: what Bun's own node:tls calls. Throws when there is none.
 */
export function nativeHandle<T>(sock: object): T {
  const handle = (sock as { _handle?: { upgradeTLS?: unknown } })._handle;
  if (typeof handle?.upgradeTLS !== "function") throw new Error("socket has no native handle to start TLS on");
  return handle as T;
}

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
  private queuedBytes = 0;
  private closeError?: Error;
  /** The peer's end or close has arrived, maybe still queued behind data. */
  peerGone = false;
  /** Bytes the socket took (a socket already reset by the peer takes none). */
  bytesAccepted = 0;

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


  write(chunk: Uint8Array): boolean {
    if (this.destroyed || this.writableEnded || !this.sock) return false;
    this.onWrite?.();
    if (this.outbox.length) {
      this.outbox.push(chunk);
      return false;
    }
    const n = this.sock.write(chunk);
    if (n > 0) this.bytesAccepted += n;
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
    while (this.queued.length && !this.paused) {
      const q = this.queued.shift()!;
      if (typeof q !== "string") this.queuedBytes -= q.length;
      this.deliver(q);
    }
    if (!this.paused && !this.destroyed) this.sock?.resume();
    return this;
  }

  private arrive(q: Queued): void {
    if (q === "end" || q === "close") this.peerGone = true;
    if (!this.paused && !this.queued.length) return this.deliver(q);
    this.queued.push(q);
    // Reads go on while the leg waits to be relayed (so a peer's FIN is seen: tunnel.ts redials a leg the
    // upstream dropped meanwhile), up to a bound.
    if (typeof q !== "string" && (this.queuedBytes += q.length) > MAX_QUEUED_BYTES) this.sock?.pause();
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
      // An EventEmitter throws an "error" nobody listens to; the relay always does.
      if (this.closeError && this.listenerCount("error")) this.emit("error", this.closeError);
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
      if (n > 0) this.bytesAccepted += n;
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
