// The log files behind `View Logs`: each role appends its log lines to <data dir>/logs/<role>.log
// (%LOCALAPPDATA%\OISP\logs on Windows), as well as writing them to stderr. Bounded: past maxBytes the file
// is renamed <role>.1.log (older ones shift up to <role>.<keep>.log, the oldest is deleted), so one role
// never holds more than maxBytes * (keep + 1) on disk. A file that cannot be written is reported once on
// stderr and then left alone: logging never takes a role down.
import fs from "node:fs";
import path from "node:path";

export interface LogFileOptions {
  maxBytes: number;
  /** Rotated files kept besides the current one. */
  keep: number;
}

export const DEFAULT_LOG_FILE: LogFileOptions = { maxBytes: 1024 * 1024, keep: 4 };

export function logDir(dataDir: string): string {
  return path.join(dataDir, "logs");
}

export function logFilePath(dataDir: string, role: string): string {
  return path.join(logDir(dataDir), `${role}.log`);
}

/** `sensor.log` → `sensor.2.log`. */
function rotatedPath(file: string, n: number): string {
  return file.replace(/\.log$/, `.${n}.log`);
}

export class RotatingLogFile {
  private fd: number | undefined;
  private size = 0;
  private failed = false;
  /** Lines not written because the file failed (counted, shown once). */
  lost = 0;

  constructor(
    readonly file: string,
    private readonly opts: LogFileOptions = DEFAULT_LOG_FILE,
  ) {}

  write(line: string): void {
    if (this.failed) {
      this.lost++;
      return;
    }
    try {
      const bytes = Buffer.from(line.endsWith("\n") ? line : `${line}\n`);
      if (this.fd === undefined) this.open();
      if (this.size > 0 && this.size + bytes.length > this.opts.maxBytes) this.rotate();
      fs.writeSync(this.fd!, bytes);
      this.size += bytes.length;
    } catch (err) {
      this.failed = true;
      this.lost++;
      this.closeFd();
      process.stderr.write(`oisp: cannot write the log file ${this.file}: ${(err as Error).message}; logging to stderr only\n`);
    }
  }

  close(): void {
    this.closeFd();
  }

  private open() {
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    this.fd = fs.openSync(this.file, "a", 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  private rotate() {
    this.closeFd();
    fs.rmSync(rotatedPath(this.file, this.opts.keep), { force: true });
    for (let n = this.opts.keep - 1; n >= 1; n--) {
      const from = rotatedPath(this.file, n);
      if (fs.existsSync(from)) fs.renameSync(from, rotatedPath(this.file, n + 1));
    }
    if (this.opts.keep > 0) fs.renameSync(this.file, rotatedPath(this.file, 1));
    else fs.rmSync(this.file, { force: true });
    this.open();
  }

  private closeFd() {
    if (this.fd === undefined) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // already gone
    }
    this.fd = undefined;
  }
}

/** One writer per file per process: `oisp up` re-reads its config on SIGHUP and must not open the file twice. */
const open = new Map<string, RotatingLogFile>();

export function roleLogFile(dataDir: string, role: string, opts?: LogFileOptions): RotatingLogFile {
  const file = logFilePath(dataDir, role);
  let f = open.get(file);
  if (!f) {
    f = new RotatingLogFile(file, opts);
    open.set(file, f);
  }
  return f;
}
