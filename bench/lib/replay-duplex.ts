// The way oisp started the client's TLS before bench/relay-upgrade.ts (kept here as that bench's "duplex" mode): a
// Duplex over the raw client socket that first replays the peeked ClientHello, under a node:tls TLSSocket.
import type net from "node:net";
import { Duplex } from "node:stream";

export class ReplayDuplex extends Duplex {
  private prefix?: Uint8Array;
  private wrote = false;
  /** The client's EOF came after we had written to it (our ServerHello): it hung up on our answer, not right behind its ClientHello. */
  endedAfterWrite = false;

  /**
   * `onInbound` sees every byte read from the socket (not the replayed prefix), e.g. to spot TLS alerts;
   * `onOutbound` every byte written to it (our ServerHello first).
   */
  constructor(
    private readonly sock: net.Socket,
    prefix: Uint8Array,
    private readonly onInbound?: (chunk: Uint8Array) => void,
    private readonly onOutbound?: (chunk: Uint8Array) => void,
  ) {
    super({ allowHalfOpen: true });
    this.prefix = prefix.length ? prefix : undefined;
    sock.on("data", (chunk: Buffer) => {
      this.onInbound?.(chunk);
      if (!this.push(chunk)) sock.pause();
    });
    sock.on("end", () => {
      this.endedAfterWrite = this.wrote;
      this.push(null);
    });
    sock.on("error", (err) => this.destroy(err));
    sock.on("close", () => {
      if (!this.destroyed) this.destroy();
    });
  }

  override _read(): void {
    if (this.prefix) {
      const p = this.prefix;
      this.prefix = undefined;
      if (!this.push(Buffer.from(p.buffer, p.byteOffset, p.byteLength))) return;
    }
    this.sock.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.sock.destroyed) return cb(new Error("client socket closed"));
    this.wrote = true;
    this.onOutbound?.(chunk);
    if (this.sock.write(chunk)) cb();
    else this.sock.once("drain", () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.sock.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.sock.destroy();
    cb(err);
  }
}
