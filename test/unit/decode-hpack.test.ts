// HPACK decoder against the examples of RFC 7541 Appendix C (typed in as hex), plus the error cases.
import { describe, expect, test } from "bun:test";
import { HpackDecoder, decodeInteger, huffmanDecode } from "../../src/decode/hpack.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

interface Step {
  block: string;
  headers: Array<[string, string]>;
  table: Array<[string, string]>;
  size: number;
}

function runSequence(steps: Step[], maxTableSize = 4096): void {
  const dec = new HpackDecoder({ maxTableSize });
  for (const step of steps) {
    const r = dec.decode(hex(step.block));
    if (!r.ok) throw new Error(r.error);
    expect(r.headers).toEqual(step.headers);
    expect(dec.dynamicEntries.map(([n, v]) => [n, v])).toEqual(step.table);
    expect(dec.tableSize).toBe(step.size);
  }
}

const DATE1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const LOC = "https://www.example.com";

const requestSteps = (blocks: [string, string, string]): Step[] => [
  {
    block: blocks[0],
    headers: [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]],
    table: [[":authority", "www.example.com"]],
    size: 57,
  },
  {
    block: blocks[1],
    headers: [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], ["cache-control", "no-cache"]],
    table: [["cache-control", "no-cache"], [":authority", "www.example.com"]],
    size: 110,
  },
  {
    block: blocks[2],
    headers: [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"]],
    table: [["custom-key", "custom-value"], ["cache-control", "no-cache"], [":authority", "www.example.com"]],
    size: 164,
  },
];

const responseSteps = (blocks: [string, string, string]): Step[] => [
  {
    block: blocks[0],
    headers: [[":status", "302"], ["cache-control", "private"], ["date", DATE1], ["location", LOC]],
    table: [["location", LOC], ["date", DATE1], ["cache-control", "private"], [":status", "302"]],
    size: 222,
  },
  {
    block: blocks[1],
    headers: [[":status", "307"], ["cache-control", "private"], ["date", DATE1], ["location", LOC]],
    table: [[":status", "307"], ["location", LOC], ["date", DATE1], ["cache-control", "private"]],
    size: 222,
  },
  {
    block: blocks[2],
    headers: [[":status", "200"], ["cache-control", "private"], ["date", DATE2], ["location", LOC], ["content-encoding", "gzip"], ["set-cookie", COOKIE]],
    table: [["set-cookie", COOKIE], ["content-encoding", "gzip"], ["date", DATE2]],
    size: 215,
  },
];

describe("RFC 7541 Appendix C", () => {
  test("C.1 integers", () => {
    expect(decodeInteger(Uint8Array.of(0b01010), 0, 5)).toEqual({ value: 10, next: 1 });
    expect(decodeInteger(Uint8Array.of(0b11111, 0b10011010, 0b00001010), 0, 5)).toEqual({ value: 1337, next: 3 });
    expect(decodeInteger(Uint8Array.of(0b00101010), 0, 8)).toEqual({ value: 42, next: 1 });
  });

  test("C.2 header field representations", () => {
    runSequence([
      { block: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572", headers: [["custom-key", "custom-header"]], table: [["custom-key", "custom-header"]], size: 55 },
    ]);
    runSequence([{ block: "040c 2f73 616d 706c 652f 7061 7468", headers: [[":path", "/sample/path"]], table: [], size: 0 }]);
    runSequence([{ block: "1008 7061 7373 776f 7264 0673 6563 7265 74", headers: [["password", "secret"]], table: [], size: 0 }]);
    runSequence([{ block: "82", headers: [[":method", "GET"]], table: [], size: 0 }]);
  });

  test("C.3 requests without Huffman", () => {
    runSequence(
      requestSteps([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
      ]),
    );
  });

  test("C.4 requests with Huffman", () => {
    runSequence(
      requestSteps([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
      ]),
    );
  });

  test("C.5 responses without Huffman, table of 256 with eviction", () => {
    runSequence(
      responseSteps([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
      ]),
      256,
    );
  });

  test("C.6 responses with Huffman, table of 256 with eviction", () => {
    runSequence(
      responseSteps([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
      ]),
      256,
    );
  });
});

describe("dynamic table", () => {
  test("a size update evicts, a larger one is refused above the advertised size", () => {
    const dec = new HpackDecoder();
    const r = dec.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"));
    expect(r.ok).toBe(true);
    expect(dec.tableSize).toBe(55);
    // Size update to 0 (001 00000) then an indexed field: table emptied.
    expect(dec.decode(hex("20 82"))).toEqual({ ok: true, headers: [[":method", "GET"]], truncated: false });
    expect(dec.tableSize).toBe(0);
    expect(dec.dynamicEntries.length).toBe(0);
    // 62 now refers to nothing.
    const bad = dec.decode(hex("be"));
    expect(bad.ok).toBe(false);
    // And the context stays lost.
    expect(dec.decode(hex("82")).ok).toBe(false);
    // 5000 > 4096: 001 11111 + 5000-31=4969 = 0xe9 0x26
    const dec2 = new HpackDecoder();
    const big = dec2.decode(hex("3f e9 26"));
    expect(big.ok).toBe(false);
    if (!big.ok) expect(big.error).toContain("above the advertised");
    const dec3 = new HpackDecoder();
    dec3.setProtocolMaxTableSize(65536);
    expect(dec3.decode(hex("3f e9 26")).ok).toBe(true);
    expect(dec3.tableCapacity).toBe(5000);
  });

  test("a size update after a field is an error", () => {
    expect(new HpackDecoder().decode(hex("82 20")).ok).toBe(false);
  });

  test("an entry larger than the table empties it", () => {
    const dec = new HpackDecoder({ maxTableSize: 60 });
    expect(dec.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")).ok).toBe(true);
    expect(dec.tableSize).toBe(55);
    // custom-key: custom-value (22+32=54+... = 10+12+32 = 54) fits after evicting the first.
    expect(dec.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65")).ok).toBe(true);
    expect(dec.dynamicEntries).toEqual([["custom-key", "custom-value"]]);
    // A 70-octet entry does not fit at all: the table ends empty.
    const name = "x".repeat(30);
    const value = "y".repeat(10);
    const block = Uint8Array.of(0x40, name.length, ...Buffer.from(name), value.length, ...Buffer.from(value));
    const r = dec.decode(block);
    expect(r.ok && r.headers).toEqual([[name, value]]);
    expect(dec.dynamicEntries.length).toBe(0);
    expect(dec.tableSize).toBe(0);
  });

  test("thousands of entries in a 64 KiB table stay within capacity and index correctly", () => {
    const dec = new HpackDecoder({ maxTableSize: 65536 });
    dec.decode(hex("3f e1 ff 03")); // size update to 65536 (31 + 65505: e1 ff 03)
    expect(dec.tableCapacity).toBe(65536);
    for (let i = 0; i < 3000; i++) {
      const name = `x-h-${i}`;
      const value = `v${i}`.padEnd(20, "z");
      const r = dec.decode(Uint8Array.of(0x40, name.length, ...Buffer.from(name), value.length, ...Buffer.from(value)));
      expect(r.ok).toBe(true);
      expect(dec.tableSize).toBeLessThanOrEqual(65536);
    }
    // Index 62 is the newest, 63 the one before.
    const r = dec.decode(hex("be bf"));
    expect(r.ok && r.headers.map(([n]) => n)).toEqual(["x-h-2999", "x-h-2998"]);
  });
});

describe("bounds and bad input", () => {
  test("a header list above the limit is cut but the table stays in sync", () => {
    const dec = new HpackDecoder({ maxHeaderListSize: 60 });
    const r = dec.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"));
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.truncated).toBe(true);
      expect(r.headers.length).toBeLessThan(4);
    }
    expect(dec.dynamicEntries).toEqual([[":authority", "www.example.com"]]);
  });

  test("truncated literals and integers are errors, not exceptions", () => {
    for (const block of ["40", "400a 6375", "41 0f77", "ff", "ff ff ff ff ff ff ff 7f", "00"]) {
      const r = new HpackDecoder().decode(hex(block));
      expect(r.ok).toBe(false);
    }
  });

  test("Huffman: EOS, long padding and zero padding are refused", () => {
    expect(() => huffmanDecode(hex("ff ff ff ff"))).toThrow(/EOS|padding/);
    expect(() => huffmanDecode(hex("ff"))).toThrow(/padding/);
    // '0' is 00000 (5 bits): "00000 000" has zero padding.
    expect(() => huffmanDecode(hex("00"))).toThrow(/padding/);
    expect(Buffer.from(huffmanDecode(hex("07"))).toString()).toBe("0");
    expect(Buffer.from(huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"))).toString()).toBe("www.example.com");
  });

  test("random bytes never throw", () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256);
    for (let i = 0; i < 2000; i++) {
      const block = Uint8Array.from({ length: 1 + (i % 40) }, rand);
      const r = new HpackDecoder().decode(block);
      expect(typeof r.ok).toBe("boolean");
    }
  });
});
