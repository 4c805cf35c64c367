import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import zlib from "node:zlib";
import { HttpConnectionDecoder } from "../../src/decode/connection.ts";
import { concatChunks, headerValue } from "../../src/decode/types.ts";
import { SseParser } from "../../src/decode/sse.ts";
import {
  bytes,
  c2s,
  chatCompletionJson,
  chatRequestBody,
  chunk,
  exchangesOf,
  gzipFlushedParts,
  jsonResponse,
  kinds,
  lastChunk,
  openaiRequest,
  run,
  runSplitInvariant,
  s2c,
  sseEvents,
  sseResponseHead,
  text,
} from "./decode-fixtures.ts";

describe("HttpConnectionDecoder", () => {
  test("an OpenAI streaming chat completion: request, then the exchange with timed SSE chunks", () => {
    const steps = [
      c2s(openaiRequest(), 1000),
      s2c(sseResponseHead, 1200.5),
      ...sseEvents.map((e, i) => s2c(chunk(e), 1300 + i * 10)),
      s2c(lastChunk, 1400),
    ];
    const { outputs, decoder } = runSplitInvariant(steps);
    expect(kinds(outputs)).toEqual(["request:0", "exchange:0"]);

    const first = outputs[0]!;
    const request = first.kind === "request" ? first.exchange : undefined;
    expect(request?.response).toBeUndefined();
    expect(request?.request).toMatchObject({
      method: "POST",
      path: "/v1/chat/completions",
      host: "api.openai.com",
      httpVersion: "1.1",
      bodyTruncated: false,
      startTs: 1000,
      endTs: 1000,
    });
    expect(text(request!.request.body)).toBe(chatRequestBody);
    expect(headerValue(request!.request.headers, "Authorization")).toStartWith("Bearer sk-proj-");

    const [ex] = exchangesOf(outputs);
    expect(ex).toMatchObject({ connId: "conn-1", seq: 0 });
    expect(ex!.error).toBeUndefined();
    expect(ex!.response).toMatchObject({ status: 200, reason: "OK", startTs: 1200.5, firstBodyTs: 1300, endTs: 1400, complete: true });
    // Each SSE event keeps the time it arrived.
    expect(ex!.response!.chunks.map((c) => c.ts)).toEqual([1300, 1310, 1320, 1330, 1340]);
    expect(ex!.response!.chunks.map((c) => text(c.data))).toEqual(sseEvents);
    expect(decoder.stats()).toMatchObject({ exchanges: 1, truncatedBodies: 0, errors: 0 });
  });

  test("a gzip-compressed SSE stream keeps per-event timing", async () => {
    const parts = await gzipFlushedParts(sseEvents);
    const head = sseResponseHead.replace("Transfer-Encoding", "Content-Encoding: gzip\r\nTransfer-Encoding");
    const steps = [c2s(openaiRequest(), 1), s2c(head, 2), ...parts.map((p, i) => s2c(chunk(p), 10 + i)), s2c(lastChunk, 99)];
    const { outputs } = runSplitInvariant(steps);
    const [ex] = exchangesOf(outputs);
    expect(ex!.response!.decodeError).toBeUndefined();
    expect(ex!.response!.chunks.map((c) => c.ts)).toEqual(sseEvents.map((_, i) => 10 + i));
    const parser = new SseParser();
    const events = ex!.response!.chunks.flatMap((c) => parser.push(c.data));
    expect(events.map((e) => e.data)).toEqual(sseEvents.map((e) => e.slice(6, -2)));
  });

  test("keep-alive: three requests one after another on one connection", () => {
    const steps = [
      c2s(openaiRequest('{"n":1}'), 1),
      s2c(jsonResponse(chatCompletionJson), 2),
      c2s(openaiRequest('{"n":2}', "/v1/embeddings"), 3),
      s2c(jsonResponse('{"data":[]}'), 4),
      c2s("GET /v1/models HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n", 5),
      s2c(jsonResponse('{"object":"list"}'), 6),
    ];
    const { outputs } = runSplitInvariant(steps);
    expect(kinds(outputs)).toEqual(["request:0", "exchange:0", "request:1", "exchange:1", "request:2", "exchange:2"]);
    const exchanges = exchangesOf(outputs);
    expect(exchanges.map((e) => e.request.path)).toEqual(["/v1/chat/completions", "/v1/embeddings", "/v1/models"]);
    expect(exchanges.map((e) => text(concatChunks(e.response!.chunks)))).toEqual([chatCompletionJson, '{"data":[]}', '{"object":"list"}']);
    expect(exchanges[2]!.request.host).toBe("api.openai.com");
  });

  test("pipelining: three requests in one push, three responses in one push, paired by order", () => {
    const steps = [
      c2s(bytes(openaiRequest('{"n":1}'), openaiRequest('{"n":2}'), openaiRequest('{"n":3}')), 1),
      s2c(bytes(jsonResponse('{"r":1}'), jsonResponse('{"r":2}'), jsonResponse('{"r":3}')), 2),
    ];
    const { outputs } = runSplitInvariant(steps);
    expect(kinds(outputs)).toEqual(["request:0", "request:1", "request:2", "exchange:0", "exchange:1", "exchange:2"]);
    for (const ex of exchangesOf(outputs)) {
      const n = JSON.parse(text(ex.request.body)).n;
      expect(JSON.parse(text(concatChunks(ex.response!.chunks)))).toEqual({ r: n });
    }
  });

  test("HEAD: the response's Content-Length does not frame a body; the next exchange still parses", () => {
    const steps = [
      c2s("HEAD /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n", 1),
      s2c("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nContent-Encoding: gzip\r\n\r\n", 2),
      c2s("GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n", 3),
      s2c(jsonResponse("{}"), 4),
    ];
    const { outputs } = runSplitInvariant(steps);
    const [head, get] = exchangesOf(outputs);
    expect(head!.response).toMatchObject({ status: 200, chunks: [], complete: true });
    expect(head!.response!.firstBodyTs).toBeUndefined();
    expect(head!.response!.decodeError).toBeUndefined();
    expect(text(concatChunks(get!.response!.chunks))).toBe("{}");
  });

  test("204 and 304 have no body", () => {
    const steps = [
      c2s("DELETE /v1/files/f1 HTTP/1.1\r\nHost: a\r\n\r\nGET /v1/files HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"x\"\r\n\r\n", 1),
      s2c("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n", 2),
    ];
    const { outputs } = runSplitInvariant(steps, { close: { ts: 3 } });
    expect(exchangesOf(outputs).map((e) => [e.response!.status, e.response!.chunks.length, e.response!.complete])).toEqual([
      [204, 0, true],
      [304, 0, true],
    ]);
  });

  test("100-continue: the interim response is skipped, the final one pairs with the request", () => {
    const body = '{"input":"hello"}';
    const steps = [
      c2s(`POST /v1/embeddings HTTP/1.1\r\nHost: api.openai.com\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`, 1),
      s2c("HTTP/1.1 100 Continue\r\n\r\n", 2),
      c2s(body, 3),
      s2c(jsonResponse('{"ok":true}'), 4),
    ];
    const { outputs } = runSplitInvariant(steps);
    expect(kinds(outputs)).toEqual(["request:0", "exchange:0"]);
    const [ex] = exchangesOf(outputs);
    expect(ex!.request).toMatchObject({ startTs: 1, endTs: 3 });
    expect(ex!.response).toMatchObject({ status: 200, startTs: 4 });
  });

  test("chunked response with extensions and trailers", () => {
    const steps = [
      c2s(openaiRequest(), 1),
      s2c("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Usage\r\n\r\n4;ext=1\r\nabcd\r\n2\r\nef\r\n0\r\nX-Usage: 42\r\n\r\n", 2),
    ];
    const [ex] = exchangesOf(runSplitInvariant(steps).outputs);
    expect(text(concatChunks(ex!.response!.chunks))).toBe("abcdef");
    expect(ex!.response!.complete).toBe(true);
  });

  test("close-delimited response ends, complete, when the connection closes", () => {
    const steps = [c2s(openaiRequest(), 1), s2c("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n", 2), s2c(chatCompletionJson, 3)];
    const { outputs, closeOutputs } = runSplitInvariant(steps, { close: { ts: 4 } });
    expect(kinds(outputs)).toEqual(["request:0"]);
    const [ex] = exchangesOf(closeOutputs);
    expect(ex!.error).toBeUndefined();
    expect(ex!.response).toMatchObject({ complete: true, endTs: 4 });
    expect(text(concatChunks(ex!.response!.chunks))).toBe(chatCompletionJson);

    // The same body cut by a reset is not trusted as complete.
    const reset = run(steps, { close: { ts: 4, error: "ECONNRESET" } });
    expect(exchangesOf(reset.closeOutputs)[0]).toMatchObject({ error: "response truncated: ECONNRESET", response: { complete: false } });
  });

  const compressedBodies: Array<[string, (b: Uint8Array) => Uint8Array]> = [
    ["gzip", (b) => zlib.gzipSync(b)],
    ["deflate", (b) => zlib.deflateSync(b)],
    ["deflate (raw)", (b) => zlib.deflateRawSync(b)],
    ["br", (b) => zlib.brotliCompressSync(b)],
    ["zstd", (b) => Bun.zstdCompressSync(b)],
    ["gzip, br", (b) => zlib.brotliCompressSync(zlib.gzipSync(b))],
  ];
  for (const [coding, compress] of compressedBodies) {
    test(`Content-Encoding: ${coding} response body is decoded`, () => {
      const compressed = compress(bytes(chatCompletionJson));
      const header = coding.replace(" (raw)", "");
      const steps = [
        c2s(openaiRequest(), 1),
        s2c(bytes(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: ${header}\r\nContent-Length: ${compressed.length}\r\n\r\n`, compressed), 2),
      ];
      const [ex] = exchangesOf(runSplitInvariant(steps).outputs);
      expect(ex!.response!.decodeError).toBeUndefined();
      expect(text(concatChunks(ex!.response!.chunks))).toBe(chatCompletionJson);
    });
  }

  test("a gzip-encoded request body is decoded too", () => {
    const gz = zlib.gzipSync(chatRequestBody);
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Encoding: gzip\r\nContent-Length: ${gz.length}\r\n\r\n`;
    const { outputs } = run([c2s(bytes(head, gz), 1)]);
    const first = outputs[0]!;
    expect(first.kind === "request" && text(first.exchange.request.body)).toBe(chatRequestBody);
  });

  test("a gzip bomb is capped at maxBodyBytes, flagged and counted", () => {
    const bomb = zlib.gzipSync(new Uint8Array(50 * 1024 * 1024));
    const steps = [
      c2s(openaiRequest(), 1),
      s2c(bytes(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${bomb.length}\r\n\r\n`, bomb), 2),
    ];
    const { outputs, decoder } = run(steps, { decoder: { maxBodyBytes: 256 * 1024 } });
    const [ex] = exchangesOf(outputs);
    expect(ex!.response).toMatchObject({ bodyTruncated: true, complete: true });
    expect(concatChunks(ex!.response!.chunks).length).toBe(256 * 1024);
    expect(decoder.stats().truncatedBodies).toBe(1);
  });

  test("an identity body over maxBodyBytes is counted, not kept", () => {
    const big = "a".repeat(10_000);
    const steps = [c2s(openaiRequest(big), 1), s2c(jsonResponse(big), 2)];
    const { outputs, decoder } = run(steps, { decoder: { maxBodyBytes: 1000 } });
    const [ex] = exchangesOf(outputs);
    expect(ex!.request).toMatchObject({ bodyTruncated: true });
    expect(ex!.request.body.length).toBe(1000);
    expect(concatChunks(ex!.response!.chunks).length).toBe(1000);
    expect(decoder.stats()).toMatchObject({ truncatedBodies: 2, bytesIn: steps[0]!.data.length + steps[1]!.data.length });
  });

  test("an unknown Content-Encoding keeps the raw body with decodeError", () => {
    const steps = [c2s(openaiRequest(), 1), s2c(jsonResponse("raw?", "Content-Encoding: compress\r\n"), 2)];
    const [ex] = exchangesOf(run(steps).outputs);
    expect(ex!.response).toMatchObject({ decodeError: "unsupported content-encoding: compress" });
    expect(text(concatChunks(ex!.response!.chunks))).toBe("raw?");
  });

  test("a stream cut mid-body: complete false, error says response truncated", () => {
    const steps = [c2s(openaiRequest(), 1), s2c(sseResponseHead, 2), s2c(chunk(sseEvents[0]!), 3), s2c(chunk(sseEvents[1]!).subarray(0, 30), 4)];
    const { outputs, closeOutputs, decoder } = runSplitInvariant(steps, { close: { ts: 5 } });
    expect(kinds(outputs)).toEqual(["request:0"]);
    const [ex] = exchangesOf(closeOutputs);
    expect(ex!.error).toStartWith("response truncated: connection closed inside the chunked body");
    expect(ex!.response).toMatchObject({ complete: false, endTs: 5, firstBodyTs: 3 });
    expect(text(concatChunks(ex!.response!.chunks))).toStartWith(sseEvents[0]!);
    expect(decoder.stats().errors).toBe(1);
  });

  test("a Content-Length body cut short says how much arrived; a given close error wins", () => {
    const steps = [c2s(openaiRequest(), 1), s2c("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"id\":", 2)];
    expect(exchangesOf(run(steps, { close: { ts: 3 } }).closeOutputs)[0]!.error).toBe(
      "response truncated: connection closed after 6 of 100 body bytes",
    );
    expect(exchangesOf(run(steps, { close: { ts: 3, error: "upstream reset" } }).closeOutputs)[0]!.error).toBe(
      "response truncated: upstream reset",
    );
  });

  test("connection closed before the response", () => {
    const { outputs, closeOutputs } = runSplitInvariant([c2s(openaiRequest(), 1)], { close: { ts: 2 } });
    expect(kinds([...outputs, ...closeOutputs])).toEqual(["request:0", "exchange:0"]);
    expect(exchangesOf(closeOutputs)[0]!.error).toBe("connection closed before response");
    expect(exchangesOf(closeOutputs)[0]!.response).toBeUndefined();
    const withError = run([c2s(openaiRequest(), 1)], { close: { ts: 2, error: "upstream connect failed" } });
    expect(exchangesOf(withError.closeOutputs)[0]!.error).toBe("upstream connect failed");
  });

  test("a request cut mid-body is reported once, at close", () => {
    const full = bytes(openaiRequest());
    const { outputs, closeOutputs } = run([c2s(full.subarray(0, full.length - 5), 1)], { close: { ts: 2 } });
    expect(outputs).toEqual([]);
    expect(exchangesOf(closeOutputs)[0]!.error).toStartWith("request truncated: connection closed after");
  });

  test("garbage (a TLS ClientHello on the plaintext tap) gives one protocol-error, then silence", () => {
    const decoder = new HttpConnectionDecoder("c");
    const hello = new Uint8Array([0x16, 0x03, 0x01, 0x00, 0xf8, 0x01, 0x00, 0x00, 0xf4, 0x03, 0x03]);
    const out = decoder.push("c2s", hello, 1);
    expect(out).toEqual([{ kind: "protocol-error", dir: "c2s", message: expect.stringContaining("not HTTP/1.x") }]);
    expect(decoder.push("c2s", bytes(openaiRequest()), 2)).toEqual([]);
    expect(decoder.push("s2c", bytes(jsonResponse("{}")), 3)).toEqual([]);
    expect(decoder.close(4)).toEqual([]);
    expect(decoder.stats()).toMatchObject({ errors: 1, exchanges: 0 });
  });

  test("a protocol error on the response side ends pending exchanges with that error", () => {
    const { outputs } = run([c2s(openaiRequest(), 1), s2c("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header\r\n\r\nok", 2)]);
    expect(kinds(outputs)).toEqual(["request:0", "protocol-error:s2c", "exchange:0"]);
    expect(exchangesOf(outputs)[0]!.error).toStartWith("protocol error (s2c): malformed header line");
  });

  test("a head larger than maxHeaderBytes is a protocol error", () => {
    const huge = `GET / HTTP/1.1\r\nHost: a\r\nCookie: ${"c".repeat(5000)}\r\n\r\n`;
    const { outputs } = run([c2s(huge, 1)], { decoder: { maxHeaderBytes: 4096 } });
    expect(outputs).toEqual([{ kind: "protocol-error", dir: "c2s", message: "message head larger than 4096 bytes" }]);
  });

  test("a response without a request is a protocol error", () => {
    const { outputs } = run([s2c("HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n", 1)]);
    expect(kinds(outputs)).toEqual(["protocol-error:s2c"]);
  });

  test("101 Switching Protocols: an upgrade output, then the WebSocket frames (see decode-connection-websocket.test.ts)", () => {
    const steps = [
      c2s("GET /v1/realtime?model=gpt-4o-realtime HTTP/1.1\r\nHost: api.openai.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 1),
      s2c("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 2),
      c2s(new Uint8Array([0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0]), 3),
    ];
    const { outputs, closeOutputs } = runSplitInvariant(steps, { close: { ts: 4 } });
    expect(kinds(outputs)).toEqual(["request:0", "upgrade:0", "websocket:0"]);
    const up = outputs[1]!;
    expect(up.kind === "upgrade" && up.protocol).toBe("websocket");
    expect(up.kind === "upgrade" && up.exchange.request.path).toBe("/v1/realtime?model=gpt-4o-realtime");
    expect(closeOutputs).toEqual([]);
  });

  test("CONNECT answered 200 becomes a tunnel; an Upgrade request answered 200 goes on as HTTP/1.1", () => {
    const tunnel = run([c2s("CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n", 1), s2c("HTTP/1.1 200 Connection established\r\n\r\n", 2)]);
    expect(tunnel.outputs.map((o) => o.kind)).toEqual(["request", "upgrade"]);
    expect(tunnel.outputs[1]).toMatchObject({ protocol: "connect", exchange: { request: { host: "api.openai.com", path: "api.openai.com:443" } } });

    const steps = [
      c2s("GET /h2c HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n", 1),
      c2s("GET /next HTTP/1.1\r\nHost: a\r\n\r\n", 2),
      s2c(jsonResponse("{}"), 3),
      s2c(jsonResponse("[]"), 4),
    ];
    const { outputs } = runSplitInvariant(steps);
    // Requests resume as soon as the first response's head shows no switch.
    expect(kinds(outputs)).toEqual(["request:0", "request:1", "exchange:0", "exchange:1"]);
    expect(exchangesOf(outputs)[1]!.request.path).toBe("/next");
  });

  test("absolute-form target (plain HTTP proxying): path and host come from the URL", () => {
    const { outputs } = run([c2s("GET http://Example.COM:80/v1/models?limit=2 HTTP/1.1\r\nHost: other\r\n\r\n", 1)]);
    expect(outputs[0]).toMatchObject({ exchange: { request: { path: "/v1/models?limit=2", host: "example.com" } } });
  });

  test("Connection: close on a response ends the exchange stream; a request after it never gets an answer", () => {
    const steps = [
      c2s(openaiRequest('{"n":1}'), 1),
      s2c(jsonResponse("{}", "Connection: close\r\n"), 2),
      c2s(openaiRequest('{"n":2}'), 3),
      s2c("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno", 4),
    ];
    const { outputs, closeOutputs } = run(steps, { close: { ts: 5 } });
    expect(kinds(outputs)).toEqual(["request:0", "exchange:0", "request:1"]);
    expect(exchangesOf(closeOutputs)[0]).toMatchObject({ seq: 1, error: "connection closed before response" });
  });

  test("too many requests without responses gives up on the connection", () => {
    const many = Array.from({ length: 5 }, () => "GET / HTTP/1.1\r\nHost: a\r\n\r\n").join("");
    const { outputs } = run([c2s(many, 1)], { decoder: { maxPendingExchanges: 3 } });
    expect(kinds(outputs)).toEqual(["request:0", "request:1", "request:2", "protocol-error:c2s", "exchange:0", "exchange:1", "exchange:2"]);
  });

  test("body bytes are kept when the tap hands Buffers and reuses them (a Buffer's slice() is a view)", () => {
    const decoder = new HttpConnectionDecoder("buffers");
    const outputs: ReturnType<HttpConnectionDecoder["push"]> = [];
    // One scratch Buffer per direction, overwritten by each read, as a tap reading into its own memory would.
    const feed = (dir: "c2s" | "s2c", data: Uint8Array, ts: number) => {
      const scratch = Buffer.alloc(data.length);
      scratch.set(data);
      outputs.push(...decoder.push(dir, scratch, ts));
      scratch.fill(0x78);
    };
    const body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}';
    feed("c2s", bytes(`POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Length: ${body.length}\r\n\r\n${body}`), 1);
    feed("s2c", bytes(sseResponseHead), 2);
    sseEvents.forEach((e, i) => feed("s2c", bytes(chunk(e)), 3 + i));
    feed("s2c", bytes(lastChunk), 100);
    const ex = exchangesOf(outputs)[0]!;
    expect(text(ex.request.body)).toBe(body);
    expect(text(concatChunks(ex.response!.chunks))).toBe(sseEvents.join(""));
  });

  test("property: any bytes in either direction give at most one protocol-error and no decoder bug", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 64 })), { maxLength: 20 }), (pushes) => {
        const decoder = new HttpConnectionDecoder("fuzz", { maxHeaderBytes: 256, maxBodyBytes: 128 });
        const outputs = pushes.flatMap(([up, data], i) => decoder.push(up ? "c2s" : "s2c", data, i));
        outputs.push(...decoder.close(99));
        const errors = outputs.flatMap((o) => (o.kind === "protocol-error" ? [o.message] : []));
        expect(errors.length).toBeLessThanOrEqual(1);
        // push() turns its own exceptions into this message: none may happen.
        expect(errors.filter((m) => m.startsWith("internal decoder error"))).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  test("property: HTTP-looking mutations of a real conversation never hit a decoder bug", () => {
    const wire = bytes(openaiRequest(), sseResponseHead, ...sseEvents.map((e) => chunk(e)), lastChunk);
    const requestLength = bytes(openaiRequest()).length;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(wire.length - 1), fc.constantFrom(0x0d, 0x0a, 0x20, 0x3a, 0x30, 0x41, 0x00)), { maxLength: 4 }), (edits) => {
        const mutated = wire.slice();
        for (const [at, byte] of edits) mutated[at] = byte;
        const decoder = new HttpConnectionDecoder("fuzz");
        const outputs = [
          ...decoder.push("c2s", mutated.subarray(0, requestLength), 1),
          ...decoder.push("s2c", mutated.subarray(requestLength), 2),
          ...decoder.close(3),
        ];
        const internal = outputs.filter((o) => o.kind === "protocol-error" && o.message.startsWith("internal decoder error"));
        expect(internal).toEqual([]);
        // Whatever happened, the request that was seen is accounted for exactly once.
        expect(outputs.filter((o) => o.kind === "exchange").length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 300 },
    );
  });

  test("property: any set of split points gives the same exchange", () => {
    const steps = [c2s(openaiRequest(), 1), s2c(bytes(sseResponseHead, ...sseEvents.map((e) => chunk(e)), lastChunk), 2)];
    const expected = run(steps).outputs;
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 12 }), (cuts) => {
        const got = run(steps, {
          cut: (step) => {
            const points = [...new Set(cuts.map((c) => c % step.data.length))].sort((a, b) => a - b);
            const pieces: Uint8Array[] = [];
            let prev = 0;
            for (const p of [...points, step.data.length]) {
              pieces.push(step.data.subarray(prev, p));
              prev = p;
            }
            return pieces;
          },
        }).outputs;
        expect(got).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });
});
