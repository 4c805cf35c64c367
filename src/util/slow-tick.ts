// One timer per thread for the slow housekeeping polls (pause state, unpin and stop requests, the status
// snapshot): an idle `oisp up` then wakes once a second instead of once per poll and phase. A wake-up costs
// more than its callback: when the thread goes back to sleep, Bun's allocator sweeps its heap.
// Polls asked for more often than the tick (tests) get a timer of their own. Work that may wait up to a tick
// (the sensor Worker's batches under sustained traffic) can ride the next one instead of a wake-up of its own.

/** The shared tick; periods are rounded up to a multiple of it. */
export const SLOW_TICK_MS = 1000;

interface Task {
  everyMs: number;
  fn: () => void;
  nextAt: number;
}

const tasks = new Set<Task>();
/** Callbacks for the next tick only (atNextSlowTick). */
const once = new Set<() => void>();
let timer: ReturnType<typeof setInterval> | undefined;

function tick(): void {
  if (once.size) {
    const fns = [...once];
    once.clear();
    for (const fn of fns) {
      try {
        fn();
      } catch {
        // Its owner handles its own errors; one that throws must not stop the others.
      }
    }
  }
  stopIfUnused();
  const now = performance.now();
  for (const t of tasks) {
    // Half a tick of slack: a timer that fires a little early must not skip a whole period.
    if (now + SLOW_TICK_MS / 2 < t.nextAt) continue;
    t.nextAt = now + t.everyMs;
    try {
      t.fn();
    } catch {
      // A poll handles its own errors; one that throws must not stop the others.
    }
  }
}

/**
 * Calls `fn` about every `everyMs` until the returned function is called. Never keeps the process alive
 * (unref'd), like the intervals it replaces.
 */
export function everySlowTick(everyMs: number, fn: () => void): () => void {
  if (everyMs < SLOW_TICK_MS) {
    const own = setInterval(fn, everyMs);
    own.unref?.();
    return () => clearInterval(own);
  }
  const task: Task = { everyMs, fn, nextAt: performance.now() + everyMs };
  tasks.add(task);
  startTimer();
  return () => {
    tasks.delete(task);
    stopIfUnused();
  };
}

/**
 * Calls `fn` once, at the next tick (within SLOW_TICK_MS), in the wake-up the thread has anyway for its polls;
 * the returned function cancels it. Never keeps the process alive.
 */
export function atNextSlowTick(fn: () => void): () => void {
  once.add(fn);
  startTimer();
  return () => {
    once.delete(fn);
    stopIfUnused();
  };
}

function startTimer(): void {
  if (timer) return;
  timer = setInterval(tick, SLOW_TICK_MS);
  timer.unref?.();
}

function stopIfUnused(): void {
  if (tasks.size === 0 && once.size === 0 && timer) {
    clearInterval(timer);
    timer = undefined;
  }
}
