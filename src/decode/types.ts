// What the sans-IO HTTP decoders hand to the provider parsers.
import { sameNameLower } from "../wire/http1.ts";

export type HeaderList = Array<[name: string, value: string]>;

export interface TimedChunk {
  ts: number;
  data: Uint8Array;
}

export interface HttpRequestRecord {
  method: string;
  /** Origin-form path with query, e.g. "/v1/chat/completions?x=1". */
  path: string;
  /** Host header (or :authority), without default port. */
  host: string;
  httpVersion: string;
  headers: HeaderList;
  /** Body after transfer- and content-decoding, capped at the body limit. */
  body: Uint8Array;
  bodyTruncated: boolean;
  /** Content-Encoding that could not be decoded, if any (body then holds the raw bytes). */
  decodeError?: string;
  startTs: number;
  endTs: number;
}

export interface HttpResponseRecord {
  status: number;
  reason: string;
  headers: HeaderList;
  /** Decoded body chunks with their arrival time, capped at the body limit. */
  chunks: TimedChunk[];
  bodyTruncated: boolean;
  decodeError?: string;
  /** Arrival of the first byte of the status line. */
  startTs: number;
  /** Arrival of the first body byte, if any. */
  firstBodyTs?: number;
  endTs: number;
  /** False when the connection ended before the body was complete. */
  complete: boolean;
}

/** One request/response pair on a connection, in order. Never paired by PID. */
export interface HttpExchange {
  connId: string;
  /** 0-based index of this exchange on its connection (or HTTP/2 stream id later). */
  seq: number;
  request: HttpRequestRecord;
  response?: HttpResponseRecord;
  /** Set when the exchange ended abnormally: "connection closed before response", parse errors... */
  error?: string;
}

/** An exchange without the optional fields that are absent (they stay out of the object, not undefined). */
export function httpExchange(connId: string, seq: number, request: HttpRequestRecord, response?: HttpResponseRecord, error?: string): HttpExchange {
  const exchange: HttpExchange = { connId, seq, request };
  if (response) exchange.response = response;
  if (error !== undefined) exchange.error = error;
  return exchange;
}

/** First value of header `name` (ASCII, any case): names of another length are skipped without lowercasing. */
export function headerValue(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (let i = 0; i < headers.length; i++) {
    const field = headers[i]!;
    if (field[0].length === lower.length && sameNameLower(field[0], lower)) return field[1];
  }
  return undefined;
}

/**
 * A copy of bytes[start, end) in memory of its own. Not `bytes.slice()`: a Buffer's slice() is a view (in Bun
 * as in Node), and a tap may hand Buffers it reuses; a plain Uint8Array's copy costs the same either way.
 */
export function copyBytes(bytes: Uint8Array, start?: number, end?: number): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes, start, end);
}

/** One array of all `pieces`: the piece itself when there is only one (no copy). */
export function concatBytes(pieces: Uint8Array[]): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  let size = 0;
  for (const p of pieces) size += p.length;
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of pieces) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function concatChunks(chunks: TimedChunk[]): Uint8Array {
  let size = 0;
  for (const c of chunks) size += c.data.length;
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c.data, off);
    off += c.data.length;
  }
  return out;
}
