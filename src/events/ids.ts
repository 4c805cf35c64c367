// Event ids are ULIDs: time-ordered, and unique without coordination.
// Events built from captured bytes use stableEventId, so replaying the same capture (the IPC spool
// after a sensor restart) yields the same ids and the store can drop the duplicates.
import { monotonicFactory } from "ulidx";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** ULID time is 48 bits of epoch milliseconds. */
const MAX_ULID_TIME = 2 ** 48 - 1;

const monotonic = monotonicFactory();

/** A fresh ULID, strictly increasing within this process even within one millisecond. */
export function newEventId(): string {
  return monotonic();
}

/**
 * A deterministic ULID: the time part is `tsMs`, the 80 random bits are the first 10 bytes of
 * sha256(key). Same (tsMs, key) → same id; ids still sort by time.
 */
export function stableEventId(tsMs: number, key: string): string {
  // Bun's one-shot SHA-256 into a reused buffer, and the time encoded by hand: three ids per call were 4 % of
  // the sensor's CPU through node:crypto's hash objects and ulidx's checked encodeTime. Same bytes, same id.
  Bun.SHA256.hash(key, digest);
  return encodeTime(clampTime(tsMs)) + encodeRandomPart(digest);
}

const digest = new Uint8Array(32);

/** 48 bits of time → 10 Crockford base32 characters, most significant first (ulidx's encodeTime). */
function encodeTime(t: number): string {
  // The events of a call share their millisecond more often than not: the last one is remembered.
  if (t === lastTime) return lastTimeText;
  lastTime = t;
  // Two characters (10 bits) at a time, least significant pair first.
  let out = "";
  for (let i = 0; i < 5; i++) {
    const mod = t % 1024;
    out = PAIRS[mod] + out;
    t = (t - mod) / 1024;
  }
  lastTimeText = out;
  return out;
}

/** Every 10-bit value as its two Crockford characters. */
const PAIRS = Array.from({ length: 1024 }, (_, v) => CROCKFORD[v >> 5]! + CROCKFORD[v & 31]!);

let lastTime = -1;
let lastTimeText = "";

function clampTime(tsMs: number): number {
  if (!Number.isFinite(tsMs) || tsMs < 0) return 0;
  return Math.min(Math.floor(tsMs), MAX_ULID_TIME);
}

/** 10 bytes → 16 Crockford base32 characters (5 bits each, most significant first), as 8 pairs of 10 bits. */
function encodeRandomPart(d: Uint8Array): string {
  // Each 5 bytes are 40 bits: four pairs.
  return (
    PAIRS[(d[0]! << 2) | (d[1]! >> 6)]! +
    PAIRS[((d[1]! & 0x3f) << 4) | (d[2]! >> 4)]! +
    PAIRS[((d[2]! & 0x0f) << 6) | (d[3]! >> 2)]! +
    PAIRS[((d[3]! & 0x03) << 8) | d[4]!]! +
    PAIRS[(d[5]! << 2) | (d[6]! >> 6)]! +
    PAIRS[((d[6]! & 0x3f) << 4) | (d[7]! >> 4)]! +
    PAIRS[((d[7]! & 0x0f) << 6) | (d[8]! >> 2)]! +
    PAIRS[((d[8]! & 0x03) << 8) | d[9]!]!
  );
}
