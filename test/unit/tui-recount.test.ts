// When the terminal view recounts a pane (src/tui/recount.ts), decided without timers or a terminal.
import { expect, test } from "bun:test";
import { RecountClock } from "../../src/tui/recount.ts";

test("a pane is recounted at first, for another view or window, when forced, or once its interval is up", () => {
  const c = new RecountClock();
  expect(c.due("5m", 1_000, 1000)).toBe(true); // never counted
  c.counted("5m", 1_000);
  expect(c.due("5m", 1_500, 1000)).toBe(false); // traffic meanwhile: not yet
  expect(c.waitMs(1_500, 1000)).toBe(500); // the timer startTui sets to catch up
  expect(c.due("5m", 1_500, 1000, true)).toBe(true); // a key asked for it
  expect(c.due("1h", 1_500, 1000)).toBe(true); // another window
  expect(c.due("5m", 2_000, 1000)).toBe(true); // the interval is up
  c.counted("1h", 2_000);
  expect(c.due("5m", 2_001, 5000)).toBe(true); // back to the first window: counted for 1h, not 5m
});
