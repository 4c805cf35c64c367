// One connection's view of the tap. open() waits for the process lookup (bounded), so data frames that
// come first are held in a small bounded buffer and flushed right after open(). Nothing here may throw
// into the relay or make it wait: every TapSink call is wrapped.
import type { ConnMeta, Direction, TapSink } from "../tap/types.ts";
import { nowMs } from "../tap/types.ts";

export interface ConnTapLimits {
  /** Bytes held before open(); past it the connection is opened without waiting for the lookup. */
  maxBufferedBytes: number;
}

/** Held at most ~lookup timeout (250 ms); small because 10,000 connections may each hold this much. */
export const DEFAULT_CONN_TAP_LIMITS: ConnTapLimits = { maxBufferedBytes: 512 * 1024 };

/** Catches anything a sink throws; reports every failure through `onError`, `first` set on the first. */
export function safeTap(sink: TapSink, onError: (err: unknown, first: boolean) => void): TapSink {
  let failed = false;
  const guard = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      onError(err, !failed);
      failed = true;
    }
  };
  return {
    open: (meta) => guard(() => sink.open(meta)),
    data: (id, dir, bytes, ts) => guard(() => sink.data(id, dir, bytes, ts)),
    close: (id, ts, err) => guard(() => sink.close(id, ts, err)),
    // A sink that fails here must not hold an answer back: forward at once.
    afterJournal: (fn) => {
      if (!sink.afterJournal) return fn();
      let ran = false;
      const once = () => {
        if (ran) return;
        ran = true;
        fn();
      };
      try {
        sink.afterJournal(once);
      } catch (err) {
        onError(err, !failed);
        failed = true;
        once();
      }
    },
  };
}

export class ConnTap {
  private opened = false;
  private opening = false;
  private openedP?: Promise<void>;
  private closed = false;
  private pendingClose?: { ts: number; error?: string };
  private held: Array<{ dir: Direction; bytes: Uint8Array; ts: number }> = [];
  private heldBytes = 0;

  /** `meta` is filled in as the connection progresses; open() sends it as it is then. */
  constructor(
    private readonly sink: TapSink,
    readonly meta: ConnMeta,
    private readonly limits: ConnTapLimits = DEFAULT_CONN_TAP_LIMITS,
  ) {}

  get isOpen(): boolean {
    return this.opened;
  }

  open(): void {
    if (this.opened) return;
    this.opened = true;
    this.sink.open({ ...this.meta });
    for (const f of this.held) this.sink.data(this.meta.connId, f.dir, f.bytes, f.ts);
    this.held = [];
    this.heldBytes = 0;
    if (this.pendingClose) this.sink.close(this.meta.connId, this.pendingClose.ts, this.pendingClose.error);
  }

  /** Opens once `process` settles or after `timeoutMs`, whichever is first; resolves once open. */
  openAfter(lookup: Promise<ConnMeta["process"]>, timeoutMs: number): Promise<void> {
    if (this.opened || this.opening) return this.openedP ?? Promise.resolve();
    this.opening = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    this.openedP = Promise.race([lookup.catch(() => undefined), timeout]).then((proc) => {
      clearTimeout(timer);
      if (proc && !this.opened) this.meta.process = proc;
      this.open();
    });
    return this.openedP;
  }

  data(dir: Direction, bytes: Uint8Array): void {
    if (this.closed) return;
    const ts = nowMs();
    if (this.opened) return this.sink.data(this.meta.connId, dir, bytes, ts);
    this.held.push({ dir, bytes, ts });
    this.heldBytes += bytes.length;
    if (this.heldBytes > this.limits.maxBufferedBytes) this.open();
  }

  /** Runs `fn` once what was tapped is journaled (at once without a journal): answers are forwarded through it. */
  afterJournal(fn: () => void): void {
    return this.sink.afterJournal ? this.sink.afterJournal(fn) : fn();
  }

  /** A short connection may end before the lookup: then open, flush and close happen together once it settles. */
  close(error?: string): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.opened && this.opening) {
      this.pendingClose = { ts: nowMs(), error };
      return;
    }
    this.open();
    this.sink.close(this.meta.connId, nowMs(), error);
  }
}
