// An exporter's disk spool: batches of events that could not be sent yet, kept in order on disk so a
// backend that is down (or a sensor restart) loses nothing up to `maxBytes`.
//
// Why not src/ipc/spool.ts: that one stores IPC frames (its reader parses the IPC frame prefix) and
// adopts files by redirector PID. Export batches are JSON with an id that must survive restarts (it is
// the idempotency key), so each batch is one JSON line: `{"id":"…","events":[…]}\n`.
//
// Segments `<seq>.jsonl` are appended to; the oldest is read whole into memory when its turn comes
// (segments are at most `segmentBytes`, so that stays bounded). A torn last line (crash mid-write) is
// dropped and reported. A batch is removed only after it was sent; on close, the unsent rest of the
// segment being read is written back, so a restart replays only unsent batches. A crash between a send
// and that rewrite replays a sent batch again: at-least-once, the receiver dedups on the id.
import fs from "node:fs";
import path from "node:path";

export interface SpooledBatch {
  id: string;
  events: unknown[];
}

export interface BatchSpoolOptions {
  dir: string;
  maxBytes: number;
  /** A new segment is started past this size. Default 4 MiB. */
  segmentBytes?: number;
  onLoss?: (message: string) => void;
}

const SEGMENT_RE = /^(\d{12})\.jsonl$/;

interface Head {
  file: string;
  batches: SpooledBatch[];
  /** Bytes of each batch's line, to keep the byte count right as they are consumed. */
  sizes: number[];
  next: number;
}

export class BatchSpool {
  private segments: string[] = [];
  private head?: Head;
  private bytes = 0;
  private batchesCount = 0;
  private appendFd?: number;
  private appendSize = 0;
  private nextSeq = 1;
  private closed = false;

  constructor(private readonly opts: BatchSpoolOptions) {
    fs.mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    // Segments left by an earlier run are replayed first, in order.
    for (const name of fs.readdirSync(opts.dir).sort()) {
      const m = SEGMENT_RE.exec(name);
      if (!m) continue;
      const file = path.join(opts.dir, name);
      const size = fs.statSync(file).size;
      if (size === 0) {
        fs.rmSync(file, { force: true });
        continue;
      }
      this.segments.push(file);
      this.bytes += size;
      this.batchesCount += countLines(file);
      this.nextSeq = Math.max(this.nextSeq, Number(m[1]) + 1);
    }
  }

  /** Bytes on disk not yet sent. */
  get pendingBytes(): number {
    return this.bytes;
  }

  get pendingBatches(): number {
    return this.batchesCount;
  }

  /** Appends a batch; false when it would pass maxBytes or the write failed (then nothing was written). */
  append(batch: SpooledBatch): boolean {
    if (this.closed) return false;
    const line = `${JSON.stringify(batch)}\n`;
    const buf = Buffer.from(line);
    if (this.bytes + buf.length > this.opts.maxBytes) return false;
    try {
      if (this.appendFd === undefined || this.appendSize >= (this.opts.segmentBytes ?? 4 * 1024 * 1024)) this.startSegment();
      let done = 0;
      try {
        while (done < buf.length) done += fs.writeSync(this.appendFd!, buf, done, buf.length - done);
      } catch (err) {
        fs.ftruncateSync(this.appendFd!, this.appendSize); // never leave half a line
        throw err;
      }
    } catch (err) {
      this.opts.onLoss?.(`spool write failed: ${(err as Error).message}`);
      return false;
    }
    this.appendSize += buf.length;
    this.bytes += buf.length;
    this.batchesCount++;
    return true;
  }

  /** The oldest batch, without removing it. */
  peek(): SpooledBatch | undefined {
    if (this.closed) return undefined;
    for (;;) {
      if (this.head && this.head.next < this.head.batches.length) return this.head.batches[this.head.next];
      if (this.head) this.dropHead();
      if (this.segments.length === 0) return undefined;
      this.loadHead();
    }
  }

  /** Removes the batch peek() returned (after it was sent). */
  shift(): void {
    if (this.closed || !this.head || this.head.next >= this.head.batches.length) return;
    this.bytes -= this.head.sizes[this.head.next]!;
    this.batchesCount--;
    this.head.next++;
    if (this.head.next >= this.head.batches.length) this.dropHead();
  }

  /** Closes files and writes back the unsent rest of the segment being read. Never throws. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.appendFd !== undefined) fs.closeSync(this.appendFd);
    } catch {
      // nothing more to do
    }
    this.appendFd = undefined;
    const head = this.head;
    if (!head || head.next === 0) return;
    try {
      const rest = head.batches.slice(head.next).map((b) => `${JSON.stringify(b)}\n`).join("");
      const tmp = `${head.file}.tmp`;
      fs.writeFileSync(tmp, rest, { mode: 0o600 });
      fs.renameSync(tmp, head.file);
    } catch (err) {
      this.opts.onLoss?.(`spool: could not record progress in ${head.file} (${(err as Error).message}); sent batches may be sent again`);
    }
  }

  private startSegment(): void {
    if (this.appendFd !== undefined) fs.closeSync(this.appendFd);
    const file = path.join(this.opts.dir, `${String(this.nextSeq++).padStart(12, "0")}.jsonl`);
    this.appendFd = fs.openSync(file, "a", 0o600);
    this.appendSize = 0;
    this.segments.push(file);
  }

  private loadHead(): void {
    const file = this.segments[0]!;
    // Reading the segment still being appended to: close it for appends so the next batch starts a new one.
    if (this.segments.length === 1 && this.appendFd !== undefined) {
      fs.closeSync(this.appendFd);
      this.appendFd = undefined;
    }
    const batches: SpooledBatch[] = [];
    const sizes: number[] = [];
    let text = "";
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      this.opts.onLoss?.(`spool: ${path.basename(file)} unreadable (${(err as Error).message})`);
    }
    let lost = 0;
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      const line = text.slice(start, nl);
      start = nl + 1;
      const size = Buffer.byteLength(line) + 1;
      try {
        const b = JSON.parse(line) as SpooledBatch;
        if (typeof b?.id !== "string" || !Array.isArray(b.events)) throw new Error("not a batch");
        batches.push(b);
        sizes.push(size);
      } catch {
        lost++;
        this.bytes -= size;
        this.batchesCount--;
      }
    }
    if (start < text.length) {
      // A torn last line: the process died mid-write (not counted as a batch: it has no newline).
      lost++;
      this.bytes -= Buffer.byteLength(text.slice(start));
    }
    if (lost > 0) this.opts.onLoss?.(`spool: ${lost} unreadable batch(es) in ${path.basename(file)} skipped`);
    this.head = { file, batches, sizes, next: 0 };
  }

  private dropHead(): void {
    const head = this.head!;
    this.head = undefined;
    this.segments.shift();
    fs.rmSync(head.file, { force: true });
  }
}

function countLines(file: string): number {
  const buf = fs.readFileSync(file);
  let n = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
  return n;
}
