// One full garbage collection once a thread has gone quiet. JSC collects as its heap grows, so a process
// that stops getting traffic keeps the garbage of its last burst (and the heap blocks holding it) until
// something allocates again; `oisp up` is idle most of the day. A collection costs 10-40 ms of the thread,
// paid once per quiet period, never during traffic.

export interface IdleGc {
  /** Activity now: the collection waits until `quietMs` after the last touch. */
  touch(): void;
  stop(): void;
}

export function idleGc(quietMs = 10_000, collect: () => void = () => Bun.gc(true)): IdleGc {
  let lastTouch = 0;
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
    collect();
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
