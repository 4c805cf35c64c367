// Property-based fuzzing (fast-check) of every sans-IO parser on hostile input: valid seeds mutated at the
// byte level (flips, inserts, deletes, duplicates, truncations) and fed in random splits. Properties: no
// throw, every input finishes quickly, output stays bounded by the input (no amplification beyond the
// documented caps), and failures are reported as values. Fixed seed here; scripts/fuzz.ts runs longer.
import { describe, expect, test } from "bun:test";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import fc from "fast-check";
import net from "node:net";
import tls from "node:tls";
import zlib from "node:zlib";
import { ClientHelloParser, parseClientHello } from "../../src/wire/tls-client-hello.ts";
import { ContentDecoder } from "../../src/decode/encodings.ts";
import { EventStreamDecoder } from "../../src/decode/eventstream.ts";
import { Http1Parser } from "../../src/decode/http1.ts";
import { H2FrameReader } from "../../src/decode/http2.ts";
import { HpackDecoder } from "../../src/decode/hpack.ts";
import { JsonArrayStreamParser } from "../../src/decode/json-array-stream.ts";
import { NdjsonParser } from "../../src/decode/ndjson.ts";
import { SseParser } from "../../src/decode/sse.ts";
import { timedSseEvents, timedSseEventsByChunk } from "../../src/decode/providers/common.ts";
import { WebSocketDecoder } from "../../src/decode/websocket.ts";
import { encodeFrame, FrameDecoder } from "../../src/ipc/frames.ts";
import { cutsArb, fuzzParams, mutatedFrom, splitAt, timed, utf8, concat } from "../fault/fuzz-lib.ts";
import { chatCompletionJson, chunk, jsonResponse, lastChunk, openaiRequest, sseEvents, sseResponseHead } from "./decode-fixtures.ts";
import { cat, frame, literalBlock, PREFACE } from "./decode-h2-support.ts";

const RUNS = 150;

/** ["head","body","body","end"] → ["head","body","end"]. */
const runsOf = (types: string[]) => types.filter((t, i) => t !== types[i - 1]);
const SLOW_MS = 1500;

/** A real ClientHello, from node:tls, captured on a local socket. */
async function captureClientHello(servername: string, alpn: string[]): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((s) => {
      s.once("data", (d: Buffer) => {
        resolve(new Uint8Array(d));
        s.destroy();
        srv.close();
      });
    });
    srv.listen(0, "127.0.0.1", () => {
      const c = tls.connect({ port: (srv.address() as net.AddressInfo).port, host: "127.0.0.1", servername, ALPNProtocols: alpn });
      c.on("error", () => {});
      setTimeout(() => reject(new Error("no ClientHello")), 3000).unref();
    });
  });
}

describe("fuzz: TLS ClientHello", () => {
  test("parser never throws; any result is a known status; SNI is bounded", async () => {
    const seeds = [await captureClientHello("api.openai.com", ["h2", "http/1.1"]), await captureClientHello("api.anthropic.com", ["http/1.1"])];
    expect(parseClientHello(seeds[0]!)).toMatchObject({ status: "ok" });
    fc.assert(
      fc.property(mutatedFrom(seeds, 8), cutsArb, (input, cuts) => {
        timed("ClientHello", SLOW_MS, () => {
          const whole = parseClientHello(input);
          expect(["ok", "need-more", "not-tls", "invalid", "too-large"]).toContain(whole.status);
          const p = new ClientHelloParser();
          let r = p.push(new Uint8Array(0));
          for (const part of splitAt(input, cuts)) r = p.push(part);
          // Split or whole, the same bytes give the same verdict.
          expect(r.status).toBe(whole.status);
          if (r.status === "ok") expect((r as { hello: { sni?: string } }).hello.sni?.length ?? 0).toBeLessThanOrEqual(input.length);
        });
      }),
      fuzzParams(RUNS * 2),
    );
  });
});

test("ClientHello: 0x16 then a non-TLS second byte in its own read is 'not-tls' at once, as when read together (found by scripts/fuzz.ts)", () => {
  const p = new ClientHelloParser();
  expect(p.push(Uint8Array.of(22)).status).toBe("need-more");
  expect(p.push(Uint8Array.of(22)).status).toBe("not-tls");
});

describe("fuzz: HTTP/1.1", () => {
  const requests = [utf8(openaiRequest()), utf8(openaiRequest(JSON.stringify({ model: "m", stream: true }), "/v1/chat/completions", "Transfer-Encoding: chunked\r\n").replace(/Content-Length: \d+\r\n/, ""))];
  const responses = [
    utf8(jsonResponse(chatCompletionJson)),
    concat(utf8(sseResponseHead), ...sseEvents.map((e) => chunk(e)), utf8(lastChunk)),
    utf8("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    utf8("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi"),
  ];

  for (const [role, seeds] of [["request", requests], ["response", responses]] as const) {
    test(`${role} parser: no throw, items bounded, split-invariant`, () => {
      fc.assert(
        fc.property(mutatedFrom(seeds), cutsArb, (input, cuts) => {
          timed(`http1 ${role}`, SLOW_MS, () => {
            const whole = new Http1Parser(role, { maxHeaderCount: 64 });
            const a = [...whole.push(input, 1), ...whole.finish(2)];
            const split = new Http1Parser(role, { maxHeaderCount: 64 });
            const b = splitAt(input, cuts).flatMap((part) => split.push(part, 1));
            b.push(...split.finish(2));
            // Body bytes out never exceed bytes in (no amplification), and an error is a value.
            const bodyBytes = (items: typeof a) => items.reduce((n, it) => n + ((it as { data?: Uint8Array }).data?.length ?? 0), 0);
            expect(bodyBytes(a)).toBeLessThanOrEqual(input.length);
            expect(bodyBytes(b)).toBe(bodyBytes(a));
            // Body items follow the reads; the message structure (runs of one kind) does not.
            expect(runsOf(b.map((i) => i.type))).toEqual(runsOf(a.map((i) => i.type)));
          });
        }),
        fuzzParams(RUNS * 2),
      );
    });

    test(`${role} parser: a head read whole and one byte at a time gives the same items up to a rejection`, () => {
      // A head within one push is read in place; across pushes it is gathered first: both must agree. Garbage
      // is rejected by both, though not always for the same reason (byte by byte, the first bad byte decides).
      const notBody = (items: ReturnType<Http1Parser["push"]>) => {
        const out = items.filter((i) => i.type !== "body");
        const error = out.findIndex((i) => i.type === "error");
        return error === -1 ? out : [...out.slice(0, error), { type: "error" }];
      };
      const body = (items: ReturnType<Http1Parser["push"]>) => Buffer.concat(items.flatMap((i) => (i.type === "body" ? [i.data.slice()] : []))).toString("hex");
      fc.assert(
        fc.property(mutatedFrom(seeds), (input) => {
          const whole = new Http1Parser(role, { maxHeaderCount: 64, maxHeaderBytes: 512 });
          const a = [...whole.push(input, 1), ...whole.finish(1)];
          const bytewise = new Http1Parser(role, { maxHeaderCount: 64, maxHeaderBytes: 512 });
          const b = [...Array.from(input, (_, i) => bytewise.push(input.subarray(i, i + 1), 1)).flat(), ...bytewise.finish(1)];
          expect(notBody(b)).toEqual(notBody(a));
          expect(body(b)).toBe(body(a));
        }),
        fuzzParams(RUNS * 2),
      );
    });
  }
});

describe("fuzz: HTTP/2 frames and HPACK", () => {
  const h = (hs: Array<[string, string]>) => literalBlock(hs);
  const client = cat(
    PREFACE,
    frame(4, 0, 0, [0, 1, 0, 0, 0x10, 0]),
    frame(1, 0x4, 1, h([[":method", "POST"], [":path", "/v1/chat/completions"], [":scheme", "https"], [":authority", "api.openai.com"], ["content-type", "application/json"]])),
    frame(0, 0x1, 1, utf8('{"model":"gpt-4o","messages":[]}')),
  );
  const server = cat(frame(4, 0, 0), frame(1, 0x4, 1, h([[":status", "200"], ["content-type", "text/event-stream"]])), frame(0, 0, 1, utf8('data: {"x":1}\n\n')), frame(0, 1, 1, utf8("data: [DONE]\n\n")));
  // A real encoder's output (indexed fields, Huffman, dynamic table updates).
  const hpackSeeds = [
    Uint8Array.from([0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]),
    Uint8Array.from([0x3f, 0xe1, 0x1f, 0x48, 0x82, 0x64, 0x02, 0x58, 0x85, 0xae, 0xc3, 0x77, 0x1a, 0x4b]),
    h([["x-api-key", "sk-ant-123"], ["a", "b"]]),
  ];

  test("frame reader: no throw, payload bytes out <= bytes in, split-invariant", () => {
    fc.assert(
      fc.property(mutatedFrom([client, server]), cutsArb, fc.boolean(), (input, cuts, preface) => {
        timed("h2 frames", SLOW_MS, () => {
          const run = (parts: Uint8Array[]) => {
            const r = new H2FrameReader(preface);
            const frames = [];
            let error: string | undefined;
            for (const p of parts) {
              const out = r.push(p, 1);
              frames.push(...out.frames);
              error ??= out.error;
            }
            return { frames, error };
          };
          const a = run([input]);
          const b = run(splitAt(input, cuts));
          expect(a.frames.reduce((n, f) => n + f.payload.length, 0)).toBeLessThanOrEqual(input.length);
          expect(b.frames.length).toBe(a.frames.length);
          expect(Boolean(b.error)).toBe(Boolean(a.error));
        });
      }),
      fuzzParams(RUNS * 2),
    );
  });

  test("HPACK: no throw, decoded list bounded by maxHeaderListSize, errors sticky", () => {
    fc.assert(
      fc.property(fc.array(mutatedFrom(hpackSeeds), { minLength: 1, maxLength: 6 }), (blocks) => {
        timed("hpack", SLOW_MS, () => {
          const d = new HpackDecoder({ maxHeaderListSize: 4096 });
          let failed = false;
          for (const block of blocks) {
            const r = d.decode(block);
            if (!r.ok) failed = true;
            else {
              expect(failed).toBe(false); // once failed, a decoder must not pretend to recover
              const size = r.headers.reduce((n, [k, v]) => n + k.length + v.length + 32, 0);
              expect(size).toBeLessThanOrEqual(4096 + 32 + 2 * 4096);
            }
          }
        });
      }),
      fuzzParams(RUNS * 2),
    );
  });
});

describe("fuzz: streaming body formats", () => {
  test("SSE: no throw, split-invariant, events bounded by maxEventLength", () => {
    const seeds = [utf8(sseEvents.join("")), utf8("event: message_start\ndata: {\"a\":1}\r\n\r\n: comment\nid: 7\nretry: 10\ndata: x\n\n")];
    fc.assert(
      fc.property(mutatedFrom(seeds), cutsArb, (input, cuts) => {
        timed("sse", SLOW_MS, () => {
          const all = (parts: Uint8Array[]) => {
            const p = new SseParser({ maxEventLength: 256 });
            return [...parts.flatMap((x) => p.push(x)), ...p.end()];
          };
          const a = all([input]);
          const b = all(splitAt(input, cuts));
          expect(b).toEqual(a);
          for (const e of a) expect(e.data.length).toBeLessThanOrEqual(256);
        });
      }),
      fuzzParams(RUNS * 2),
    );
  });

  test("SSE: the events of the spec's plain reading of the text (fields, comments, ids, retry, blank lines)", () => {
    /** The WHATWG event-stream interpretation, line by line, with no limits: what SseParser must agree with. */
    const reference = (text: string) => {
      const events: Array<Record<string, unknown>> = [];
      let data: string[] = [];
      let type = "";
      let lastId = "";
      let retry: number | undefined;
      const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);
      lines.pop(); // the text ends with a line break: nothing follows it
      const event = () => ({ data: data.join("\n"), ...(type && { event: type }), ...(lastId && { id: lastId }), ...(retry !== undefined && { retry }) });
      for (const line of lines) {
        if (line === "") {
          if (data.length > 0) events.push(event());
          data = [];
          type = "";
          retry = undefined;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") type = value;
        else if (field === "id" && !value.includes("\0")) lastId = value;
        else if (field === "retry" && /^[0-9]+$/.test(value)) retry = Number(value);
      }
      if (data.length > 0) events.push({ ...event(), incomplete: true });
      return events;
    };
    const pieces = fc.constantFrom("data", "data:", "data: ", "event: x", "id: 7", "id", "retry: 10", "retry: x", ": c", ":", "x", "dat", " ", "a:b", "\n", "\r", "\r\n", "\n\n", "\0", "é");
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 40 }), cutsArb, (parts, cuts) => {
        const text = `${parts.join("")}\n`; // ends on a line break: every line is whole
        const input = utf8(text);
        const p = new SseParser();
        const got = [...splitAt(input, cuts).flatMap((x) => p.push(x)), ...p.end()];
        expect(got).toEqual(reference(text) as never);
      }),
      fuzzParams(RUNS * 2),
    );
  });

  test("SSE events of a body parsed in one piece are those parsed chunk by chunk, with the same times", () => {
    const seeds = [utf8(sseEvents.join("")), utf8("event: message_start\ndata: {\"a\":1}\r\n\r\n: comment\nid: 7\nretry: 10\ndata: x\r\rdata: y\n\n")];
    fc.assert(
      fc.property(mutatedFrom(seeds), cutsArb, (input, cuts) => {
        const chunks = splitAt(input, cuts).map((data, i) => ({ ts: 1000 + i, data }));
        expect(timedSseEvents(chunks, 9999)).toEqual(timedSseEventsByChunk(chunks, 9999));
      }),
      fuzzParams(RUNS * 2),
    );
  });

  test("AWS event-stream: no throw, CRC failures reported, split-invariant", () => {
    const codec = new EventStreamCodec(toUtf8, fromUtf8);
    const msg = (type: string, body: string) =>
      codec.encode({ headers: { ":message-type": { type: "string", value: "event" }, ":event-type": { type: "string", value: type } }, body: fromUtf8(body) });
    const seeds = [concat(msg("contentBlockDelta", '{"delta":{"text":"hi"}}'), msg("messageStop", '{"stopReason":"end_turn"}'))];
    fc.assert(
      fc.property(mutatedFrom(seeds), cutsArb, (input, cuts) => {
        timed("eventstream", SLOW_MS, () => {
          const all = (parts: Uint8Array[]) => {
            const d = new EventStreamDecoder({ maxMessageBytes: 4096 });
            return [...parts.flatMap((x) => d.push(x)), ...d.end()];
          };
          const a = all([input]);
          const b = all(splitAt(input, cuts));
          const messages = (items: typeof a) => items.flatMap((i) => (i.type === "message" ? [Buffer.from(i.message.payload).toString("hex")] : []));
          expect(messages(b)).toEqual(messages(a));
          expect(b.some((i) => i.type === "error")).toBe(a.some((i) => i.type === "error"));
          for (const i of a) if (i.type === "message") expect(i.message.payload.length).toBeLessThanOrEqual(4096);
        });
      }),
      fuzzParams(RUNS * 2),
    );
  });

  test("WebSocket frames (plain and permessage-deflate): no throw, messages capped", () => {
    const wsFrame = (opcode: number, payload: Uint8Array, mask?: number[], rsv1 = false) => {
      const head = [0x80 | (rsv1 ? 0x40 : 0) | opcode];
      const len = payload.length;
      if (len < 126) head.push((mask ? 0x80 : 0) | len);
      else head.push((mask ? 0x80 : 0) | 126, len >> 8, len & 0xff);
      if (!mask) return concat(Uint8Array.from(head), payload);
      const masked = payload.map((b, i) => b ^ mask[i % 4]!);
      return concat(Uint8Array.from([...head, ...mask]), masked);
    };
    const deflated = zlib.deflateRawSync(Buffer.from('{"type":"response.create","response":{}}'), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);
    const seeds = [
      concat(wsFrame(1, utf8('{"type":"session.update"}'), [1, 2, 3, 4]), wsFrame(9, utf8("ping"), [9, 9, 9, 9]), wsFrame(8, Uint8Array.from([3, 232]), [0, 0, 0, 0])),
      concat(wsFrame(1, new Uint8Array(deflated), undefined, true), wsFrame(2, new Uint8Array(300))),
    ];
    fc.assert(
      fc.property(mutatedFrom(seeds), cutsArb, fc.boolean(), (input, cuts, deflate) => {
        timed("websocket", SLOW_MS, () => {
          const d = new WebSocketDecoder({ maxMessageBytes: 1024, deflate: deflate ? { enabled: true, noContextTakeover: false, maxWindowBits: 15 } as never : undefined });
          const items = splitAt(input, cuts).flatMap((p) => d.push(p, 1));
          for (const it of items) if (it.type === "message") expect(it.data.length).toBeLessThanOrEqual(1024);
        });
      }),
      fuzzParams(RUNS * 2),
    );
  });

  test("NDJSON and JSON-array streams: no throw, split-invariant", () => {
    const nd = [utf8('{"model":"llama3","message":{"content":"a"},"done":false}\n{"done":true,"eval_count":3}\n')];
    const arr = [utf8('[{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}\r\n,\r\n{"usageMetadata":{"totalTokenCount":3}}]')];
    fc.assert(
      fc.property(mutatedFrom([...nd, ...arr]), cutsArb, (input, cuts) => {
        timed("ndjson/json-array", SLOW_MS, () => {
          const ndAll = (parts: Uint8Array[]) => {
            const p = new NdjsonParser({ maxLineLength: 512 });
            return [...parts.flatMap((x) => p.push(x)), ...p.end()];
          };
          const arrAll = (parts: Uint8Array[]) => {
            const p = new JsonArrayStreamParser({ maxElementLength: 512 });
            return [...parts.flatMap((x) => p.push(x)), ...p.end()];
          };
          expect(ndAll(splitAt(input, cuts))).toEqual(ndAll([input]));
          expect(arrAll(splitAt(input, cuts)).map((i) => i.type)).toEqual(arrAll([input]).map((i) => i.type));
        });
      }),
      fuzzParams(RUNS * 2),
    );
  });

  test("JSON array: a stray } after an element ends in an error instead of looping forever (found by this fuzzer)", () => {
    const p = new JsonArrayStreamParser();
    const items = timed("json-array stray }", 500, () => [...p.push(utf8('[{"a":"x"]}}]}\r\n,{"b":1}]')), ...p.end()]);
    expect(items.at(-1)).toMatchObject({ type: "error", fatal: true });
  });

  test("content decoder (gzip, deflate, br, zstd, chains): no throw, output capped", () => {
    const text = Buffer.from(chatCompletionJson.repeat(8));
    const seeds: Array<[string[], Uint8Array]> = [
      [["gzip"], zlib.gzipSync(text)],
      [["deflate"], zlib.deflateSync(text)],
      [["br"], zlib.brotliCompressSync(text)],
      [["gzip", "br"], zlib.brotliCompressSync(zlib.gzipSync(text))],
    ];
    if (typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync === "function") seeds.push([["zstd"], (zlib as unknown as { zstdCompressSync(b: Buffer): Buffer }).zstdCompressSync(text)]);
    fc.assert(
      fc.property(fc.nat(seeds.length - 1), fc.array(fc.nat(), { maxLength: 6 }), cutsArb, (which, flips, cuts) => {
        const [codings, seed] = seeds[which]!;
        const input = new Uint8Array(seed);
        for (const f of flips) input[f % input.length]! ^= 1 << (f % 8);
        timed("content decoder", SLOW_MS, () => {
          const d = new ContentDecoder(codings, { maxOutputBytes: 2048 });
          const out = [...splitAt(input, cuts).flatMap((p) => d.push(p)), ...d.end()];
          expect(out.reduce((n, b) => n + b.length, 0)).toBeLessThanOrEqual(2048 + input.length);
        });
      }),
      fuzzParams(RUNS * 2),
    );
  });
});

describe("fuzz: IPC frames", () => {
  test("decoder: no throw, never yields a frame that fails its schema, fails closed", () => {
    const seeds = [
      concat(
        encodeFrame({ t: "hello", token: "t".repeat(64), version: "0.1.0", pid: 42, runId: "01J0000000000000000000000" }),
        encodeFrame({ t: "open", meta: { connId: "c1", startedAt: 1, client: { ip: "127.0.0.1", port: 5 }, server: { ip: "1.2.3.4", port: 443 }, host: "api.openai.com", mode: "mitm", captureMethod: "mitm_proxy" } }),
        encodeFrame({ t: "data", connId: "c1", dir: "c2s", ts: 2, bytes: utf8("POST / HTTP/1.1\r\n\r\n") }),
        encodeFrame({ t: "close", connId: "c1", ts: 3 }),
      ),
    ];
    fc.assert(
      fc.property(mutatedFrom(seeds), cutsArb, (input, cuts) => {
        timed("ipc frames", SLOW_MS, () => {
          const d = new FrameDecoder();
          let failed = false;
          for (const part of splitAt(input, cuts)) {
            const r = d.push(part);
            if (failed) expect(r.frames).toEqual([]); // once failed, nothing more comes out
            for (const f of r.frames) expect(["hello", "open", "data", "close", "welcome"]).toContain(f.t);
            if (r.error) failed = true;
          }
        });
      }),
      fuzzParams(RUNS * 2),
    );
  });
});
