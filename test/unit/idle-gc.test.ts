// src/util/idle-gc.ts: one collection per quiet period, only once the thread has been quiet long enough; the
// collection that also drops compiled code.
import { expect, test } from "bun:test";
import { numberOfDFGCompiles } from "bun:jsc";
import { dropCompiledCode, idleGc } from "../../src/util/idle-gc.ts";

test("collects once, quietMs after the last touch; a new period needs a new touch", async () => {
  const collected: number[] = [];
  const gc = idleGc(80, () => collected.push(performance.now()));
  gc.touch();
  await Bun.sleep(40);
  const lastTouch = performance.now();
  gc.touch(); // activity within the period pushes the collection out
  const deadline = Date.now() + 5000;
  while (collected.length === 0 && Date.now() < deadline) await Bun.sleep(5);
  expect(collected.length).toBe(1);
  expect(collected[0]! - lastTouch).toBeGreaterThanOrEqual(79);
  await Bun.sleep(200);
  expect(collected.length).toBe(1); // quiet stays quiet: no collection without new activity
  gc.touch();
  gc.stop();
  await Bun.sleep(200);
  expect(collected.length).toBe(1); // stopped
});

test("tells the collection which quiet period it is", async () => {
  const periods: number[] = [];
  const gc = idleGc(20, (period) => periods.push(period));
  for (let i = 0; i < 3; i++) {
    gc.touch();
    const deadline = Date.now() + 5000;
    while (periods.length === i && Date.now() < deadline) await Bun.sleep(5);
  }
  gc.stop();
  expect(periods).toEqual([0, 1, 2]);
});

test("dropCompiledCode drops a function's optimized code, which it rebuilds when it runs again", async () => {
  // A plain Bun.gc(true) keeps it (the count stays 1): then the idle sensor kept its compiled code.
  const hot = (x: number) => {
    let s = 0;
    for (let i = 0; i < 100; i++) s += (x * i) % 7;
    return s;
  };
  const expected = hot(3);
  const deadline = Date.now() + 10_000;
  for (let i = 0; numberOfDFGCompiles(hot) === 0 && Date.now() < deadline; i++) hot(i);
  expect(numberOfDFGCompiles(hot)).toBeGreaterThan(0);
  dropCompiledCode();
  await Bun.sleep(0); // it runs once the current task has returned
  expect(numberOfDFGCompiles(hot)).toBe(0);
  expect(hot(3)).toBe(expected);
});
