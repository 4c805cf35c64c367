// An HTTP/1.1 connection that switches to WebSocket: the connection decoder goes on with frame decoding,
// keeping the frames that arrived in the same read as the heads (a client's first frame right behind its
// Upgrade request, a server's first frame in the 101's packet). Checked at every split point.
import { describe, expect, test } from "bun:test";
import zlib from "node:zlib";
import { HttpConnectionDecoder } from "../../src/decode/connection.ts";
import type { ConnectionOutput } from "../../src/decode/connection-decoder.ts";
import type { Direction } from "../../src/tap/types.ts";

const enc = new TextEncoder();
const cat = (...parts: Array<string | Uint8Array>) => Uint8Array.from(Buffer.concat(parts.map((p) => (typeof p === "string" ? enc.encode(p) : p))));

/** One WebSocket frame; client frames are masked as RFC 6455 requires. */
function frame(payload: string | Uint8Array, opts: { mask?: boolean; opcode?: number; fin?: boolean; rsv1?: boolean } = {}): Uint8Array {
  const data = typeof payload === "string" ? enc.encode(payload) : payload;
  const first = (opts.fin === false ? 0 : 0x80) | (opts.rsv1 ? 0x40 : 0) | (opts.opcode ?? 1);
  const len = data.length;
  const head = len < 126 ? [first, len] : [first, 126, len >> 8, len & 0xff];
  if (!opts.mask) return cat(Uint8Array.from(head), data);
  const key = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);
  head[1]! |= 0x80;
  return cat(Uint8Array.from(head), key, data.map((b, i) => b ^ key[i % 4]!));
}

const upgradeRequest =
  "GET /v1/realtime?model=gpt-4o-realtime-preview HTTP/1.1\r\nHost: api.openai.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer sk-proj-TESTKEY0000000000000000\r\n\r\n";
const switching = (ext = "") => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n${ext}\r\n`;

type Step = { dir: Direction; data: Uint8Array; ts: number };

function messages(outputs: ConnectionOutput[]) {
  return outputs.flatMap((o) =>
    o.kind === "websocket"
      ? o.items.map((i) => (i.type === "message" ? `${i.dir} ${i.opcode} ${Buffer.from(i.data).toString("utf8")}` : `${i.dir} ${i.type}`))
      : [o.kind],
  );
}

function run(steps: Step[], cut?: (s: Step, i: number) => Uint8Array[]) {
  const dec = new HttpConnectionDecoder("ws-1");
  const out: ConnectionOutput[] = [];
  steps.forEach((s, i) => {
    for (const piece of cut ? cut(s, i) : [s.data]) out.push(...dec.push(s.dir, piece, s.ts));
  });
  return out;
}

/** Same messages (in order) however each step is cut, and byte by byte. */
function splitInvariant(steps: Step[]): string[] {
  const whole = messages(run(steps));
  steps.forEach((step, target) => {
    for (let at = 1; at < step.data.length; at++) {
      const got = messages(run(steps, (s, i) => (i === target ? [s.data.subarray(0, at), s.data.subarray(at)] : [s.data])));
      if (!Bun.deepEquals(got, whole)) expect({ target, at, got }).toEqual({ target, at, got: whole });
    }
  });
  expect(messages(run(steps, (s) => Array.from(s.data, (_, i) => s.data.subarray(i, i + 1))))).toEqual(whole);
  return whole;
}

describe("HTTP/1.1 → WebSocket", () => {
  test("frames in the same read as the Upgrade request and as the 101 are decoded, not lost", () => {
    const got = splitInvariant([
      { dir: "c2s", data: cat(upgradeRequest, frame('{"type":"session.update"}', { mask: true })), ts: 1 },
      { dir: "s2c", data: cat(switching(), frame('{"type":"session.created"}')), ts: 2 },
      { dir: "c2s", data: cat(frame('{"type":"response.', { mask: true, fin: false }), frame('create"}', { mask: true, opcode: 0 })), ts: 3 },
      { dir: "s2c", data: cat(frame('{"type":"response.done"}'), frame("", { opcode: 9 })), ts: 4 },
    ]);
    expect(got).toEqual([
      "request",
      "upgrade",
      'c2s text {"type":"session.update"}',
      's2c text {"type":"session.created"}',
      'c2s text {"type":"response.create"}',
      's2c text {"type":"response.done"}',
      "s2c ping",
    ]);
  });

  test("permessage-deflate negotiated in the 101 is inflated", () => {
    const deflated = (s: string) => {
      const raw = zlib.deflateRawSync(Buffer.from(s), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      return raw.subarray(0, raw.length - 4); // RFC 7692: the trailing 00 00 ff ff is not sent
    };
    const got = splitInvariant([
      { dir: "c2s", data: enc.encode(upgradeRequest), ts: 1 },
      {
        dir: "s2c",
        data: cat(switching("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"), frame(deflated('{"type":"response.done","n":1}'), { rsv1: true })),
        ts: 2,
      },
    ]);
    expect(got).toEqual(["request", "upgrade", 's2c text {"type":"response.done","n":1}']);
  });

  test("a 101 to another protocol (h2c) stops decoding; bytes after it are only counted", () => {
    const dec = new HttpConnectionDecoder("h2c");
    dec.push("c2s", enc.encode("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"), 1);
    const out = dec.push("s2c", cat("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", "PRI * HTTP/2.0"), 2);
    expect(out.map((o) => o.kind)).toEqual(["upgrade"]);
    expect(dec.push("s2c", enc.encode("more"), 3)).toEqual([]);
  });
});
