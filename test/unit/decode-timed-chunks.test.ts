import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { TimedChunkCollector } from "../../src/decode/timed-chunks.ts";

/** The plain reading: consecutive non-empty pieces of the same time joined into one chunk. */
function reference(pieces: Array<{ data: number[]; ts: number }>): Array<{ ts: number; data: number[] }> {
  const out: Array<{ ts: number; data: number[] }> = [];
  for (const p of pieces) {
    if (p.data.length === 0) continue;
    const last = out[out.length - 1];
    if (last && last.ts === p.ts) last.data.push(...p.data);
    else out.push({ ts: p.ts, data: [...p.data] });
  }
  return out;
}

describe("TimedChunkCollector", () => {
  test("property: chunks are the pieces of each arrival time joined, whichever way they were added", () => {
    const piece = fc.record({ data: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 5 }), ts: fc.integer({ min: 0, max: 3 }) });
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }), fc.boolean(), (pieces, asArray, askEarly) => {
        const c = new TimedChunkCollector();
        pieces.forEach((p, i) => {
          if (asArray[i]) c.add([Uint8Array.from(p.data)], p.ts);
          else c.addPiece(Uint8Array.from(p.data), p.ts);
          // Asking for the chunks so far closes the pending one, as for a body cut short.
          if (askEarly && i === 5) c.chunks();
        });
        const expected = askEarly && pieces.length > 6 ? reference(pieces.slice(0, 6)).concat(reference(pieces.slice(6))) : reference(pieces);
        const got = c.chunks().map((ch) => ({ ts: ch.ts, data: [...ch.data] }));
        expect(got).toEqual(expected);
        expect([...c.bytes()]).toEqual(expected.flatMap((ch) => ch.data));
      }),
      { numRuns: 500 },
    );
  });
});
