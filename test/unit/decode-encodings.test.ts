import { describe, expect, test } from "bun:test";
import zlib from "node:zlib";
import { ContentDecoder, nativeDecodingAvailable, parseCodings } from "../../src/decode/encodings.ts";
import { bytes, gzipFlushedParts, sseEvents, text } from "./decode-fixtures.ts";

const MiB = 1024 * 1024;
const sample = bytes(sseEvents.join("").repeat(20));

function decodeAll(codings: string[], input: Uint8Array, pieceSize: number, maxOutputBytes = 16 * MiB) {
  const d = new ContentDecoder(codings, { maxOutputBytes });
  const out: Uint8Array[] = [];
  for (let i = 0; i < input.length; i += pieceSize) out.push(...d.push(input.subarray(i, i + pieceSize)));
  out.push(...d.end());
  return { d, body: bytes(...out) };
}

const compressors: Record<string, (b: Uint8Array) => Uint8Array> = {
  gzip: (b) => zlib.gzipSync(b),
  "x-gzip": (b) => zlib.gzipSync(b),
  deflate: (b) => zlib.deflateSync(b),
  br: (b) => zlib.brotliCompressSync(b),
  zstd: (b) => Bun.zstdCompressSync(b),
};

describe("ContentDecoder", () => {
  test("the runtime offers the synchronous codec handles the decoder is built on", () => {
    expect(nativeDecodingAvailable()).toBe(true);
  });

  for (const [coding, compress] of Object.entries(compressors)) {
    test(`${coding}: decodes whole, in 7-byte pieces and byte by byte`, () => {
      const compressed = compress(sample);
      for (const size of [compressed.length, 7, 1]) {
        const { d, body } = decodeAll([coding], compressed, size);
        expect(d.error).toBeUndefined();
        expect(d.truncated).toBe(false);
        expect(body).toEqual(sample);
      }
    });
  }

  test("deflate without the zlib wrapper (raw deflate, as some servers send) is detected", () => {
    const { d, body } = decodeAll(["deflate"], zlib.deflateRawSync(sample), 1);
    expect(d.error).toBeUndefined();
    expect(body).toEqual(sample);
  });

  test("stacked codings are undone in reverse order of application", () => {
    // "Content-Encoding: gzip, br" means gzip was applied first, then br.
    const twice = zlib.brotliCompressSync(zlib.gzipSync(sample));
    const { d, body } = decodeAll(parseCodings("gzip, br"), twice, 5);
    expect(d.error).toBeUndefined();
    expect(body).toEqual(sample);
  });

  test("identity and empty tokens are no-ops; names are case-insensitive", () => {
    expect(parseCodings(" GZip , identity,, BR ")).toEqual(["gzip", "br"]);
    const { body } = decodeAll(parseCodings("identity"), sample, 3);
    expect(body).toEqual(sample);
  });

  test("a streamed gzip body yields each flushed part as soon as it arrives", async () => {
    const parts = await gzipFlushedParts(sseEvents);
    const d = new ContentDecoder(["gzip"], { maxOutputBytes: MiB });
    parts.slice(0, sseEvents.length).forEach((piece, i) => {
      expect(text(bytes(...d.push(piece)))).toBe(sseEvents[i]!);
    });
    for (const piece of parts.slice(sseEvents.length)) expect(d.push(piece)).toEqual([]);
    expect(d.end()).toEqual([]);
    expect(d.error).toBeUndefined();
  });

  test("multi-member gzip decodes every member", () => {
    const input = bytes(zlib.gzipSync("first "), zlib.gzipSync("second"));
    expect(text(decodeAll(["gzip"], input, 4).body)).toBe("first second");
  });

  test("a gzip bomb stops at the cap without inflating the rest", () => {
    const bomb = zlib.gzipSync(new Uint8Array(64 * MiB)); // ~64 KB on the wire
    const d = new ContentDecoder(["gzip"], { maxOutputBytes: MiB });
    let kept = 0;
    let pushes = 0;
    for (let i = 0; i < bomb.length; i += 1024) {
      for (const piece of d.push(bomb.subarray(i, i + 1024))) kept += piece.length;
      pushes++;
      if (d.truncated) break;
    }
    expect(d.truncated).toBe(true);
    expect(kept).toBe(MiB);
    expect(d.outputBytes).toBe(MiB);
    // It stopped long before the end of the input, and later input is only counted.
    expect(pushes * 1024).toBeLessThan(bomb.length);
    expect(d.push(bomb.subarray(pushes * 1024))).toEqual([]);
    expect(d.end()).toEqual([]);
    expect(d.inputBytes).toBe(bomb.length);
  });

  test("a brotli bomb inside a gzip layer is capped too", () => {
    const bomb = zlib.gzipSync(zlib.brotliCompressSync(new Uint8Array(32 * MiB), { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } }));
    const { d, body } = decodeAll(["br", "gzip"], bomb, 512, 100_000);
    expect(d.truncated).toBe(true);
    expect(body.length).toBe(100_000);
  });

  test("output exactly at the cap is not reported as truncated", () => {
    const { d, body } = decodeAll(["gzip"], zlib.gzipSync(sample), 9, sample.length);
    expect(d.truncated).toBe(false);
    expect(body).toEqual(sample);
    const over = decodeAll(["gzip"], zlib.gzipSync(sample), 9, sample.length - 1);
    expect(over.d.truncated).toBe(true);
    expect(over.body).toEqual(sample.subarray(0, sample.length - 1));
  });

  test("identity bodies are capped as well", () => {
    const { d, body } = decodeAll([], sample, 100, 250);
    expect(d.truncated).toBe(true);
    expect(body).toEqual(sample.subarray(0, 250));
  });

  test("an unknown coding keeps the raw bytes and says why", () => {
    const { d, body } = decodeAll(parseCodings("gzip, compress"), sample, 10);
    expect(d.error).toBe("unsupported content-encoding: compress");
    expect(body).toEqual(sample);
  });

  test("a body that is not what its header says is kept raw with the codec's error", () => {
    const plain = bytes('{"error":{"message":"not actually gzip"}}');
    for (const coding of ["gzip", "br", "zstd"]) {
      const { d, body } = decodeAll([coding], plain, 3);
      expect(d.error).toStartWith(`${coding}: `);
      expect(body).toEqual(plain);
    }
    // Any first byte can open a raw deflate block, so plain text labelled "deflate" may decode
    // into a few junk bytes before the codec fails: the error is what matters there.
    expect(decodeAll(["deflate"], plain, 3).d.error).toStartWith("deflate: ");
  });

  test("corruption midway keeps what was decoded and reports the error", () => {
    const big = bytes("x".repeat(10), ...Array.from({ length: 3000 }, (_, i) => `line ${i} ${Math.sin(i)}\n`));
    const gz = zlib.gzipSync(big);
    const broken = gz.slice();
    for (let i = Math.floor(gz.length / 2); i < gz.length; i++) broken[i] = 0xff;
    const { d, body } = decodeAll(["gzip"], broken, 256);
    expect(d.error).toStartWith("gzip: ");
    expect(body.length).toBeGreaterThan(0);
    expect(body).toEqual(big.subarray(0, body.length));
  });

  test("a compressed stream that ends early is reported at end(), abort() does not judge", () => {
    const gz = zlib.gzipSync(sample);
    const cut = gz.subarray(0, gz.length - 10);
    const ended = decodeAll(["gzip"], cut, 50);
    expect(ended.d.error).toBe("gzip: unexpected end of file");
    expect(ended.body.length).toBeGreaterThan(0);

    const d = new ContentDecoder(["gzip"], { maxOutputBytes: MiB });
    d.push(cut);
    d.abort();
    expect(d.error).toBeUndefined();
  });

  test("an empty body with a Content-Encoding (HEAD, 304) is not an error", () => {
    for (const coding of ["gzip", "deflate", "br", "zstd"]) {
      const d = new ContentDecoder([coding], { maxOutputBytes: MiB });
      expect(d.end()).toEqual([]);
      expect(d.error).toBeUndefined();
    }
  });

  test("output does not alias the caller's input buffer", () => {
    const input = bytes("hello");
    const d = new ContentDecoder([], { maxOutputBytes: MiB });
    const [out] = d.push(input);
    input.fill(0);
    expect(text(out!)).toBe("hello");
  });
});
