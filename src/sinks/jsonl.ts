// JSONL export: one event per line, appended in batches, rotated by size (path.1 is the newest old file).
// A write failure (disk full, no permission) is counted and reported once per episode through onError;
// it never reaches the pipeline. Lines that could not be written are dropped and counted.
import fs from "node:fs";
import path from "node:path";

export interface JsonlSinkOptions {
  /** Rotate before the file would grow past this many bytes. Default: no rotation. */
  maxBytes?: number;
  /** Rotated files kept (path.1 … path.N). Default 5. */
  keep?: number;
  /** Buffered bytes that trigger a write right away. Default 64 KiB. */
  flushBytes?: number;
  /** Buffered lines are written at the latest after this delay. Default 200 ms. */
  flushIntervalMs?: number;
  /** Bound on buffered bytes; lines beyond it are dropped and counted. Default 16 MiB. */
  maxBufferBytes?: number;
  onError?: (err: Error) => void;
}

export interface JsonlSinkStats {
  /** Lines written to disk. */
  written: number;
  bytes: number;
  /** Lines lost: write errors, a full buffer, not serialisable, or written after close. */
  dropped: number;
  errors: number;
  rotations: number;
  pendingBytes: number;
  lastError?: string;
}

export class JsonlSink {
  private fd?: number;
  /** Size of the current file as far as we know (our own appends are the only writers we expect). */
  private size = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private timer?: ReturnType<typeof setTimeout>;
  private closed = false;
  private failing = false;
  private readonly counters = { written: 0, bytes: 0, dropped: 0, errors: 0, rotations: 0 };
  private lastError?: string;

  constructor(
    readonly path: string,
    private readonly opts: JsonlSinkOptions = {},
  ) {}

  write(event: unknown): void {
    if (this.closed) return void this.counters.dropped++;
    let line: string;
    try {
      line = `${JSON.stringify(event)}\n`;
    } catch (err) {
      this.counters.dropped++;
      return this.fail(new Error(`jsonl: event not serialisable: ${(err as Error).message}`));
    }
    const bytes = Buffer.byteLength(line);
    if (this.pendingBytes + bytes > (this.opts.maxBufferBytes ?? 16 * 1024 * 1024)) return void this.counters.dropped++;
    this.pending.push(line);
    this.pendingBytes += bytes;
    if (this.pendingBytes >= (this.opts.flushBytes ?? 64 * 1024)) this.flush();
    else if (!this.timer) {
      this.dueAt = performance.now() + (this.opts.flushIntervalMs ?? 200);
      this.timer = setTimeout(() => this.flush(), this.opts.flushIntervalMs ?? 200);
      this.timer.unref?.();
    }
  }

  private dueAt = 0;

  /** Flushes if the flush timer is overdue (a busy Bun Worker may run no timers: see StoreOutput.flushIfDue). */
  flushIfDue(now = performance.now()): void {
    if (this.timer && now >= this.dueAt) this.flush();
  }

  /** Writes what is buffered. Never throws. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    let i = 0;
    try {
      this.ensureOpen();
      const maxBytes = this.opts.maxBytes;
      while (i < lines.length) {
        // Gather the lines that fit in the current file, write them in one call.
        let chunk = "";
        let chunkBytes = 0;
        let n = 0;
        while (i + n < lines.length) {
          const b = Buffer.byteLength(lines[i + n]!);
          const fits = maxBytes === undefined || this.size + chunkBytes + b <= maxBytes || this.size + chunkBytes === 0;
          if (!fits) break;
          chunk += lines[i + n];
          chunkBytes += b;
          n++;
        }
        if (n === 0) {
          this.rotate();
          continue;
        }
        this.append(Buffer.from(chunk));
        i += n;
        this.counters.written += n;
      }
      this.failing = false;
    } catch (err) {
      this.counters.dropped += lines.length - i;
      this.fail(err as Error);
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // nothing to do
      }
      this.fd = undefined;
    }
  }

  stats(): JsonlSinkStats {
    return { ...this.counters, pendingBytes: this.pendingBytes, lastError: this.lastError };
  }

  private ensureOpen(): void {
    if (this.fd !== undefined) return;
    try {
      this.fd = fs.openSync(this.path, "a", 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      // --output / OutputPath may name a folder that does not exist yet (the seed's Documents\OISP).
      fs.mkdirSync(path.dirname(this.path), { recursive: true, mode: 0o700 });
      this.fd = fs.openSync(this.path, "a", 0o600);
    }
    this.size = fs.fstatSync(this.fd).size;
  }

  /** Appends all bytes or rolls the file back, so a failed write never leaves half a line. */
  private append(buf: Buffer): void {
    let done = 0;
    try {
      while (done < buf.length) done += fs.writeSync(this.fd!, buf, done, buf.length - done);
    } catch (err) {
      try {
        fs.ftruncateSync(this.fd!, this.size);
      } catch {
        // best effort
      }
      throw err;
    }
    this.size += buf.length;
    this.counters.bytes += buf.length;
  }

  /** path → path.1 → path.2 … → path.keep (the oldest is deleted). */
  private rotate(): void {
    const keep = Math.max(1, this.opts.keep ?? 5);
    fs.closeSync(this.fd!);
    this.fd = undefined;
    fs.rmSync(`${this.path}.${keep}`, { force: true });
    for (let n = keep - 1; n >= 1; n--) {
      if (fs.existsSync(`${this.path}.${n}`)) fs.renameSync(`${this.path}.${n}`, `${this.path}.${n + 1}`);
    }
    fs.renameSync(this.path, `${this.path}.1`);
    this.counters.rotations++;
    this.ensureOpen();
  }

  private fail(err: Error): void {
    this.counters.errors++;
    this.lastError = err.message;
    // Once per episode: a full disk would otherwise report on every flush.
    if (this.failing) return;
    this.failing = true;
    try {
      this.opts.onError?.(err);
    } catch {
      // a throwing callback must not break the sink either
    }
  }
}
