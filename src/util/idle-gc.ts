// One full garbage collection once a thread has gone quiet. JSC collects as its heap grows, so a process
// that stops getting traffic keeps the garbage of its last burst (and the heap blocks holding it) until
// something allocates again; `oisp up` is idle most of the day. A collection costs 10-40 ms of the thread,
// paid once per quiet period, never during traffic.
//
// A collection keeps the thread's compiled code: bytecode and JIT code of every function that ran, about a
// third of what a thread holds after traffic (~5 MB each in `oisp up`). `dropCompiledCode` collects and drops
// that too; a function's code is rebuilt from source when it next runs, which the first call after it pays:
// 10-40 ms more CPU, and as much latency on a thread in the call's path (bench/README.md, issue 17).

export interface IdleGc {
  /** Activity now: the collection waits until `quietMs` after the last touch. */
  touch(): void;
  stop(): void;
}

/** `collect` is given how many quiet periods came before this one (0 the first time). */
export function idleGc(quietMs = 10_000, collect: (period: number) => void = () => Bun.gc(true)): IdleGc {
  let lastTouch = 0;
  let periods = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // One timer per quiet period, re-armed for what is left rather than reset on every touch.
  const arm = (ms: number) => {
    timer = setTimeout(check, ms);
    timer.unref?.();
  };
  const check = () => {
    timer = undefined;
    const quiet = performance.now() - lastTouch;
    if (quiet < quietMs) return arm(quietMs - quiet);
    collect(periods++);
  };
  return {
    touch() {
      lastTouch = performance.now();
      if (!timer) arm(quietMs);
    },
    stop() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

/**
 * A full collection that also drops the thread's compiled code (JSC's "shrink footprint when idle", which
 * Bun exposes as `Bun.shrink`: run once the current task has returned). Falls back to a plain collection
 * if this Bun lacks it.
 */
export function dropCompiledCode(): void {
  const shrink = (Bun as { shrink?: () => void }).shrink;
  if (typeof shrink === "function") shrink();
  else Bun.gc(true);
}
