import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { ConnMeta } from "../../src/tap/types.ts";
import {
  encodeFrame,
  FRAME_MAGIC,
  FrameDecoder,
  FrameEncodeError,
  MAX_HEADER_BYTES,
  MAX_PAYLOAD_BYTES,
  parseFrameBody,
  type IpcFrame,
} from "../../src/ipc/frames.ts";
import type { ExecActivity } from "../../src/tap/activity.ts";

const meta: ConnMeta = {
  connId: "c1",
  startedAt: 1700000000123.25,
  client: { ip: "127.0.0.1", port: 50123 },
  server: { ip: "10.0.0.1", port: 443 },
  host: "api.openai.com",
  sni: "api.openai.com",
  alpn: "h2",
  mode: "mitm",
  process: { pid: 4242, name: "python3", exe: "/usr/bin/python3", cmdline: "python3 app.py ünïcødé" },
  captureMethod: "mitm_proxy",
};

const sample: IpcFrame[] = [
  { t: "hello", token: "tok", version: "0.1.0", pid: 1, runId: "run" },
  { t: "open", meta },
  { t: "open", meta: { ...meta, connId: "c2", mode: "passthrough", passthroughCode: "pinned", passthroughReason: "pinned (client rejected certificate)" } },
  { t: "data", connId: "c1", dir: "c2s", ts: 1.5, bytes: new TextEncoder().encode("POST /v1/chat/completions HTTP/1.1\r\n\r\n") },
  { t: "data", connId: "c1", dir: "s2c", ts: 2, bytes: new Uint8Array(0) },
  { t: "close", connId: "c1", ts: 3, error: "reset" },
  { t: "close", connId: "c1", ts: 4 },
  { t: "welcome", version: "0.1.0" },
];

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function decodeAll(chunks: Uint8Array[]): { frames: IpcFrame[]; error?: string } {
  const d = new FrameDecoder();
  const frames: IpcFrame[] = [];
  for (const c of chunks) {
    const r = d.push(c);
    frames.push(...r.frames);
    if (r.error) return { frames, error: r.error };
  }
  return { frames };
}

/** A frame with a hand-written prefix, to build inputs encodeFrame refuses to make. */
function rawFrame(type: number, header: string | Uint8Array, payload = new Uint8Array(0), magic = FRAME_MAGIC): Uint8Array {
  const h = typeof header === "string" ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(10 + h.length + payload.length);
  const v = new DataView(out.buffer);
  v.setUint8(0, magic);
  v.setUint8(1, type);
  v.setUint32(2, h.length);
  v.setUint32(6, payload.length);
  out.set(h, 10);
  out.set(payload, 10 + h.length);
  return out;
}

describe("frame codec", () => {
  test("round-trips every frame type", () => {
    for (const f of sample) expect(decodeAll([encodeFrame(f)])).toEqual({ frames: [f] });
  });

  test("a stream split at every byte boundary decodes to the same frames", () => {
    const stream = concat(sample.map(encodeFrame));
    for (let i = 0; i <= stream.length; i++) {
      expect(decodeAll([stream.subarray(0, i), stream.subarray(i)])).toEqual({ frames: sample });
    }
    expect(decodeAll([...stream].map((b) => Uint8Array.of(b)))).toEqual({ frames: sample });
  });

  test("property: random data frames in random chunks come out unchanged", () => {
    const dataFrame = fc.record({
      t: fc.constant("data" as const),
      connId: fc.string({ minLength: 1, maxLength: 20 }),
      dir: fc.constantFrom("c2s" as const, "s2c" as const),
      ts: fc.double({ noNaN: true, noDefaultInfinity: true }),
      bytes: fc.uint8Array({ maxLength: 300 }),
    });
    fc.assert(
      fc.property(fc.array(dataFrame, { maxLength: 8 }), fc.array(fc.nat(400), { maxLength: 10 }), (frames, cuts) => {
        const stream = concat(frames.map(encodeFrame));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const chunks: Uint8Array[] = [];
        let prev = 0;
        for (const p of [...points, stream.length]) {
          chunks.push(stream.subarray(prev, p));
          prev = p;
        }
        const out = decodeAll(chunks);
        expect(out.error).toBeUndefined();
        // -0 and 0 survive JSON as 0; compare through the same lens.
        expect(out.frames).toEqual(frames.map((f) => ({ ...f, ts: JSON.parse(JSON.stringify(f.ts)) })));
      }),
    );
  });

  test("the data payload is a copy: reusing the input buffer does not change decoded bytes", () => {
    const input = encodeFrame({ t: "data", connId: "c", dir: "c2s", ts: 0, bytes: Uint8Array.of(1, 2, 3) });
    const { frames } = decodeAll([input]);
    input.fill(0);
    expect((frames[0] as { bytes: Uint8Array }).bytes).toEqual(Uint8Array.of(1, 2, 3));
  });
});

describe("frame decoder rejects bad input with a reason", () => {
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ["HTTP text instead of frames", new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"), /bad magic byte 0x47/],
    ["unknown type", rawFrame(9, "{}"), /unknown frame type 9/],
    ["header over 64 KiB", rawFrame(2, new Uint8Array(0)).fill(0xff, 2, 6).fill(FRAME_MAGIC, 0, 1).fill(2, 1, 2), /header too large/],
    ["payload on a close frame", rawFrame(4, '{"connId":"c","ts":1}', Uint8Array.of(1)), /must not carry a payload/],
    ["header not JSON", rawFrame(4, "{nope"), /not valid UTF-8 JSON/],
    ["header not UTF-8", rawFrame(4, Uint8Array.of(0xc3, 0x28)), /not valid UTF-8 JSON/],
    ["wrong direction", rawFrame(3, '{"connId":"c","dir":"up","ts":1}'), /data header invalid at dir/],
    ["open without meta.connId", rawFrame(2, JSON.stringify({ meta: { ...meta, connId: undefined } })), /open header invalid at meta\.connId/],
    ["hello with a numeric token", rawFrame(1, '{"token":1,"version":"x","pid":1,"runId":"r"}'), /hello header invalid at token/],
  ];
  for (const [name, bytes, reason] of cases) {
    test(name, () => {
      const d = new FrameDecoder();
      const first = d.push(bytes);
      expect(first.frames).toEqual([]);
      expect(first.error).toMatch(reason);
      // Once failed it stays failed: a good frame afterwards is not trusted.
      expect(d.push(encodeFrame({ t: "welcome", version: "1" }))).toEqual({ frames: [], error: first.error });
    });
  }

  test("an oversized payload length is refused from the prefix alone, before any payload arrives", () => {
    const prefix = rawFrame(3, "").subarray(0, 10);
    new DataView(prefix.buffer, prefix.byteOffset).setUint32(6, MAX_PAYLOAD_BYTES + 1);
    expect(new FrameDecoder().push(prefix).error).toMatch(/payload too large: 4194305 bytes/);
  });

  test("good frames before the garbage are still delivered", () => {
    const good = encodeFrame({ t: "close", connId: "c", ts: 1 });
    const out = decodeAll([concat([good, Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)])]);
    expect(out.frames).toEqual([{ t: "close", connId: "c", ts: 1 }]);
    expect(out.error).toMatch(/bad magic/);
  });
});

describe("encodeFrame limits", () => {
  test("payload over 4 MiB and header over 64 KiB throw FrameEncodeError", () => {
    expect(() => encodeFrame({ t: "data", connId: "c", dir: "c2s", ts: 0, bytes: new Uint8Array(MAX_PAYLOAD_BYTES + 1) })).toThrow(FrameEncodeError);
    expect(() => encodeFrame({ t: "close", connId: "c", ts: 0, error: "x".repeat(MAX_HEADER_BYTES) })).toThrow(FrameEncodeError);
  });

  test("a payload of exactly 4 MiB is accepted both ways", () => {
    const bytes = new Uint8Array(MAX_PAYLOAD_BYTES).fill(7);
    const { frames, error } = decodeAll([encodeFrame({ t: "data", connId: "c", dir: "s2c", ts: 0, bytes })]);
    expect(error).toBeUndefined();
    expect((frames[0] as { bytes: Uint8Array }).bytes.length).toBe(MAX_PAYLOAD_BYTES);
  });
});

describe("activity frames (IPC proto 3)", () => {
  const exec: ExecActivity = { kind: "exec", ts: 1, pid: 2, ppid: 1, uid: 0, comm: "sh", exe: "/bin/sh", argv: ["sh"], argvTruncated: false };
  test("round-trip; anything but an exec or file_write item is refused with the field named", () => {
    const bytes = encodeFrame({ t: "activity", items: [exec] });
    expect(new FrameDecoder().push(bytes).frames).toEqual([{ t: "activity", items: [exec] }]);
    const header = (items: unknown) => new TextEncoder().encode(JSON.stringify({ items }));
    expect(parseFrameBody("activity", header([{ ...exec, argv: "sh -c x" }]), new Uint8Array(0))).toMatchObject({ error: expect.stringContaining("items.0.argv") });
    expect(parseFrameBody("activity", header([{ ...exec, kind: "process_exit" }]), new Uint8Array(0))).toMatchObject({ error: expect.stringContaining("activity header invalid") });
    expect(parseFrameBody("activity", header([{ ...exec, extra: 1 }]), new Uint8Array(0))).toMatchObject({ error: expect.stringContaining("activity header invalid") });
    expect(parseFrameBody("activity", header([]), new Uint8Array(0))).toMatchObject({ error: expect.stringContaining("activity header invalid") });
  });
});
