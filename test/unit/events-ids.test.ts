// Event ids: ULIDs that sort by time; the stable ones are reproducible from (time, key).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeTime, isValid } from "ulidx";
import { newEventId, stableEventId } from "../../src/events/index.ts";

const ULID_SHAPE = /^[0-9A-HJKMNP-TV-Z]{26}$/;

describe("stableEventId", () => {
  test("is a valid ULID whose time part is the given millisecond", () => {
    const id = stableEventId(1_766_412_616_345.678, "conn-1/0/req");
    expect(id).toMatch(ULID_SHAPE);
    expect(isValid(id)).toBe(true);
    expect(decodeTime(id)).toBe(1_766_412_616_345);
  });

  test("is deterministic and depends on both the time and the key", () => {
    const a = stableEventId(1000, "k");
    expect(stableEventId(1000, "k")).toBe(a);
    expect(stableEventId(1000, "k2")).not.toBe(a);
    expect(stableEventId(1001, "k")).not.toBe(a);
    // the random part comes from the key alone
    expect(stableEventId(5000, "k").slice(10)).toBe(a.slice(10));
  });

  test("sorts by time, whatever the keys", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 2 }), fc.integer({ min: 1, max: 10_000 }), fc.string(), fc.string(), (t, dt, k1, k2) => {
        const t2 = Math.min(t + dt, 2 ** 48 - 1);
        const a = stableEventId(t, k1);
        const b = stableEventId(t2, k2);
        expect(isValid(a) && isValid(b)).toBe(true);
        expect(a < b).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test("out-of-range times are clamped instead of throwing", () => {
    expect(decodeTime(stableEventId(-5, "k"))).toBe(0);
    expect(decodeTime(stableEventId(Number.NaN, "k"))).toBe(0);
    expect(decodeTime(stableEventId(2 ** 60, "k"))).toBe(2 ** 48 - 1);
  });

  test("different keys at the same millisecond do not collide", () => {
    const ids = new Set(Array.from({ length: 5000 }, (_, i) => stableEventId(42, `conn/${i}/req`)));
    expect(ids.size).toBe(5000);
  });
});

describe("newEventId", () => {
  test("valid, unique and strictly increasing within one millisecond", () => {
    const ids = Array.from({ length: 1000 }, () => newEventId());
    for (const id of ids) expect(isValid(id)).toBe(true);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
  });
});
