// src/util/idle-gc.ts: one collection per quiet period, only once the thread has been quiet long enough.
import { expect, test } from "bun:test";
import { idleGc } from "../../src/util/idle-gc.ts";

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
