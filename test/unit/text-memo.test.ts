// The bounded memo behind the sensor's content-hash, conversation-id and clean-text caches.
import { expect, test } from "bun:test";
import { TextMemo } from "../../src/util/text-memo.ts";

test("remembers texts until its entry budget is spent, then starts over", () => {
  const memo = new TextMemo<number>(2, 1000);
  memo.set("a", 1);
  memo.set("b", 2);
  expect([memo.get("a"), memo.get("b")]).toEqual([1, 2]);
  memo.set("c", 3); // a third entry: cleared first
  expect([memo.has("a"), memo.has("b"), memo.get("c")]).toEqual([false, false, 3]);
});

test("counts characters: a text that would pass the budget clears it, one longer than all of it is not kept", () => {
  const memo = new TextMemo<true>(100, 10);
  memo.set("x".repeat(6), true);
  memo.set("y".repeat(4), true);
  expect(memo.has("x".repeat(6)) && memo.has("y".repeat(4))).toBe(true);
  memo.set("z", true); // 11 characters in all: over
  expect([memo.has("x".repeat(6)), memo.has("z")]).toEqual([false, true]);
  memo.set("w".repeat(11), true);
  expect([memo.has("w".repeat(11)), memo.has("z")]).toEqual([false, true]);
});
