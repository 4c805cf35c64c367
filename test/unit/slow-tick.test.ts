// The shared housekeeping tick (src/util/slow-tick.ts): polls of a second or more run on one timer, each at
// its own period; a shorter period (tests) gets its own timer; stopping one leaves the others running.
import { expect, test } from "bun:test";
import { atNextSlowTick, everySlowTick, SLOW_TICK_MS } from "../../src/util/slow-tick.ts";

test("polls run at their own periods on the shared tick, a short one on its own timer, and stop when asked", async () => {
  const runs = { everyTick: 0, everyOther: 0, fast: 0, thrower: 0 };
  const stops = [
    everySlowTick(SLOW_TICK_MS, () => runs.everyTick++),
    everySlowTick(2 * SLOW_TICK_MS, () => runs.everyOther++),
    everySlowTick(20, () => runs.fast++),
    everySlowTick(SLOW_TICK_MS, () => {
      runs.thrower++;
      throw new Error("a poll that throws must not stop the others");
    }),
  ];
  const deadline = Date.now() + 10 * SLOW_TICK_MS;
  while (runs.everyTick < 2 && Date.now() < deadline) await Bun.sleep(10);
  for (const stop of stops) stop();
  expect(runs.everyTick).toBe(2);
  expect(runs.thrower).toBe(2);
  expect(runs.everyOther).toBe(1);
  expect(runs.fast).toBeGreaterThan(runs.everyTick * 5);
  const after = { ...runs };
  await Bun.sleep(SLOW_TICK_MS + 100);
  expect(runs).toEqual(after);
});

test("a one-shot runs once at the next tick, with the polls; a cancelled one never", async () => {
  const order: string[] = [];
  const stopPoll = everySlowTick(SLOW_TICK_MS, () => order.push("poll"));
  atNextSlowTick(() => order.push("once"));
  const cancel = atNextSlowTick(() => order.push("cancelled"));
  cancel();
  const deadline = Date.now() + 10 * SLOW_TICK_MS;
  while (order.filter((o) => o === "poll").length < 2 && Date.now() < deadline) await Bun.sleep(10);
  stopPoll();
  expect(order).toEqual(["once", "poll", "poll"]);
});
