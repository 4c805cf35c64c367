// AWS event-stream decoder on messages encoded by the AWS SDK's own codec (@smithy/eventstream-codec).
import { describe, expect, test } from "bun:test";
import { EventStreamCodec, Int64 } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { EventStreamDecoder, parseEventStream, type EventStreamItem } from "../../src/decode/eventstream.ts";

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const enc = new TextEncoder();
const dec = new TextDecoder();

function chunk(json: unknown): Uint8Array {
  const payload = { bytes: Buffer.from(JSON.stringify(json)).toString("base64"), p: "abcdefghij" };
  return codec.encode({
    headers: {
      ":event-type": { type: "string", value: "chunk" },
      ":content-type": { type: "string", value: "application/json" },
      ":message-type": { type: "string", value: "event" },
    },
    body: enc.encode(JSON.stringify(payload)),
  });
}

const concat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));
const messages = (items: EventStreamItem[]) => items.filter((i) => i.type === "message").map((i) => (i as { message: { headers: Record<string, unknown>; payload: Uint8Array } }).message);

describe("EventStreamDecoder", () => {
  const stream = concat(
    chunk({ type: "message_start", message: { id: "msg_1", model: "claude" } }),
    chunk({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hello" } }),
    codec.encode({
      headers: {
        b: { type: "boolean", value: true },
        f: { type: "boolean", value: false },
        y: { type: "byte", value: -5 },
        s: { type: "short", value: 1234 },
        i: { type: "integer", value: -123456 },
        l: { type: "long", value: Int64.fromNumber(9_000_000_000) },
        bin: { type: "binary", value: Uint8Array.of(1, 2, 3) },
        t: { type: "timestamp", value: new Date(1_700_000_000_123) },
        u: { type: "uuid", value: "0123abcd-4567-89ef-0123-456789abcdef" },
      },
      body: new Uint8Array(0),
    }),
  );

  test("decodes every header type and the payloads", () => {
    const items = parseEventStream(stream);
    expect(items.every((i) => i.type === "message")).toBe(true);
    const [m1, m2, m3] = messages(items);
    expect(m1!.headers[":event-type"]).toBe("chunk");
    expect(JSON.parse(Buffer.from(JSON.parse(dec.decode(m1!.payload)).bytes, "base64").toString())).toEqual({ type: "message_start", message: { id: "msg_1", model: "claude" } });
    expect(JSON.parse(Buffer.from(JSON.parse(dec.decode(m2!.payload)).bytes, "base64").toString()).delta.text).toBe("Hello");
    expect(m3!.headers).toEqual({
      b: true,
      f: false,
      y: -5,
      s: 1234,
      i: -123456,
      l: 9_000_000_000n,
      bin: Uint8Array.of(1, 2, 3),
      t: new Date(1_700_000_000_123),
      u: "0123abcd-4567-89ef-0123-456789abcdef",
    });
    expect(m3!.payload.length).toBe(0);
  });

  test("same messages at every split point and byte by byte", () => {
    const whole = parseEventStream(stream);
    for (let at = 0; at <= stream.length; at++) {
      const d = new EventStreamDecoder();
      expect([...d.push(stream.subarray(0, at)), ...d.push(stream.subarray(at)), ...d.end()]).toEqual(whole);
    }
    const d = new EventStreamDecoder();
    const items: EventStreamItem[] = [];
    for (const b of stream) items.push(...d.push(Uint8Array.of(b)));
    expect([...items, ...d.end()]).toEqual(whole);
  });

  test("a bad message CRC skips only that message", () => {
    const good = chunk({ n: 1 });
    const bad = chunk({ n: 2 });
    bad[bad.length - 10]! ^= 0x01; // flip a payload bit: the message CRC no longer matches
    const items = parseEventStream(concat(good, bad, chunk({ n: 3 })));
    expect(items.map((i) => i.type)).toEqual(["message", "error", "message"]);
    expect(items[1]).toEqual({ type: "error", message: "event stream: message CRC mismatch (message skipped)", fatal: false });
  });

  test("a bad prelude CRC stops the decoder: lengths cannot be trusted", () => {
    const bad = chunk({ n: 1 });
    bad[3]! ^= 0x10; // total length corrupted
    const d = new EventStreamDecoder();
    const items = d.push(concat(bad, chunk({ n: 2 })));
    expect(items).toEqual([{ type: "error", message: "event stream: prelude CRC mismatch", fatal: true }]);
    expect(d.push(chunk({ n: 3 }))).toEqual([]);
  });

  test("a message above the size limit and a cut body are reported", () => {
    const big = chunk({ text: "x".repeat(2000) });
    expect(parseEventStream(big, { maxMessageBytes: 1000 })[0]).toMatchObject({ type: "error", fatal: true, message: expect.stringContaining("exceeds 1000") });
    const cut = parseEventStream(big.subarray(0, big.length - 3));
    expect(cut).toEqual([{ type: "error", message: `event stream: body ended inside a message (${big.length - 3} bytes left)`, fatal: true }]);
  });

  test("random bytes never throw", () => {
    let seed = 3;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256);
    for (let i = 0; i < 500; i++) parseEventStream(Uint8Array.from({ length: 1 + (i % 100) }, rand));
  });
});
