// `oisp up`'s tap journal: what the relay taps is appended to disk before the sensor worker decodes it, and
// kept until the events it produced are committed. A crash of the process (SIGKILL, the OOM killer) then loses
// nothing a client got an answer for: the next start replays the journal through the sensor, and the events
// re-derived carry the same stable ids, so those already stored are not stored twice.
//
// Layout: segment files `<runId>-<pid>-<seq>.tapj`, each a run of records
//   u32 length of the rest · u32 nOps · u32 byte length of strs (JSON) · strs · ops (float64) · payload
// where ops + payload are a worker batch buffer (worker-protocol.ts), so a record replays as one batch.
// A connection can only be replayed from its open (the sensor has no decoder state for it): a segment is
// deleted once every connection opened in it or before is closed and its events are committed. Bounded:
// past `maxBytes` the oldest segment goes anyway, and the connections it held are counted as unprotected.
// Durability: records are written with writev(2), which survives the process being killed; the current
// segment is fdatasync'ed a second after a write (one timer per second at most, none while idle), or sooner,
// with the relay's next batch post (syncNow), which bounds what a power cut can take.
import fs from "node:fs";
import path from "node:path";
import { pidAlive } from "../capture/process/alive.ts";
import { OP_CLOSE, OP_OPEN, OP_WIDTH, payloadOffset } from "./worker-protocol.ts";

const SYNC_MS = 1000;
const NAME_RE = /^([0-9A-Za-z]{1,40})-(\d+)-(\d{8})\.tapj$/;
const HEADER = 12;
const EMPTY_STRS = Buffer.from("[]");

export interface TapJournalOptions {
  dir: string;
  runId: string;
  /** Journal size past which the oldest segment is dropped (its open connections become unreplayable). */
  maxBytes?: number;
  /** A new segment is started past this size. */
  segmentBytes?: number;
  onError?: (message: string) => void;
}

export interface TapJournalStats {
  segments: number;
  bytes: number;
  /** Connections whose open is journaled and whose events are not yet all committed. */
  protectedConnections: number;
  /** Connections given up to stay within maxBytes (or after a write error): a crash would lose them. */
  unprotected: number;
  writeErrors: number;
}

interface Segment {
  seq: number;
  file: string;
  fd: number;
  size: number;
  /** Connections opened in this segment whose events are not all committed yet. */
  live: number;
}

/** One record's content: op records (OP_WIDTH float64 each), their strings, and the payload chunks. */
export interface JournalEntry {
  ops: Float64Array;
  strs: unknown[];
  chunks: Uint8Array[];
  payloadBytes: number;
  /** connIds opened / closed by these ops, in order. */
  opened: string[];
  closed: string[];
  /** Global index just past the last of these ops (what the worker's durable acks count). */
  opEnd: number;
}

export class TapJournal {
  private readonly segments: Segment[] = [];
  private readonly conns = new Map<string, Segment>();
  /** Closed connections waiting for the worker to commit through their close op. */
  private closes: Array<{ connId: string; op: number }> = [];
  private nextSeq = 0;
  private total = 0;
  private readonly counters = { unprotected: 0, writeErrors: 0 };
  private broken = false;
  /** Armed by the first write after a sync. */
  private syncTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;

  constructor(private readonly opts: TapJournalOptions) {
    this.maxBytes = opts.maxBytes ?? 256 * 1024 * 1024;
    this.segmentBytes = opts.segmentBytes ?? 8 * 1024 * 1024;
  }

  append(e: JournalEntry): void {
    if (this.broken) {
      this.counters.unprotected += e.opened.length;
      return;
    }
    // The record goes out as one writev(2) of its parts: the payload is not copied (the worker batch makes
    // the one copy of it), and ops without strings (most data ops) need no JSON.
    const strsJson = e.strs.length ? Buffer.from(JSON.stringify(e.strs)) : EMPTY_STRS;
    const nOps = e.ops.length / OP_WIDTH;
    const size = HEADER + strsJson.length + payloadOffset(nOps) + e.payloadBytes;
    const head = Buffer.allocUnsafe(HEADER);
    head.writeUInt32LE(size - 4, 0);
    head.writeUInt32LE(nOps, 4);
    head.writeUInt32LE(strsJson.length, 8);
    const parts: Uint8Array[] = [head, strsJson, new Uint8Array(e.ops.buffer, e.ops.byteOffset, e.ops.byteLength)];
    for (const c of e.chunks) parts.push(c);
    let seg = this.segments.at(-1);
    try {
      if (!seg || seg.size >= this.segmentBytes) seg = this.openSegment();
      writeAll(seg.fd, parts, size, seg.size);
    } catch (err) {
      this.fail((err as Error).message);
      this.counters.unprotected += e.opened.length;
      return;
    }
    seg.size += size;
    this.total += size;
    this.syncSoon();
    for (const id of e.opened) {
      this.conns.set(id, seg);
      seg.live++;
    }
    for (const id of e.closed) this.closes.push({ connId: id, op: e.opEnd });
    this.enforceBound();
  }

  /** The worker has committed the events of every op before `upTo`. */
  durable(upTo: number): void {
    let n = 0;
    while (n < this.closes.length && this.closes[n]!.op <= upTo) {
      const { connId } = this.closes[n++]!;
      const seg = this.conns.get(connId);
      if (!seg) continue;
      this.conns.delete(connId);
      seg.live--;
    }
    if (n > 0) this.closes = this.closes.slice(n);
    this.trim();
  }

  /** Whether a durable mark would change anything: only closed connections wait for one. */
  awaitsDurable(): boolean {
    return this.closes.length > 0;
  }

  stats(): TapJournalStats {
    return { segments: this.segments.length, bytes: this.total, protectedConnections: this.conns.size, unprotected: this.counters.unprotected, writeErrors: this.counters.writeErrors };
  }

  /** After a clean stop (everything committed): the journal is no longer needed. Otherwise it stays for the next start. */
  close(clean: boolean): void {
    clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    for (const seg of this.segments) {
      closeQuietly(seg.fd);
      if (clean) rmQuietly(seg.file);
    }
    this.segments.length = 0;
    this.conns.clear();
  }

  /** Deletes head segments no open connection needs (never the one being written). */
  private trim(): void {
    while (this.segments.length > 1 && this.segments[0]!.live === 0) this.dropHead();
  }

  private enforceBound(): void {
    while (this.total > this.maxBytes && this.segments.length > 1) {
      const head = this.segments[0]!;
      this.counters.unprotected += head.live;
      for (const [id, seg] of this.conns) if (seg === head) this.conns.delete(id);
      if (head.live > 0) this.opts.onError?.(`tap journal over ${this.maxBytes} bytes: ${head.live} open connections can no longer be replayed after a crash`);
      this.dropHead();
    }
    this.trim();
  }

  private dropHead(): void {
    const seg = this.segments.shift()!;
    this.total -= seg.size;
    closeQuietly(seg.fd);
    rmQuietly(seg.file);
  }

  private openSegment(): Segment {
    fs.mkdirSync(this.opts.dir, { recursive: true, mode: 0o700 });
    const seq = this.nextSeq++;
    const file = path.join(this.opts.dir, `${this.opts.runId}-${process.pid}-${String(seq).padStart(8, "0")}.tapj`);
    const fd = fs.openSync(file, "w", 0o600);
    const seg: Segment = { seq, file, fd, size: 0, live: 0 };
    this.segments.push(seg);
    return seg;
  }

  /**
   * The sync a write armed, now instead of at its timer: the relay calls this when it posts a batch, so under
   * sustained traffic the journal's sync shares that wake-up instead of having one of its own. Earlier, never later.
   */
  syncNow(): void {
    if (!this.syncTimer) return;
    clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    const seg = this.segments.at(-1);
    if (seg) fs.fdatasync(seg.fd, () => {});
  }

  /** A write is not yet synced (its sync is armed). */
  get syncPending(): boolean {
    return this.syncTimer !== undefined;
  }

  private syncSoon(): void {
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      const seg = this.segments.at(-1);
      if (seg) fs.fdatasync(seg.fd, () => {});
    }, SYNC_MS);
    this.syncTimer.unref?.();
  }

  private fail(message: string): void {
    this.counters.writeErrors++;
    this.broken = true;
    this.opts.onError?.(`tap journal: ${message}; captures are no longer protected against a crash until restart`);
  }
}

/** A batch to hand to the sensor worker, as read back from a journal. */
export interface ReplayBatch {
  buf: ArrayBuffer;
  nOps: number;
  strs: unknown[];
}

export interface Recovered {
  batches: ReplayBatch[];
  /** Journal files read: delete them once the replay is committed. */
  files: string[];
  connections: number;
  bytes: number;
  /** Torn or unreadable records (a write cut by the kill). */
  problems: string[];
}

/**
 * Reads the journals of `oisp up` runs that are gone (not this process, not a live pid), run by run. Each
 * run's connections still open at its end get a close (the crash ended them), so connection numbers are free
 * again before the next run's records, and before new traffic.
 */
export function recoverJournals(dir: string, now: number): Recovered {
  const out: Recovered = { batches: [], files: [], connections: 0, bytes: 0, problems: [] };
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => NAME_RE.test(n)).sort();
  } catch {
    return out;
  }
  const runs = new Map<string, string[]>();
  for (const name of names) {
    const [, runId, pid] = NAME_RE.exec(name)!;
    if (Number(pid) === process.pid || pidAlive(Number(pid))) continue;
    const key = `${runId}-${pid}`;
    runs.set(key, [...(runs.get(key) ?? []), name]);
  }
  for (const files of runs.values()) {
    const open = new Set<number>();
    for (const name of files) {
      const file = path.join(dir, name);
      out.files.push(file);
      let data: Buffer;
      try {
        data = fs.readFileSync(file);
      } catch (err) {
        out.problems.push(`${name}: ${(err as Error).message}`);
        continue;
      }
      out.bytes += data.length;
      let at = 0;
      while (at < data.length) {
        const batch = readRecord(data, at);
        if (!batch) {
          out.problems.push(`${name}: torn record at byte ${at} (${data.length - at} bytes not replayed)`);
          break;
        }
        at = batch.next;
        const ops = new Float64Array(batch.buf, 0, batch.nOps * OP_WIDTH);
        for (let i = 0; i < ops.length; i += OP_WIDTH) {
          if (ops[i] === OP_OPEN) {
            open.add(ops[i + 1]!);
            out.connections++;
          } else if (ops[i] === OP_CLOSE) open.delete(ops[i + 1]!);
        }
        out.batches.push({ buf: batch.buf, nOps: batch.nOps, strs: batch.strs });
      }
    }
    if (open.size > 0) out.batches.push(closeBatch([...open], now, "oisp stopped before the connection ended (replayed after a crash)"));
  }
  return out;
}

function readRecord(data: Buffer, at: number): (ReplayBatch & { next: number }) | undefined {
  if (data.length - at < HEADER) return undefined;
  const len = data.readUInt32LE(at);
  const nOps = data.readUInt32LE(at + 4);
  const strsLen = data.readUInt32LE(at + 8);
  const end = at + 4 + len;
  const opsAt = at + HEADER + strsLen;
  if (end > data.length || opsAt + payloadOffset(nOps) > end) return undefined;
  let strs: unknown[];
  try {
    strs = JSON.parse(data.toString("utf8", at + HEADER, opsAt)) as unknown[];
  } catch {
    return undefined;
  }
  // A fresh buffer: the worker takes ownership of it (transferred), and float64 views need alignment.
  const buf = new ArrayBuffer(end - opsAt);
  new Uint8Array(buf).set(data.subarray(opsAt, end));
  return { buf, nOps, strs, next: end };
}

function closeBatch(conns: number[], ts: number, error: string): ReplayBatch {
  const buf = new ArrayBuffer(payloadOffset(conns.length));
  const ops = new Float64Array(buf);
  const strs: unknown[] = [];
  conns.forEach((no, i) => {
    ops.set([OP_CLOSE, no, ts, 1, 0], i * OP_WIDTH);
    strs.push(error);
  });
  return { buf, nOps: conns.length, strs };
}

function writeAll(fd: number, parts: Uint8Array[], size: number, position: number): void {
  try {
    const done = fs.writevSync(fd, parts, position);
    // A regular file takes the whole writev unless the disk is full (then the next write throws).
    if (done < size) {
      const rest = Buffer.concat(parts).subarray(done);
      for (let at = 0; at < rest.length; ) at += fs.writeSync(fd, rest, at, rest.length - at, position + done + at);
    }
  } catch (err) {
    try {
      fs.ftruncateSync(fd, position); // never half a record
    } catch {
      // the reader stops at the torn record anyway
    }
    throw err;
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}

function rmQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // gone or not ours: nothing to do
  }
}
