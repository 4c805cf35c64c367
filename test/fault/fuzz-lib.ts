// Shared pieces of the property-based fuzz tests (test/unit/fuzz-*.test.ts) and scripts/fuzz.ts:
// byte-level mutations of valid seed inputs, random chunk splits, and the run settings.
// CI runs a fixed seed and few runs (fast); scripts/fuzz.ts sets FUZZ_RUNS / FUZZ_SEED for a long run.
import fc from "fast-check";

/** fast-check parameters: fixed seed unless FUZZ_SEED says otherwise; FUZZ_RUNS scales every property. */
export function fuzzParams(defaultRuns: number): fc.Parameters<unknown> {
  const runs = Number(process.env.FUZZ_RUNS ?? 0) || defaultRuns;
  const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : 0x0151_5eed;
  return { numRuns: runs, seed, endOnFailure: true };
}

type Mutation = (b: Uint8Array) => Uint8Array;

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x0d, 0x3a, 0x20, 0x22, 0x7b, 0x7d];

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  // flip one bit
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([at, bit]): Mutation => (b) => {
    if (b.length === 0) return b;
    const out = b.slice();
    out[at % b.length]! ^= 1 << bit;
    return out;
  }),
  // overwrite one byte with an "interesting" value (delimiters, length edges)
  fc.tuple(fc.nat(), fc.constantFrom(...INTERESTING)).map(([at, v]): Mutation => (b) => {
    if (b.length === 0) return b;
    const out = b.slice();
    out[at % b.length] = v;
    return out;
  }),
  // insert random bytes
  fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 16 })).map(([at, ins]): Mutation => (b) => {
    const i = b.length ? at % (b.length + 1) : 0;
    return concat(b.subarray(0, i), ins, b.subarray(i));
  }),
  // delete a range
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 64 })).map(([at, n]): Mutation => (b) => {
    if (b.length === 0) return b;
    const i = at % b.length;
    return concat(b.subarray(0, i), b.subarray(Math.min(b.length, i + n)));
  }),
  // duplicate a range (repeated headers, frames, chunks)
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 64 })).map(([at, n]): Mutation => (b) => {
    if (b.length === 0) return b;
    const i = at % b.length;
    const part = b.subarray(i, Math.min(b.length, i + n));
    return concat(b.subarray(0, i), part, part, b.subarray(i + part.length));
  }),
  // truncate
  fc.nat().map((at): Mutation => (b) => b.subarray(0, b.length ? at % b.length : 0)),
);

/** A seed, possibly mutated a few times; sometimes pure random bytes. */
export function mutatedFrom(seeds: Uint8Array[], maxMutations = 6): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.tuple(fc.constantFrom(...seeds), fc.array(mutationArb, { maxLength: maxMutations })).map(([seed, ms]) => ms.reduce((b, m) => m(b), seed)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }) },
  );
}

/** Splits `bytes` at random points (the chunk boundaries a socket might produce). */
export function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  if (bytes.length === 0) return [bytes];
  const points = [...new Set(cuts.map((c) => c % bytes.length))].filter((c) => c > 0).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

export const cutsArb = fc.array(fc.nat(), { maxLength: 12 });

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const utf8 = (s: string) => new TextEncoder().encode(s);

/**
 * Runs `fn` and fails if it took longer than `ms`: a parser that loops on hostile input shows up as a slow
 * case (a true infinite loop is caught by the test's own timeout).
 */
export function timed<T>(what: string, ms: number, fn: () => T): T {
  const t0 = performance.now();
  const out = fn();
  const took = performance.now() - t0;
  if (took > ms) throw new Error(`${what}: one input took ${took.toFixed(0)} ms (limit ${ms} ms)`);
  return out;
}
