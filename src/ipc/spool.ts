// The redirector's disk spool: encoded frames appended to segment files while the sensor is away (or the
// memory queue is full), read back in order when it returns. Frames are already length-prefixed (see
// frames.ts), so a segment is simply frames back to back.
//
// Segment names sort in replay order: `<runId ULID>-<pid>-<seq>.spool`. Segments left by a redirector that
// died are adopted (renamed to ours, so two new redirectors never replay the same file) and replayed first.
import fs from "node:fs";
import path from "node:path";
import { pidAlive } from "../capture/process/alive.ts";
import { FRAME_PREFIX_BYTES, parseFramePrefix } from "./frames.ts";

const NAME_RE = /^([0-9A-HJKMNP-TV-Z]{26})-(\d+)-(\d{10})\.spool$/;
/** Own segments start mid-range so segments can also be put in front of them (prepend). */
const FIRST_OWN_SEQ = 1_000_000_000;

/** Run ids of spools open in this process: their files are never adopted by another client here. */
const activeRunIds = new Set<string>();

interface Segment {
  path: string;
  seq: number;
  fd: number;
  /** Bytes in the file that are valid frames. */
  size: number;
  /** Bytes already replayed. */
  readOffset: number;
  /** Still the append target. */
  writable: boolean;
}

export type AppendResult = { ok: true } | { ok: false; reason: "full" } | { ok: false; reason: "error"; message: string };

export interface SpoolOptions {
  dir: string;
  runId: string;
  maxBytes: number;
  /** Reports a segment that could not be replayed whole (garbage, torn tail, read error). */
  onLoss?: (message: string) => void;
}

export class Spool {
  private readonly segments: Segment[] = [];
  private pending = 0;
  private nextSeq = FIRST_OWN_SEQ;
  private closed = false;

  constructor(private readonly opts: SpoolOptions) {
    activeRunIds.add(opts.runId);
  }

  /** Bytes on disk waiting to be replayed. */
  get pendingBytes(): number {
    return this.pending;
  }

  get isEmpty(): boolean {
    return this.segments.length === 0;
  }

  /** Claims segments left by redirectors that are gone. Returns the bytes adopted. Never throws. */
  adoptOrphans(): number {
    let names: string[];
    try {
      names = fs.readdirSync(this.opts.dir).filter((n) => NAME_RE.test(n)).sort();
    } catch {
      return 0;
    }
    let adopted = 0;
    let seq = 0;
    for (const name of names) {
      const [, runId, pidText] = NAME_RE.exec(name)!;
      if (activeRunIds.has(runId!) || (Number(pidText) !== process.pid && pidAlive(Number(pidText)))) continue;
      const claimed = path.join(this.opts.dir, this.segmentName(seq++));
      try {
        fs.renameSync(path.join(this.opts.dir, name), claimed); // atomic: the loser of a race gets ENOENT
        const fd = fs.openSync(claimed, "r");
        const size = fs.fstatSync(fd).size;
        this.segments.splice(this.ownStart(), 0, { path: claimed, seq: seq - 1, fd, size, readOffset: 0, writable: false });
        this.pending += size;
        adopted += size;
      } catch {
        // Claimed by someone else or unreadable: not ours to replay.
      }
    }
    return adopted;
  }

  append(frame: Uint8Array): AppendResult {
    if (this.closed) return { ok: false, reason: "error", message: "spool closed" };
    if (this.pending + frame.length > this.opts.maxBytes) return { ok: false, reason: "full" };
    let seg = this.segments.at(-1);
    try {
      if (!seg?.writable) seg = this.openSegment(this.nextSeq++, "end");
      writeAll(seg, frame);
    } catch (err) {
      return { ok: false, reason: "error", message: (err as Error).message };
    }
    this.pending += frame.length;
    return { ok: true };
  }

  /** Puts frames in front of everything spooled (older frames that were still in memory). Returns how many fit. */
  prepend(frames: Uint8Array[]): { written: number; error?: string } {
    if (frames.length === 0 || this.closed) return { written: 0 };
    // Older than every own segment, newer than adopted ones (those predate this run entirely).
    const own = this.segments.slice(this.ownStart());
    const seq = own.length > 0 ? Math.min(...own.map((s) => s.seq)) - 1 : this.nextSeq++;
    let seg: Segment;
    try {
      seg = this.openSegment(seq, "ownFront");
    } catch (err) {
      return { written: 0, error: (err as Error).message };
    }
    seg.writable = false;
    let written = 0;
    for (const frame of frames) {
      if (this.pending + frame.length > this.opts.maxBytes) return { written, error: "spool full" };
      try {
        writeAll(seg, frame);
      } catch (err) {
        return { written, error: (err as Error).message };
      }
      this.pending += frame.length;
      written++;
    }
    return { written };
  }

  /** The oldest spooled frame (whole, as written), or undefined when the spool is empty. Never throws. */
  readNext(): Uint8Array | undefined {
    while (this.segments.length > 0) {
      const seg = this.segments[0]!;
      if (seg.readOffset >= seg.size) {
        this.removeHead();
        continue;
      }
      const frame = this.readFrameAt(seg);
      if (frame) {
        seg.readOffset += frame.length;
        this.pending -= frame.length;
        if (seg.readOffset >= seg.size) this.removeHead();
        return frame;
      }
      this.removeHead(); // unreadable rest of the segment: readFrameAt reported it
    }
    return undefined;
  }

  /** Closes the files; what was not replayed stays on disk for the next redirector. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const seg of this.segments) closeQuietly(seg.fd);
    this.segments.length = 0;
    activeRunIds.delete(this.opts.runId);
  }

  private readFrameAt(seg: Segment): Uint8Array | undefined {
    const where = `${path.basename(seg.path)} at byte ${seg.readOffset}`;
    const rest = seg.size - seg.readOffset;
    const lost = (why: string) => {
      this.pending -= rest;
      this.opts.onLoss?.(`ipc: spool ${where}: ${why}; ${rest} bytes not replayed`);
      return undefined;
    };
    try {
      if (rest < FRAME_PREFIX_BYTES) return lost("torn frame at the end (redirector stopped mid-write)");
      const prefix = readExactly(seg.fd, FRAME_PREFIX_BYTES, seg.readOffset);
      const parsed = parseFramePrefix(prefix);
      if ("error" in parsed) return lost(parsed.error);
      if (parsed.totalLength > rest) return lost("torn frame at the end (redirector stopped mid-write)");
      return readExactly(seg.fd, parsed.totalLength, seg.readOffset);
    } catch (err) {
      return lost((err as Error).message);
    }
  }

  private openSegment(seq: number, at: "ownFront" | "end"): Segment {
    fs.mkdirSync(this.opts.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.opts.dir, this.segmentName(seq));
    const fd = fs.openSync(file, "w+", 0o600);
    const seg: Segment = { path: file, seq, fd, size: 0, readOffset: 0, writable: true };
    if (at === "end") this.segments.push(seg);
    else this.segments.splice(this.ownStart(), 0, seg);
    return seg;
  }

  private removeHead(): void {
    const seg = this.segments.shift();
    if (!seg) return;
    closeQuietly(seg.fd);
    try {
      fs.unlinkSync(seg.path);
    } catch {
      // already gone
    }
  }

  /** Index of the first own (non-adopted) segment. */
  private ownStart(): number {
    const i = this.segments.findIndex((s) => s.seq >= FIRST_OWN_SEQ / 2);
    return i === -1 ? this.segments.length : i;
  }

  private segmentName(seq: number): string {
    return `${this.opts.runId}-${process.pid}-${String(seq).padStart(10, "0")}.spool`;
  }
}

/** Appends the whole frame or rolls the file back to its last good size, so a segment never holds half a frame. */
function writeAll(seg: Segment, bytes: Uint8Array): void {
  let done = 0;
  try {
    while (done < bytes.length) done += fs.writeSync(seg.fd, bytes, done, bytes.length - done, seg.size + done);
  } catch (err) {
    try {
      fs.ftruncateSync(seg.fd, seg.size);
    } catch {
      // nothing more to do; the reader stops at seg.size anyway
    }
    throw err;
  }
  seg.size += bytes.length;
}

function readExactly(fd: number, length: number, position: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, length - done, position + done);
    if (n === 0) throw new Error("unexpected end of file");
    done += n;
  }
  return out;
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}
