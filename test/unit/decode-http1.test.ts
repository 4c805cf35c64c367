import { describe, expect, test } from "bun:test";
import { Http1Parser, type Http1Item, type Http1ParserOptions, type Role } from "../../src/decode/http1.ts";
import { bytes, chunk, lastChunk, openaiRequest, text } from "./decode-fixtures.ts";

/** Items with body views copied out, so results of different runs can be compared. */
function parse(role: Role, pieces: Uint8Array[], opts?: Http1ParserOptions, finish = false): Http1Item[] {
  const parser = new Http1Parser(role, opts);
  const items: Http1Item[] = [];
  for (const p of pieces) items.push(...parser.push(p, 1));
  if (finish) items.push(...parser.finish(2));
  return items.map((i) => (i.type === "body" ? { ...i, data: i.data.slice() } : i));
}

/** Body pieces merged, so different splits give comparable item lists. */
function normalized(items: Http1Item[]): unknown[] {
  const out: unknown[] = [];
  for (const item of items) {
    const last = out[out.length - 1] as { type: string; data: Uint8Array } | undefined;
    if (item.type === "body" && last?.type === "body") last.data = bytes(last.data, item.data);
    else out.push(item.type === "body" ? { type: "body", data: item.data } : item);
  }
  return out;
}

function expectSplitInvariant(role: Role, input: Uint8Array, opts?: Http1ParserOptions, finish = false): unknown[] {
  const expected = normalized(parse(role, [input], opts, finish));
  for (let at = 1; at < input.length; at++) {
    const got = normalized(parse(role, [input.subarray(0, at), input.subarray(at)], opts, finish));
    if (!Bun.deepEquals(got, expected)) expect({ at, got }).toEqual({ at, got: expected });
  }
  expect(normalized(parse(role, Array.from(input, (_, i) => input.subarray(i, i + 1)), opts, finish))).toEqual(expected);
  return expected;
}

const types = (items: unknown[]) => items.map((i) => (i as { type: string }).type);

describe("Http1Parser: requests", () => {
  test("an OpenAI SDK request: head, content-length body, end", () => {
    const items = expectSplitInvariant("request", bytes(openaiRequest('{"model":"gpt-4o"}')));
    expect(types(items)).toEqual(["head", "body", "end"]);
    const head = items[0] as Extract<Http1Item, { type: "head" }>;
    expect(head.head).toMatchObject({ role: "request", method: "POST", target: "/v1/chat/completions", version: "HTTP/1.1" });
    expect(head.head.headers).toContainEqual(["content-type", "application/json"]);
    expect(head.framing).toEqual({ kind: "length", length: 18 });
    expect(head.keepAlive).toBe(true);
    expect(text((items[1] as { data: Uint8Array }).data)).toBe('{"model":"gpt-4o"}');
  });

  test("chunked upload with extensions and trailers", () => {
    const input = bytes(
      "POST /v1/files HTTP/1.1\r\nHost: api.openai.com\r\nTransfer-Encoding: chunked\r\n\r\n",
      "5;name=value;flag\r\nhello\r\n",
      "7 ; x=\"q\"\r\n, world\r\n",
      "0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n",
    );
    const items = expectSplitInvariant("request", input);
    expect(types(items)).toEqual(["head", "body", "end"]);
    expect(text((items[1] as { data: Uint8Array }).data)).toBe("hello, world");
    expect(items[2]).toMatchObject({ trailers: [["X-Checksum", "abc"], ["X-Other", "1"]] });
  });

  test("pipelined GETs without bodies, bare-LF lines and leading empty lines tolerated", () => {
    const input = bytes("\r\nGET /v1/models HTTP/1.1\nHost: a\n\nGET /v1/models/gpt-4o HTTP/1.1\r\nHost: a\r\n\r\n");
    const items = expectSplitInvariant("request", input);
    expect(types(items)).toEqual(["head", "end", "head", "end"]);
    expect(items[2]).toMatchObject({ head: { target: "/v1/models/gpt-4o" } });
  });

  test("Connection: close ends parsing; later bytes are only counted", () => {
    const parser = new Http1Parser("request");
    const items = parser.push(bytes("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /again HTTP/1.1\r\n\r\n"), 1);
    expect(types(items)).toEqual(["head", "end"]);
    expect(parser.ignoredBytes).toBe("GET /again HTTP/1.1\r\n\r\n".length);
    expect(parser.stopped).toBe(true);
  });

  test("HTTP/1.0 without keep-alive is one message only", () => {
    const items = parse("request", [bytes("GET / HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n")]);
    expect(types(items)).toEqual(["head", "end"]);
    expect(items[0]).toMatchObject({ keepAlive: false });
  });

  test("after CONNECT or an Upgrade request the parser waits; resume() replays what arrived meanwhile", () => {
    const parser = new Http1Parser("request");
    const first = parser.push(bytes("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nGET /next HTTP/1.1\r\n\r\n"), 1);
    expect(types(first)).toEqual(["head", "end"]);
    expect(parser.paused).toBe(true);
    const resumed = parser.resume();
    expect(types(resumed)).toEqual(["head", "end"]);
    expect(resumed[0]).toMatchObject({ head: { target: "/next" } });
  });

  test("header values that are valid UTF-8 are decoded, others kept as latin1", () => {
    const input = bytes("GET / HTTP/1.1\r\nX-Name: caf", new Uint8Array([0xc3, 0xa9]), "\r\nX-Old: caf", new Uint8Array([0xe9]), "\r\n\r\n");
    const [head] = parse("request", [input]);
    expect(head).toMatchObject({ head: { headers: [["X-Name", "café"], ["X-Old", "café"]] } });
  });

  const rejects: Array<[string, string | Uint8Array, string, Http1ParserOptions?]> = [
    ["a TLS ClientHello", new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), "not HTTP/1.x"],
    ["an HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/2 connection preface"],
    ["obs-fold", "GET / HTTP/1.1\r\nX-A: one\r\n  two\r\n\r\n", "obsolete line folding"],
    ["a space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "malformed header line"],
    ["conflicting Content-Length", "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "invalid Content-Length"],
    ["a non-numeric Content-Length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"],
    ["Transfer-Encoding without chunked last", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "does not end with chunked"],
    ["a bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"],
    ["a chunk-size line over 4 KiB in one push", `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;${"x".repeat(5000)}\r\nhello\r\n0\r\n\r\n`, "chunk size line too long"],
    ["a missing CRLF after chunk data", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX", "missing CRLF"],
    ["a stray CR after chunk data", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\r\n", "missing CRLF"],
    ["an unknown version", "GET / HTTP/3.0\r\n\r\n", "unsupported HTTP version"],
    ["a head over the limit", `GET / HTTP/1.1\r\nX-Big: ${"a".repeat(2000)}\r\n\r\n`, "larger than 1024 bytes", { maxHeaderBytes: 1024 }],
    ["too many fields", `GET / HTTP/1.1\r\n${"X-A: 1\r\n".repeat(11)}\r\n`, "more than 10 header fields", { maxHeaderCount: 10 }],
  ];
  for (const [what, input, message, opts] of rejects) {
    test(`rejects ${what} with an error item, then ignores the rest`, () => {
      const parser = new Http1Parser("request", opts);
      const items = parser.push(bytes(input), 1);
      const error = items.find((i) => i.type === "error");
      expect(error).toMatchObject({ type: "error" });
      expect((error as { message: string }).message).toContain(message);
      expect(parser.push(bytes("GET / HTTP/1.1\r\n\r\n"), 2)).toEqual([]);
    });
  }

  // Whole heads in one push are read in place (src/decode/http1.ts headEnd): the same checks and messages.
  const wholeHeads: Array<[string, "request" | "response", string, string]> = [
    ["a control byte in a header", "request", "GET / HTTP/1.1\r\nX-A: b\x01c\r\n\r\n", "not HTTP/1.x: binary byte 0x01 in message head"],
    ["a control byte before a bad method", "request", "G{T / HTTP/1.1\r\nX-A: \x7f\r\n\r\n", "not HTTP/1.x: binary byte 0x7f in message head"],
    ["a method that is no token", "request", "G{T / HTTP/1.1\r\n\r\n", "not HTTP/1.x: request does not start with a method"],
    ["a method longer than 32", "request", `${"A".repeat(33)} / HTTP/1.1\r\n\r\n`, "not HTTP/1.x: request does not start with a method"],
    ["a response not starting with HTTP/", "response", "HTTP 200 OK\r\n\r\n", "not HTTP/1.x: response does not start with HTTP/"],
  ];
  for (const [what, role, input, message] of wholeHeads) {
    test(`a whole head in one push: ${what}`, () => {
      const error = new Http1Parser(role).push(bytes(input), 1).find((i) => i.type === "error");
      expect(error).toEqual({ type: "error", message: expect.stringContaining(message), ts: 1 });
    });
  }

  test("a head whose empty line is CR LF or a bare LF ends there; a lone CR is not an empty line", () => {
    const [a] = parse("request", [bytes("GET /a HTTP/1.1\nHost: h\n\nGET /b HTTP/1.1\r\n\r\n")]);
    expect(a).toMatchObject({ type: "head", head: { target: "/a", headers: [["Host", "h"]] } });
    const items = new Http1Parser("request").push(bytes("GET / HTTP/1.1\r\nX-A: 1\r\n\rX: 2\r\n\r\n"), 1);
    expect(items.find((i) => i.type === "error")).toMatchObject({ message: expect.stringContaining("malformed header line") });
  });

  test("garbage is rejected on its first bytes, without waiting for the head limit", () => {
    const parser = new Http1Parser("request");
    expect(parser.push(bytes("\x16\x03"), 1)).toMatchObject([{ type: "error" }]);
    const response = new Http1Parser("response");
    expect(response.push(bytes("SSH-2"), 1)).toMatchObject([{ type: "error" }]);
  });

  test("finish() in a body reports how much arrived", () => {
    const items = parse("request", [bytes("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")], {}, true);
    expect(items[items.length - 1]).toEqual({ type: "truncated", message: "connection closed after 3 of 10 body bytes", ts: 2 });
  });
});

describe("Http1Parser: responses", () => {
  const sse = bytes(
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    chunk("data: {\"x\":1}\n\n"),
    chunk("data: [DONE]\n\n"),
    lastChunk,
  );

  test("a chunked SSE response", () => {
    const items = expectSplitInvariant("response", sse);
    expect(types(items)).toEqual(["head", "body", "end"]);
    expect(text((items[1] as { data: Uint8Array }).data)).toBe('data: {"x":1}\n\ndata: [DONE]\n\n');
  });

  test("HEAD, 204 and 304 responses have no body even with Content-Length", () => {
    const methods = ["HEAD", "GET", "GET", "GET"];
    const input = bytes(
      "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    const items = expectSplitInvariant("response", input, { requestMethod: (i) => methods[i] });
    expect(types(items)).toEqual(["head", "end", "head", "end", "head", "end", "head", "body", "end"]);
  });

  test("100 Continue and 103 Early Hints come as informational items before the final response", () => {
    const input = bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    const items = expectSplitInvariant("response", input);
    expect(types(items)).toEqual(["informational", "informational", "head", "end"]);
  });

  test("no framing means close-delimited: the body ends at finish()", () => {
    const items = expectSplitInvariant("response", bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"), {}, true);
    expect(types(items)).toEqual(["head", "body", "end"]);
    expect(items[0]).toMatchObject({ framing: { kind: "close" } });
  });

  test("Transfer-Encoding other than chunked last is close-delimited and its coding is decoded later", () => {
    const [head] = parse("response", [bytes("HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nTransfer-Encoding: gzip\r\n\r\n")]);
    expect(head).toMatchObject({ framing: { kind: "close" }, codings: ["br", "gzip"] });
  });

  test("101 Switching Protocols and CONNECT 2xx stop parsing with an upgrade item", () => {
    const upgraded = new Http1Parser("response");
    const items = upgraded.push(bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", new Uint8Array([0x81, 0x05]), "hello"), 1);
    expect(items).toMatchObject([{ type: "upgrade", protocol: "websocket", head: { status: 101 } }]);
    // The bytes after the head in the same push belong to the new protocol: kept once, not parsed.
    expect(upgraded.takeSwitched().map((p) => Buffer.from(p.data).toString("latin1"))).toEqual(["\x81\x05hello"]);
    expect(upgraded.ignoredBytes).toBe(0);
    upgraded.push(bytes("later"), 2);
    expect(upgraded.takeSwitched()).toEqual([]);
    expect(upgraded.ignoredBytes).toBe(5);

    const tunnel = new Http1Parser("response", { requestMethod: () => "CONNECT" });
    expect(tunnel.push(bytes("HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x01"), 1)).toMatchObject([
      { type: "upgrade", protocol: "connect" },
    ]);
  });

  test("a status line without a reason phrase is accepted", () => {
    const [head] = parse("response", [bytes("HTTP/1.1 429\r\nContent-Length: 0\r\n\r\n")]);
    expect(head).toMatchObject({ head: { status: 429, reason: "" } });
  });

  test("a chunked body cut by the connection is reported truncated", () => {
    const cut = sse.subarray(0, sse.length - 20);
    const items = parse("response", [cut], {}, true);
    expect(items[items.length - 1]).toMatchObject({ type: "truncated", message: expect.stringContaining("chunked body") });
  });
});
