// Shared by the Gemini / Bedrock / Cohere / Ollama parser tests: wire bytes of one exchange go
// through the real HTTP/1.1 connection decoder (whole, then split at every position of every
// response piece, then byte by byte) and the parse of the result must not depend on the cuts.
import { expect } from "bun:test";
import { HttpConnectionDecoder } from "../../src/decode/connection.ts";
import type { ParsedAiRequest, ParsedAiResponse } from "../../src/decode/providers/types.ts";
import type { HttpExchange, HttpRequestRecord, HttpResponseRecord } from "../../src/decode/types.ts";
import type { EndpointMatch } from "../../src/spec/types.ts";

const enc = new TextEncoder();
export const bytes = (s: string | Uint8Array) => (typeof s === "string" ? enc.encode(s) : s);

export function cat(...parts: Array<string | Uint8Array>): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts.map(bytes)));
}

/** An HTTP/1.1 request with a Content-Length body. */
export function httpRequest(method: string, path: string, host: string, headers: Record<string, string>, body?: string | Uint8Array): Uint8Array {
  const b = body === undefined ? new Uint8Array(0) : bytes(body);
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (body !== undefined) lines.push(`Content-Length: ${b.length}`);
  return cat(lines.join("\r\n") + "\r\n\r\n", b);
}

/** Response head + body pieces: with Content-Length when whole, chunked when streamed (one chunk per piece). */
export function httpResponse(status: number, headers: Record<string, string>, pieces: Array<string | Uint8Array>, chunked = pieces.length > 1): Uint8Array[] {
  const reason = status === 200 ? "OK" : status === 400 ? "Bad Request" : status === 404 ? "Not Found" : status === 429 ? "Too Many Requests" : "Status";
  const all = pieces.map(bytes);
  const head = [`HTTP/1.1 ${status} ${reason}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (!chunked) {
    const body = cat(...all);
    head.push(`Content-Length: ${body.length}`);
    return [cat(head.join("\r\n") + "\r\n\r\n", body)];
  }
  head.push("Transfer-Encoding: chunked");
  const out = [bytes(head.join("\r\n") + "\r\n\r\n")];
  for (const p of all) out.push(cat(`${p.length.toString(16)}\r\n`, p, "\r\n"));
  out.push(bytes("0\r\n\r\n"));
  return out;
}

/** Feeds the request then each response piece (timestamps 1, 10, 20, ...) and returns the exchange. */
export function exchangeOf(request: Uint8Array, response: Uint8Array[], cut?: (piece: Uint8Array, index: number) => Uint8Array[]): HttpExchange {
  const dec = new HttpConnectionDecoder("wire");
  const outs = [...dec.push("c2s", request, 1)];
  response.forEach((piece, i) => {
    for (const part of cut ? cut(piece, i) : [piece]) outs.push(...dec.push("s2c", part, 10 * (i + 1)));
  });
  outs.push(...dec.close(1000));
  const ex = outs.find((o) => o.kind === "exchange");
  if (!ex || ex.kind !== "exchange") throw new Error(`no exchange: ${JSON.stringify(outs.map((o) => o.kind))}`);
  return ex.exchange;
}

/**
 * Parses the exchange whole, with each response piece split once at every position, and byte by
 * byte; every parse must equal the whole one. Returns it.
 */
export function parseSplitInvariant<T>(request: Uint8Array, response: Uint8Array[], parse: (ex: HttpExchange) => T): T {
  const whole = parse(exchangeOf(request, response));
  response.forEach((piece, index) => {
    for (let at = 1; at < piece.length; at++) {
      const parsed = parse(exchangeOf(request, response, (p, i) => (i === index ? [p.subarray(0, at), p.subarray(at)] : [p])));
      expect(parsed).toEqual(whole);
    }
  });
  const bytewise = parse(exchangeOf(request, response, (p) => Array.from(p, (b) => Uint8Array.of(b))));
  expect(bytewise).toEqual(whole);
  return whole;
}

/** One provider's split-invariant parse: its request parser (which must accept the request), then its response parser. */
export function providerParse(
  parseRequest: (req: HttpRequestRecord, match: EndpointMatch) => ParsedAiRequest | undefined,
  parseResponse: (req: ParsedAiRequest, res: HttpResponseRecord) => ParsedAiResponse,
  match: EndpointMatch,
): (request: Uint8Array, response: Uint8Array[]) => { req: ParsedAiRequest; res: ParsedAiResponse } {
  return (request, response) =>
    parseSplitInvariant(request, response, (ex) => {
      const req = parseRequest(ex.request, match);
      if (!req) throw new Error("not parsed");
      return { req, res: parseResponse(req, ex.response!) };
    });
}
