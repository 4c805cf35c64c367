// Which first requests the proxy may replay on a fresh upstream leg once their bytes reached a leg the upstream
// closed without answering (src/mitm/first-exchange.ts): one complete bodiless request of an idempotent method.
import { expect, test } from "bun:test";
import { isReplayableRequest } from "../../src/mitm/first-exchange.ts";

const req = (s: string) => Buffer.from(s, "latin1");

test("a complete bodiless GET, HEAD, OPTIONS, TRACE or DELETE is replayable", () => {
  for (const m of ["GET", "HEAD", "OPTIONS", "TRACE", "DELETE"]) expect(isReplayableRequest(req(`${m} /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n`))).toBe(true);
  expect(isReplayableRequest(req("DELETE /v1/files/f HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"))).toBe(true);
});

test("a POST, PATCH or PUT never is, nor a request with a body, an unfinished head or a second request behind it", () => {
  expect(isReplayableRequest(req("POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"))).toBe(false);
  expect(isReplayableRequest(req("POST /v1/x HTTP/1.1\r\nHost: a\r\n\r\n"))).toBe(false);
  expect(isReplayableRequest(req("PATCH /v1/x HTTP/1.1\r\nHost: a\r\n\r\n"))).toBe(false);
  expect(isReplayableRequest(req("PUT /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx"))).toBe(false);
  expect(isReplayableRequest(req("DELETE /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"))).toBe(false);
  expect(isReplayableRequest(req("GET /v1/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"))).toBe(false);
  expect(isReplayableRequest(req("GET /v1/x HTTP/1.1\r\nHost: a\r\n"))).toBe(false);
  expect(isReplayableRequest(req("GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"))).toBe(false);
  expect(isReplayableRequest(req("get /v1/x HTTP/1.1\r\nHost: a\r\n\r\n"))).toBe(false);
  expect(isReplayableRequest(req("GET /v1/x HTTP/1.0\r\nHost: a\r\n\r\n"))).toBe(false);
});
