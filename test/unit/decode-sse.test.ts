import { describe, expect, test } from "bun:test";
import { SseParser, parseSse, type SseEvent } from "../../src/decode/sse.ts";
import { bytes, sseEvents } from "./decode-fixtures.ts";

function parseIn(pieces: Uint8Array[], opts?: { maxEventLength?: number }): { events: SseEvent[]; parser: SseParser } {
  const parser = new SseParser(opts);
  const events: SseEvent[] = [];
  for (const p of pieces) events.push(...parser.push(p));
  events.push(...parser.end());
  return { events, parser };
}

/** Same events whole, split at every single position, and byte by byte. */
function expectSplitInvariant(input: Uint8Array, expected: SseEvent[]): void {
  expect(parseIn([input]).events).toEqual(expected);
  for (let at = 1; at < input.length; at++) {
    const got = parseIn([input.subarray(0, at), input.subarray(at)]).events;
    if (!Bun.deepEquals(got, expected)) expect({ at, got }).toEqual({ at, got: expected });
  }
  expect(parseIn(Array.from(input, (_, i) => input.subarray(i, i + 1))).events).toEqual(expected);
}

describe("SseParser", () => {
  test("reads that repeat the same bytes give the same events each time (found by scripts/fuzz.ts)", () => {
    // Anthropic's pings arrive as reads of identical bytes; a line is read in place, and where its colon is
    // must be found for this read, not taken from the previous, equal one.
    const read = bytes("event: ping\ndata: {\"type\": \"ping\"}\n\n\ndata: x\r\rdata: y\n\n");
    const parser = new SseParser();
    const expected = [{ event: "ping", data: '{"type": "ping"}' }, { data: "x" }, { data: "y" }];
    for (let i = 0; i < 3; i++) expect(parser.push(read.slice())).toEqual(expected);
  });

  test("an OpenAI chat completion stream, at every split point", () => {
    const expected = sseEvents.map((e) => ({ data: e.slice("data: ".length, -2) }));
    expectSplitInvariant(bytes(sseEvents.join("")), expected);
    expect(expected[expected.length - 1]).toEqual({ data: "[DONE]" });
  });

  test("an Anthropic-style stream with event names, CRLF line endings", () => {
    const input = bytes(
      "event: message_start\r\n",
      'data: {"type":"message_start","message":{"id":"msg_1"}}\r\n\r\n',
      "event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n",
      "event: content_block_delta\r\n",
      'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Hé 👋"}}\r\n\r\n',
      "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n",
    );
    expectSplitInvariant(input, [
      { event: "message_start", data: '{"type":"message_start","message":{"id":"msg_1"}}' },
      { event: "ping", data: '{"type": "ping"}' },
      { event: "content_block_delta", data: '{"type":"content_block_delta","delta":{"type":"text_delta","text":"Hé 👋"}}' },
      { event: "message_stop", data: '{"type":"message_stop"}' },
    ]);
  });

  test("bare CR line endings, and a CR ending one push followed by LF in the next", () => {
    expectSplitInvariant(bytes("data: a\rdata: b\r\rdata: c\r\n\r\n"), [{ data: "a\nb" }, { data: "c" }]);
    const parser = new SseParser();
    expect(parser.push(bytes("data: x\r"))).toEqual([]);
    // The "\n" completes the "\r\n" above; it is not a second (blank) line.
    expect(parser.push(bytes("\ndata: y\r\n\r\n"))).toEqual([{ data: "x\ny" }]);
  });

  test("comments, keep-alives and unknown fields are ignored", () => {
    expectSplitInvariant(bytes(": keep-alive\n\n:another\ndata: real\nfoo: bar\n\n: ping\n\n"), [{ data: "real" }]);
  });

  test("multi-line data joins with \\n; only one space after the colon is removed", () => {
    expectSplitInvariant(bytes("data:no space\ndata:  two spaces\ndata\ndata:\n\n"), [{ data: "no space\n two spaces\n\n" }]);
  });

  test("a leading BOM is stripped once", () => {
    expectSplitInvariant(bytes(new Uint8Array([0xef, 0xbb, 0xbf]), "data: x\n\n"), [{ data: "x" }]);
  });

  test("multi-byte UTF-8 split across pushes is reassembled", () => {
    const input = bytes("data: ça 日本 🎉 — ok\n\n");
    expectSplitInvariant(input, [{ data: "ça 日本 🎉 — ok" }]);
  });

  test("id persists across events, ids with NUL are ignored, retry must be digits", () => {
    const input = bytes("id: 1\ndata: a\n\ndata: b\nretry: 3000\n\nid: bad\u0000\nretry: 5s\ndata: c\n\nid\ndata: d\n\n");
    expectSplitInvariant(input, [
      { data: "a", id: "1" },
      { data: "b", id: "1", retry: 3000 },
      { data: "c", id: "1" },
      { data: "d" },
    ]);
  });

  test("a block without data dispatches nothing; an event type does not leak into the next event", () => {
    expectSplitInvariant(bytes("event: lonely\n\ndata: x\n\n"), [{ data: "x" }]);
  });

  test("a stream cut before the final blank line returns the pending event marked incomplete", () => {
    const { events } = parseIn([bytes('data: {"partial":tr')]);
    expect(events).toEqual([{ data: '{"partial":tr', incomplete: true }]);
    expect(parseSse(bytes("data: done\n\n"))).toEqual([{ data: "done" }]);
  });

  test("an oversized event is dropped and counted; parsing carries on", () => {
    const big = "x".repeat(5000);
    const input = bytes(`data: small\n\ndata: ${big}\ndata: more\n\ndata: after\n\n`);
    const { events, parser } = parseIn([input], { maxEventLength: 1000 });
    expect(events).toEqual([{ data: "small" }, { data: "after" }]);
    expect(parser.droppedEvents).toBe(1);
    expect(parser.eventCount).toBe(2);
  });

  test("a line that never ends is bounded, in small pushes too", () => {
    const parser = new SseParser({ maxEventLength: 1000 });
    const events: SseEvent[] = [];
    for (let i = 0; i < 500; i++) events.push(...parser.push(bytes("y".repeat(100))));
    events.push(...parser.push(bytes("\ndata: tail line of the same block\n\ndata: next\n\n")));
    expect(events).toEqual([{ data: "next" }]);
    expect(parser.droppedEvents).toBe(1);
  });

  test("an oversized trailing event cut by end() is counted, not returned", () => {
    const { events, parser } = parseIn([bytes(`data: ${"z".repeat(2000)}`)], { maxEventLength: 100 });
    expect(events).toEqual([]);
    expect(parser.droppedEvents).toBe(1);
  });
});
