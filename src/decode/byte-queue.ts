import { copyBytes } from "./types.ts";

// Bytes received but not yet consumed, kept as the pieces they arrived in. Frame decoders peek at a
// header and take a whole frame once enough bytes are there; nothing is copied until then, so a
// large frame arriving in many small pushes costs one copy, not one per push.

export class ByteQueue {
  private pieces: Uint8Array[] = [];
  /** Index of the first piece still in use (consumed pieces are dropped in batches). */
  private first = 0;
  /** Offset already consumed in pieces[first]. */
  private head = 0;
  private _length = 0;

  get length(): number {
    return this._length;
  }

  /** Keeps a copy of `data` (the caller may reuse its buffer). */
  push(data: Uint8Array): void {
    if (data.length === 0) return;
    this.pieces.push(copyBytes(data));
    this._length += data.length;
  }

  /** The first n bytes (n <= length) without consuming them. */
  peek(n: number): Uint8Array {
    const first = this.pieces[this.first];
    if (first && first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    return this.copy(n, false);
  }

  /** Removes and returns the first n bytes (n <= length). */
  take(n: number): Uint8Array {
    const first = this.pieces[this.first];
    if (first && first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.advance(n);
      return out;
    }
    return this.copy(n, true);
  }

  clear(): void {
    this.pieces = [];
    this.first = 0;
    this.head = 0;
    this._length = 0;
  }

  private copy(n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let offset = this.head;
    for (let i = this.first; i < this.pieces.length; i++) {
      const piece = this.pieces[i]!;
      if (filled === n) break;
      const part = piece.subarray(offset, Math.min(piece.length, offset + n - filled));
      out.set(part, filled);
      filled += part.length;
      offset = 0;
    }
    if (consume) this.advance(n);
    return out;
  }

  private advance(n: number): void {
    this._length -= n;
    while (n > 0) {
      const first = this.pieces[this.first]!;
      const left = first.length - this.head;
      if (n < left) {
        this.head += n;
        break;
      }
      n -= left;
      this.first++;
      this.head = 0;
    }
    if (this.first === this.pieces.length) {
      this.pieces = [];
      this.first = 0;
    } else if (this.first > 1024) {
      this.pieces = this.pieces.slice(this.first);
      this.first = 0;
    }
  }
}
