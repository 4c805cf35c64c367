// HTTP/2 connection decoder on real node:http2 conversations (captured through a TCP relay) and on
// hand-built frames for resets, GOAWAY, padding, CONTINUATION, pushes and corruption.
import { describe, expect, test } from "bun:test";
import http2 from "node:http2";
import zlib from "node:zlib";
import { createConnectionDecoder, type ConnectionOutput } from "../../src/decode/connection-decoder.ts";
import { ByteQueue } from "../../src/decode/byte-queue.ts";
import { H2ConnectionDecoder } from "../../src/decode/h2-connection.ts";
import { concatChunks, headerValue, type HttpExchange } from "../../src/decode/types.ts";
import { PREFACE, captureH2, cat, feed, frame, literalBlock, pieces, request, splitAt, u32, type Step } from "./decode-h2-support.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const exchanges = (out: ConnectionOutput[]) =>
  out.filter((o): o is Extract<ConnectionOutput, { kind: "exchange" }> => o.kind === "exchange").map((o) => o.exchange);
const requests = (out: ConnectionOutput[]) => out.filter((o) => o.kind === "request").map((o) => (o as { exchange: HttpExchange }).exchange);

/** A comparable summary of one exchange. */
function summary(ex: HttpExchange) {
  return {
    seq: ex.seq,
    method: ex.request.method,
    path: ex.request.path,
    host: ex.request.host,
    version: ex.request.httpVersion,
    reqBody: text(ex.request.body),
    status: ex.response?.status,
    resBody: ex.response ? text(concatChunks(ex.response.chunks)) : undefined,
    complete: ex.response?.complete,
    error: ex.error,
  };
}

/** Same outputs whole, in 1-byte pieces, in 7- and 1000-byte pieces, and split once in each step. */
function expectSplitInvariant(steps: Step[]): ConnectionOutput[] {
  const whole = feed(steps);
  const base = exchanges(whole).map(summary);
  for (const cut of [pieces(1), pieces(7), pieces(1000), splitAt(3), splitAt(9), splitAt(100)]) {
    const out = feed(steps, cut);
    expect(exchanges(out).map(summary)).toEqual(base);
    expect(out.filter((o) => o.kind === "protocol-error")).toEqual([]);
  }
  return whole;
}

describe("real node:http2 conversations", () => {
  test("POST with JSON body, gzip response, SSE stream, GET: paired by stream id", async () => {
    const steps = await captureH2(
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (d: Buffer) => chunks.push(d));
        req.on("end", () => {
          if (req.url === "/v1/chat/completions") {
            res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
            res.end(zlib.gzipSync(JSON.stringify({ echo: JSON.parse(Buffer.concat(chunks).toString()).model })));
          } else if (req.url === "/stream") {
            res.writeHead(200, { "content-type": "text/event-stream" });
            let i = 0;
            const timer = setInterval(() => {
              res.write(`data: {"n":${i}}\n\n`);
              if (++i === 3) {
                clearInterval(timer);
                res.end("data: [DONE]\n\n");
              }
            }, 5);
          } else {
            res.writeHead(404, { "content-type": "text/plain" });
            res.end("nope");
          }
        });
      },
      async (client) => {
        const a = await request(
          client,
          { ":method": "POST", ":path": "/v1/chat/completions", "content-type": "application/json", authorization: "Bearer sk-test" },
          JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
        );
        expect(a.status).toBe(200);
        await request(client, { ":method": "POST", ":path": "/stream" }, "{}");
        await request(client, { ":path": "/missing?x=1" });
      },
    );
    const out = expectSplitInvariant(steps);
    const ex = exchanges(out);
    expect(ex.map(summary)).toEqual([
      {
        seq: 1,
        method: "POST",
        path: "/v1/chat/completions",
        host: "127.0.0.1:" + ex[0]!.request.host.split(":")[1],
        version: "2",
        reqBody: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
        status: 200,
        resBody: '{"echo":"gpt-4o"}',
        complete: true,
        error: undefined,
      },
      expect.objectContaining({ seq: 3, path: "/stream", status: 200, resBody: 'data: {"n":0}\n\ndata: {"n":1}\n\ndata: {"n":2}\n\ndata: [DONE]\n\n', complete: true }),
      expect.objectContaining({ seq: 5, method: "GET", path: "/missing?x=1", status: 404, resBody: "nope", reqBody: "" }),
    ]);
    expect(headerValue(ex[0]!.request.headers, "authorization")).toBe("Bearer sk-test");
    expect(ex[0]!.request.headers.some(([k]) => k.startsWith(":"))).toBe(false);
    expect(headerValue(ex[0]!.response!.headers, "content-encoding")).toBe("gzip");
    // The SSE body arrived in several DATA frames at different times.
    expect(ex[1]!.response!.chunks.length).toBeGreaterThan(1);
    expect(ex[1]!.response!.firstBodyTs).toBeGreaterThan(ex[1]!.response!.startTs - 1);
    // Each request was reported before its exchange.
    expect(requests(out).map((r) => r.seq)).toEqual([1, 3, 5]);
  }, 15_000);

  test("100 concurrent streams answered out of order on one connection", async () => {
    const steps = await captureH2(
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (d: Buffer) => chunks.push(d));
        req.on("end", () => {
          const n = Number(req.headers["x-n"]);
          // Answer in a scrambled order, in two writes, so DATA frames of streams interleave.
          setTimeout(() => {
            res.writeHead(200, { "content-type": "application/json" });
            res.write(`{"n":${n},`);
            setTimeout(() => res.end(`"body":${JSON.stringify(Buffer.concat(chunks).toString())}}`), (n * 7) % 5);
          }, (n * 13) % 17);
        });
      },
      async (client) => {
        const all = [];
        for (let n = 0; n < 100; n++) all.push(request(client, { ":method": "POST", ":path": `/item/${n}`, "x-n": String(n) }, `payload-${n}-`.repeat(n % 5 + 1)));
        const results = await Promise.all(all);
        expect(results.every((r) => r.status === 200)).toBe(true);
      },
      { server: { settings: { maxConcurrentStreams: 200 } } },
    );
    const out = feed(steps);
    const ex = exchanges(out);
    expect(ex.length).toBe(100);
    for (const e of ex) {
      const n = Number(e.request.path.split("/")[2]);
      expect(e.seq).toBe(2 * n + 1);
      expect(text(e.request.body)).toBe(`payload-${n}-`.repeat(n % 5 + 1));
      expect(JSON.parse(text(concatChunks(e.response!.chunks)))).toEqual({ n, body: text(e.request.body) });
      expect(e.error).toBeUndefined();
    }
    // Completed out of order: the output order is not the stream order.
    expect(ex.map((e) => e.seq)).not.toEqual([...ex.map((e) => e.seq)].sort((a, b) => a - b));
    // Same result split in small pieces.
    expect(exchanges(feed(steps, pieces(13))).map(summary)).toEqual(ex.map(summary));
  }, 20_000);

  test("many distinct headers per request: the real encoder's dynamic table evicts and stays in sync", async () => {
    // Bun's node:http2 keeps the default 4096-octet table (it ignores a larger headerTableSize),
    // so this exercises eviction on real traffic; the 64 KiB table is built by hand below.
    const steps = await captureH2(
      (req, res) => {
        res.writeHead(200, { "x-echo": String(req.headers["x-big-0"]), "x-server-long": "s".repeat(3000) });
        res.end("ok");
      },
      async (client) => {
        for (let round = 0; round < 20; round++) {
          const headers: http2.OutgoingHttpHeaders = { ":path": `/r${round}` };
          for (let i = 0; i < 30; i++) headers[`x-big-${i % 10 === 0 ? 0 : i}`] = `r${round % 3}-${i}-`.padEnd(100, "v");
          await request(client, headers);
        }
      },
    );
    const out = expectSplitInvariant(steps);
    const ex = exchanges(out);
    expect(ex.length).toBe(20);
    ex.forEach((e, round) => {
      expect(e.request.path).toBe(`/r${round}`);
      for (let i = 1; i < 30; i++) if (i % 10 !== 0) expect(headerValue(e.request.headers, `x-big-${i}`)).toBe(`r${round % 3}-${i}-`.padEnd(100, "v"));
      expect(headerValue(e.response!.headers, "x-server-long")).toBe("s".repeat(3000));
    });
  }, 20_000);

  test("a stream cancelled by the client becomes an exchange with the reset error", async () => {
    const steps = await captureH2(
      (_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write("data: first\n\n");
        const timer = setInterval(() => {
          if (res.stream.destroyed || res.stream.closed) clearInterval(timer);
          else res.write("data: more\n\n");
        }, 5);
        res.stream.on("close", () => clearInterval(timer));
      },
      async (client) => {
        await new Promise<void>((resolve) => {
          const req = client.request({ ":method": "POST", ":path": "/v1/stream" });
          req.end("{}");
          req.on("data", () => {
            req.close(http2.constants.NGHTTP2_CANCEL);
          });
          req.on("close", () => resolve());
          req.on("error", () => resolve());
        });
      },
    );
    const out = feed(steps);
    const [ex] = exchanges(out);
    expect(ex!.error).toBe("response truncated: stream reset by client: CANCEL");
    expect(ex!.response!.complete).toBe(false);
    expect(text(concatChunks(ex!.response!.chunks))).toStartWith("data: first\n\n");
  }, 15_000);

  test("padded frames (node padding strategy MAX) decode the same", async () => {
    const steps = await captureH2(
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (d: Buffer) => chunks.push(d));
        req.on("end", () => {
          res.writeHead(200);
          res.end(Buffer.concat(chunks).toString().toUpperCase());
        });
      },
      async (client) => {
        const r = await request(client, { ":method": "POST", ":path": "/pad" }, "padded body");
        expect(r.body.toString()).toBe("PADDED BODY");
      },
      { server: { paddingStrategy: http2.constants.PADDING_STRATEGY_MAX }, client: { paddingStrategy: http2.constants.PADDING_STRATEGY_MAX } },
    );
    const [ex] = exchanges(expectSplitInvariant(steps));
    expect(text(ex!.request.body)).toBe("padded body");
    expect(text(concatChunks(ex!.response!.chunks))).toBe("PADDED BODY");
  }, 15_000);
});

describe("hand-built frames", () => {
  const settings = frame(0x4, 0, 0);
  const reqHeaders = (id: number, path: string, endStream = false) =>
    frame(0x1, 0x4 | (endStream ? 1 : 0), id, literalBlock([[":method", "POST"], [":scheme", "https"], [":path", path], [":authority", "api.example.com:443"]]));
  const resHeaders = (id: number, status = "200", endStream = false) => frame(0x1, 0x4 | (endStream ? 1 : 0), id, literalBlock([[":status", status]]));
  const data = (id: number, s: string, endStream = false) => frame(0x0, endStream ? 1 : 0, id, Buffer.from(s));

  const run = (steps: Array<["c2s" | "s2c", Uint8Array]>, close = true) => feed(steps.map(([dir, d], ts) => ({ dir, data: d, ts })), undefined, undefined, close);

  test("HEADERS split over CONTINUATION, padded DATA, PRIORITY, PING, WINDOW_UPDATE and an unknown frame", () => {
    const block = literalBlock([[":method", "POST"], [":scheme", "https"], [":path", "/v1/x"], [":authority", "api.example.com"], ["x-a", "1"]]);
    const paddedData = frame(0x0, 0x8 | 0x1, 1, [3, ...Buffer.from("body"), 0, 0, 0]);
    const prioHeaders = frame(0x1, 0x20 | 0x4 | 0x8, 1, [2, 0, 0, 0, 3, 16, ...literalBlock([[":status", "201"]]), 0, 0]);
    const steps: Step[] = [
      { dir: "c2s", data: cat(PREFACE, settings, frame(0x1, 0, 1, block.subarray(0, 5)), frame(0x9, 0, 1, block.subarray(5, 20)), frame(0x9, 0x4, 1, block.subarray(20))), ts: 1 },
      { dir: "c2s", data: cat(frame(0x2, 0, 1, [0, 0, 0, 0, 1]), frame(0x6, 0, 0, [1, 2, 3, 4, 5, 6, 7, 8]), frame(0x8, 0, 0, u32(1000)), frame(0xfa, 0, 1, [9, 9]), paddedData), ts: 2 },
      { dir: "s2c", data: cat(settings, frame(0x4, 1, 0), prioHeaders, data(1, "done", true)), ts: 3 },
    ];
    const out = expectSplitInvariant(steps);
    const [ex] = exchanges(out);
    expect(summary(ex!)).toEqual({
      seq: 1, method: "POST", path: "/v1/x", host: "api.example.com", version: "2", reqBody: "body", status: 201, resBody: "done", complete: true, error: undefined,
    });
    expect(headerValue(ex!.request.headers, "x-a")).toBe("1");
  });

  test("a 64 KiB dynamic table: size update, hundreds of entries, references deep into it", () => {
    const int = (value: number, prefixBits: number, first: number) => {
      const max = (1 << prefixBits) - 1;
      if (value < max) return [first | value];
      const out = [first | max];
      value -= max;
      while (value >= 128) {
        out.push((value % 128) | 128);
        value = Math.floor(value / 128);
      }
      out.push(value);
      return out;
    };
    const lit = (k: string, v: string) => [0x40, k.length, ...Buffer.from(k), ...int(v.length, 7, 0), ...Buffer.from(v)];
    const entries = Array.from({ length: 300 }, (_, i) => [`x-entry-${i}`, `value-${i}-`.padEnd(150, "q")] as const);
    // Block 1: size update to 65536, pseudo-headers, then 300 new indexed entries (≈ 58 KB).
    const block1 = [...int(65536, 5, 0x20), 0x83, 0x87, ...lit(":path", "/fill"), ...lit(":authority", "big.example")];
    for (const [k, v] of entries) block1.push(...lit(k, v));
    // Block 2 inserts :path first, then refers to the oldest entry (62 + 300) and one near the top.
    const block2 = [0x83, 0x87, ...lit(":path", "/use"), ...int(62 + 299 + 1, 7, 0x80), ...int(62 + 2, 7, 0x80)];
    // HEADERS + CONTINUATION frames of at most 16 KiB.
    const headerFrames = (id: number, block: Uint8Array) => {
      const out: Uint8Array[] = [];
      for (let off = 0; off < block.length; off += 16_000) {
        const last = off + 16_000 >= block.length;
        out.push(frame(off === 0 ? 0x1 : 0x9, (off === 0 ? 0x1 : 0) | (last ? 0x4 : 0), id, block.subarray(off, off + 16_000)));
      }
      return out;
    };
    const steps: Step[] = [
      { dir: "s2c", data: frame(0x4, 0, 0, [0, 1, ...u32(65536)]), ts: 0 },
      { dir: "c2s", data: cat(PREFACE, settings, ...headerFrames(1, Uint8Array.from(block1))), ts: 1 },
      { dir: "c2s", data: frame(0x1, 0x5, 3, Uint8Array.from(block2)), ts: 2 },
      { dir: "s2c", data: cat(resHeaders(1, "204", true), resHeaders(3, "204", true)), ts: 3 },
    ];
    const out = expectSplitInvariant(steps);
    const ex = exchanges(out);
    expect(ex.length).toBe(2);
    expect(ex[0]!.request.headers.length).toBe(300);
    expect(ex[1]!.request.headers).toEqual([[...entries[0]!], [...entries[298]!]]);
    // Without the server's SETTINGS the size update is refused: one protocol-error.
    const refused = feed(steps.slice(1));
    expect(refused.filter((o) => o.kind === "protocol-error").length).toBe(1);
  });

  test("RST_STREAM by the server, GOAWAY ends streams above its last id, 1xx ignored", () => {
    const out = run([
      ["c2s", cat(PREFACE, settings, reqHeaders(1, "/a", true), reqHeaders(3, "/b", true), reqHeaders(5, "/c", true), reqHeaders(7, "/d", true))],
      ["s2c", cat(settings, resHeaders(1, "100"), resHeaders(1), data(1, "partial"))],
      ["s2c", frame(0x3, 0, 1, u32(2))],
      ["s2c", cat(resHeaders(3), data(3, "three", true))],
      ["s2c", frame(0x7, 0, 0, [...u32(3), ...u32(0)])],
      ["c2s", reqHeaders(9, "/late", true)],
    ]);
    const ex = exchanges(out).map(summary);
    expect(ex).toEqual([
      expect.objectContaining({ seq: 1, status: 200, resBody: "partial", complete: false, error: "response truncated: stream reset by server: INTERNAL_ERROR" }),
      expect.objectContaining({ seq: 3, status: 200, resBody: "three", complete: true, error: undefined }),
      expect.objectContaining({ seq: 5, status: undefined, error: "not processed: server sent GOAWAY (last stream 3, NO_ERROR)" }),
      expect.objectContaining({ seq: 7, status: undefined, error: "not processed: server sent GOAWAY (last stream 3, NO_ERROR)" }),
      expect.objectContaining({ seq: 9, path: "/late", error: "connection closed" }),
    ]);
    expect(ex[0]!.host).toBe("api.example.com");
  });

  test("a full response then RST_STREAM(NO_ERROR) during the upload is a clean exchange", () => {
    const out = run([
      ["c2s", cat(PREFACE, settings, reqHeaders(1, "/up"), data(1, "part"))],
      ["s2c", cat(settings, resHeaders(1, "413"), data(1, "too big", true), frame(0x3, 0, 1, u32(0)))],
    ]);
    const [ex] = exchanges(out);
    expect(ex!.error).toBeUndefined();
    expect(ex!.response!.status).toBe(413);
    expect(text(ex!.request.body)).toBe("part");
  });

  test("PUSH_PROMISE is skipped but keeps the server's HPACK table in sync", () => {
    // Pushed headers inserted into the dynamic table (literal with indexing, new name).
    const pushBlock = Uint8Array.from([0x40, 6, ...Buffer.from("x-push"), 3, ...Buffer.from("yes")]);
    const out = run([
      ["c2s", cat(PREFACE, settings, reqHeaders(1, "/page", true))],
      ["s2c", cat(settings, frame(0x5, 0x4, 1, [...u32(2), ...pushBlock]))],
      ["s2c", cat(frame(0x1, 0x4, 2, literalBlock([[":status", "200"]])), data(2, "pushed", true))],
      // 0xbe = index 62: the entry the PUSH_PROMISE added.
      ["s2c", cat(frame(0x1, 0x4, 1, Uint8Array.from([0x88, 0xbe])), data(1, "main", true))],
    ]);
    const ex = exchanges(out);
    expect(ex.length).toBe(1);
    expect(headerValue(ex[0]!.response!.headers, "x-push")).toBe("yes");
    expect(text(concatChunks(ex[0]!.response!.chunks))).toBe("main");
  });

  test("content-encoding is decoded per stream; trailers end the response", () => {
    const gz = zlib.gzipSync("hello gzip world");
    const out = run([
      ["c2s", cat(PREFACE, settings, reqHeaders(1, "/gz", true))],
      ["s2c", cat(settings, frame(0x1, 0x4, 1, literalBlock([[":status", "200"], ["content-encoding", "gzip"]])), frame(0x0, 0, 1, gz.subarray(0, 10)), frame(0x0, 0, 1, gz.subarray(10)))],
      ["s2c", frame(0x1, 0x4 | 0x1, 1, literalBlock([["grpc-status", "0"]]))],
    ]);
    const [ex] = exchanges(out);
    expect(text(concatChunks(ex!.response!.chunks))).toBe("hello gzip world");
    expect(ex!.response!.complete).toBe(true);
  });

  test("body limit truncates and counts", () => {
    const dec = new H2ConnectionDecoder("c", { maxBodyBytes: 10 });
    const out = [
      ...dec.push("c2s", cat(PREFACE, settings, reqHeaders(1, "/big", true)), 1),
      ...dec.push("s2c", cat(settings, resHeaders(1), data(1, "0123456789abcdef", true)), 2),
    ];
    const [ex] = exchanges(out);
    expect(text(concatChunks(ex!.response!.chunks))).toBe("0123456789");
    expect(ex!.response!.bodyTruncated).toBe(true);
    expect(dec.stats().truncatedBodies).toBe(1);
  });

  test("streams beyond maxOpenStreams are counted, not tracked", () => {
    const dec = new H2ConnectionDecoder("c", { maxOpenStreams: 2 });
    const out = dec.push("c2s", cat(PREFACE, settings, reqHeaders(1, "/1", true), reqHeaders(3, "/3", true), reqHeaders(5, "/5", true)), 1);
    expect(requests(out).map((r) => r.seq)).toEqual([1, 3]);
    expect(dec.stats().untrackedStreams).toBe(1);
    // Its response is skipped quietly.
    expect(dec.push("s2c", cat(settings, resHeaders(5, "200", true)), 2)).toEqual([]);
  });

  describe("corruption gives one protocol-error and never throws", () => {
    const cases: Array<[string, Array<["c2s" | "s2c", Uint8Array]>, RegExp]> = [
      ["bad preface", [["c2s", Buffer.from("GET / HTTP/1.1\r\n\r\n")]], /preface/],
      ["oversized frame", [["c2s", cat(PREFACE, Uint8Array.from([0x01, 0x00, 0x00, 0, 0, 0, 0, 0, 1]))]], /exceeds the maximum frame size/],
      ["bad HPACK index", [["c2s", cat(PREFACE, frame(0x1, 0x5, 1, [0xff, 0x70]))]], /HPACK/],
      ["missing CONTINUATION", [["c2s", cat(PREFACE, frame(0x1, 0, 1, [0x82]), data(1, "x"))]], /expected CONTINUATION/],
      ["DATA on stream 0", [["c2s", cat(PREFACE, data(0, "x"))]], /stream 0/],
      ["bad SETTINGS length", [["s2c", frame(0x4, 0, 0, [0, 1, 0])]], /multiple of 6/],
      ["padding too long", [["c2s", cat(PREFACE, reqHeaders(1, "/p"), frame(0x0, 0x8, 1, [50, 1, 2]))]], /padding/],
      ["response without :status", [["c2s", cat(PREFACE, reqHeaders(1, "/s", true))], ["s2c", frame(0x1, 0x5, 1, literalBlock([["x", "y"]]))]], /:status/],
    ];
    for (const [name, steps, message] of cases) {
      test(name, () => {
        const out = run(steps);
        const errors = out.filter((o) => o.kind === "protocol-error");
        expect(errors.length).toBe(1);
        expect((errors[0] as { message: string }).message).toMatch(message);
      });
    }

    test("pending streams end with the protocol error, later bytes are ignored", () => {
      const dec = new H2ConnectionDecoder("c");
      dec.push("c2s", cat(PREFACE, settings, reqHeaders(1, "/a", true)), 1);
      const out = dec.push("s2c", frame(0x4, 0, 0, [1]), 2);
      expect(out.map((o) => o.kind)).toEqual(["protocol-error", "exchange"]);
      expect(exchanges(out)[0]!.error).toMatch(/^protocol error \(s2c\)/);
      expect(dec.push("s2c", resHeaders(1, "200", true), 3)).toEqual([]);
      expect(dec.close(4)).toEqual([]);
    });

    test("random garbage after a valid start never throws", () => {
      let seed = 42;
      const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256);
      for (let i = 0; i < 300; i++) {
        const dec = new H2ConnectionDecoder("c");
        const garbage = Uint8Array.from({ length: 50 + (i % 200) }, rand);
        dec.push("c2s", cat(PREFACE, settings, reqHeaders(1, "/a", true), garbage), 1);
        dec.push("s2c", Uint8Array.from({ length: 64 }, rand), 2);
        dec.close(3);
      }
    });
  });

  test("close in the middle of a frame says so", () => {
    const out = run([["c2s", cat(PREFACE, settings, reqHeaders(1, "/a"), data(1, "abc").subarray(0, 11))]]);
    expect(exchanges(out)[0]!.error).toBe("request truncated: connection closed inside a frame (c2s)");
  });
});

describe("createConnectionDecoder", () => {
  test("sniffs the preface when ALPN is unknown, HTTP/1.1 otherwise", () => {
    const h2 = createConnectionDecoder("c", undefined);
    const bytes = cat(PREFACE, frame(0x4, 0, 0), frame(0x1, 0x5, 1, literalBlock([[":method", "GET"], [":path", "/x"], [":authority", "h"]])));
    const out: ConnectionOutput[] = [];
    for (const b of bytes) out.push(...h2.push("c2s", Uint8Array.of(b), 1));
    expect(requests(out).map((r) => [r.request.httpVersion, r.request.path])).toEqual([["2", "/x"]]);

    const h1 = createConnectionDecoder("c", undefined);
    const out1 = [...h1.push("c2s", Buffer.from("GET /y HTTP/1.1\r\nHost: h\r\n\r\n"), 1)];
    expect(requests(out1).map((r) => [r.request.httpVersion, r.request.path])).toEqual([["1.1", "/y"]]);
    expect(createConnectionDecoder("c", "h2")).toBeInstanceOf(H2ConnectionDecoder);
  });
});

describe("bytes handed as Buffers the tap reuses (a Buffer's slice() is a view)", () => {
  test("ByteQueue keeps its own copy of what it was pushed", () => {
    const q = new ByteQueue();
    const scratch = Buffer.from("0123456789");
    q.push(scratch.subarray(0, 4));
    scratch.fill(0x78);
    q.push(scratch.subarray(0, 2));
    expect(Buffer.from(q.take(6)).toString("latin1")).toBe("0123xx");
  });

  test("the HTTP/1 sniffing decoder keeps its own copy of the bytes it holds", () => {
    const dec = createConnectionDecoder("sniff", undefined);
    // Its first bytes could open the HTTP/2 preface ("PRI * HTTP/2.0"): held until the next read says not.
    const req = Buffer.from("PRI * HTTP/1.1\r\nHost: h\r\n\r\n");
    const scratch = Buffer.from(req);
    const outs = [...dec.push("c2s", scratch.subarray(0, 6), 1)];
    expect(outs).toEqual([]);
    scratch.fill(0x78);
    scratch.set(req.subarray(6), 6);
    outs.push(...dec.push("c2s", scratch.subarray(6), 2));
    const first = outs[0];
    expect(first?.kind === "request" ? first.exchange.request.method : first?.kind).toBe("PRI");
  });
});
