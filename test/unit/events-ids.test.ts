// Event ids: ULIDs that sort by time; the stable ones are reproducible from (time, key).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { decodeTime, encodeTime, isValid } from "ulidx";
import { keyFingerprint } from "../../src/decode/providers/common.ts";
import { conversationIdFrom } from "../../src/events/conversation.ts";
import { contentHash, newEventId, stableEventId } from "../../src/events/index.ts";

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

describe("the same ids and hashes as node:crypto and ulidx (replays and stored events must match)", () => {
  /** stableEventId as first written: ulidx's encodeTime, node:crypto's SHA-256, Crockford base32 of 10 bytes. */
  function reference(tsMs: number, key: string): string {
    const t = !Number.isFinite(tsMs) || tsMs < 0 ? 0 : Math.min(Math.floor(tsMs), 2 ** 48 - 1);
    const digest = createHash("sha256").update(key).digest();
    let bits = "";
    for (const b of digest.subarray(0, 10)) bits += b.toString(2).padStart(8, "0");
    let random = "";
    for (let i = 0; i < 80; i += 5) random += "0123456789ABCDEFGHJKMNPQRSTVWXYZ"[parseInt(bits.slice(i, i + 5), 2)];
    return encodeTime(t, 10) + random;
  }
  const keys = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.string({ unit: "binary" }), fc.constantFrom("a\ud800b", "\udc00", "", "x".repeat(5000)));

  test("stableEventId", () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.double()), keys, (t, key) => {
        expect(stableEventId(t, key)).toBe(reference(t, key));
      }),
      { numRuns: 2000 },
    );
  });

  test("contentHash, key fingerprints, conversation ids", () => {
    const hex = (text: string) => createHash("sha256").update(text).digest("hex");
    fc.assert(
      fc.property(keys, keys, (text, other) => {
        expect(contentHash(text)).toBe(`sha256:${hex(text).slice(0, 16)}`);
        expect(keyFingerprint(text)).toBe(`sha256:${hex(text).slice(0, 16)}`);
        expect(conversationIdFrom([text, other])).toBe(`conv_${hex(`${text.length}:${text}${other.length}:${other}`).slice(0, 24)}`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("newEventId", () => {
  test("valid, unique and strictly increasing within one millisecond", () => {
    const ids = Array.from({ length: 1000 }, () => newEventId());
    for (const id of ids) expect(isValid(id)).toBe(true);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
  });
});
