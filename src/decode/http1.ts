// Sans-IO HTTP/1.1 message parser for ONE direction of a connection (RFC 9112).
// Push bytes with their arrival time, get items: head, body pieces, end, and the special
// outcomes (informational 1xx, upgrade, error, truncated). Pipelined messages are parsed one after
// another. Every buffer is bounded: a head or trailer section larger than maxHeaderBytes, or more
// than maxHeaderCount fields, is an error item, never an exception.
// The framing rules themselves (request line, fields, body framing, chunk sizes, protocol switches) are
// src/wire/http1.ts, shared with the proxy's request framer so both split the same bytes the same way.
import { parseCodings } from "./encodings.ts";
import { copyBytes, type HeaderList } from "./types.ts";
import {
  chunkSize,
  chunkSizeIn,
  contentLength,
  firstBinaryByte,
  firstBinaryChar,
  headerList,
  headLines,
  Http1FramingError,
  latin1,
  MAX_CHUNK_LINE_BYTES,
  MAX_METHOD_LENGTH,
  parseFields,
  parseHeadText,
  parseRequestLine,
  requestBodyFraming,
  sameNameLower,
  switchesProtocol,
  TOKEN,
  transferCodings,
} from "../wire/http1.ts";

export type Role = "request" | "response";

export interface RequestHead {
  role: "request";
  method: string;
  /** Request target exactly as sent: origin-form, absolute-form, authority-form (CONNECT) or "*". */
  target: string;
  version: string;
  headers: HeaderList;
}

export interface ResponseHead {
  role: "response";
  status: number;
  reason: string;
  version: string;
  headers: HeaderList;
}

export type MessageHead = RequestHead | ResponseHead;

export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  /** Response body delimited by the connection closing. */
  | { kind: "close" };

export type Http1Item =
  | {
      type: "head";
      head: MessageHead;
      /** Arrival of the first byte of the start line. */
      startTs: number;
      ts: number;
      framing: BodyFraming;
      /** Content codings then transfer codings other than chunked, in the order they were applied. */
      codings: string[];
      /** False when no further message follows on this direction (Connection: close, HTTP/1.0). */
      keepAlive: boolean;
    }
  /** An interim 1xx response (100 Continue, 103 Early Hints): the final response follows. */
  | { type: "informational"; head: ResponseHead; startTs: number; ts: number }
  /**
   * Body bytes after transfer framing, before content decoding. When `owned` (a message without content codings,
   * whose bytes are kept as they are) `data` is a copy of its own, else a view valid only during the call.
   */
  | { type: "body"; data: Uint8Array; ts: number; owned: boolean }
  | { type: "end"; ts: number; trailers: HeaderList }
  /** 101 Switching Protocols or a 2xx answer to CONNECT: later bytes are not HTTP/1.1; parsing stopped. */
  | { type: "upgrade"; head: ResponseHead; protocol: string; startTs: number; ts: number }
  /** Not parseable as HTTP/1.1: parsing stopped for good. */
  | { type: "error"; message: string; ts: number }
  /** finish() came in the middle of a message. */
  | { type: "truncated"; message: string; ts: number };

export interface Http1ParserOptions {
  maxHeaderBytes?: number;
  maxHeaderCount?: number;
  /**
   * Response parsers only: the method of the request answered by the n-th final response
   * (0-based). HEAD and CONNECT change how a response is framed. Unknown → framed as for GET.
   */
  requestMethod?: (responseIndex: number) => string | undefined;
}

const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
const DEFAULT_MAX_HEADER_COUNT = 256;
/** Copies up to this size are done byte by byte (see SectionBuffer.append). */
const SMALL_COPY_BYTES = 128;
const CR = 0x0d;
const LF = 0x0a;
const HTTP_PREFIX = [0x48, 0x54, 0x54, 0x50, 0x2f]; // "HTTP/"

type State =
  | "head"
  | "length"
  | "chunk-size"
  | "chunk-data"
  | "chunk-data-end"
  | "trailers"
  | "close-delimited"
  /** Request parser after CONNECT or an Upgrade request: wait to learn whether the protocol switched. */
  | "paused"
  /** Nothing more to parse on this direction (Connection: close, upgrade, stop()). */
  | "done"
  | "failed";

/** Accumulates a bounded section of lines (a head, trailers, a chunk-size line) across pushes. */
class SectionBuffer {
  private buf = new Uint8Array(512);
  length = 0;
  private lineStart = 0;

  constructor(private readonly limit: number) {}

  reset(): void {
    this.length = 0;
    this.lineStart = 0;
    if (this.buf.length > 64 * 1024) this.buf = new Uint8Array(512);
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  /**
   * Takes bytes from input[from..] until the section ends (an empty line, or the first line
   * break when `singleLine`). Returns how many bytes were used and whether the section is complete,
   * or "overflow" when the section would exceed the limit.
   */
  take(input: Uint8Array, from: number, singleLine: boolean): { used: number; complete: boolean } | "overflow" {
    let pos = from;
    while (pos < input.length) {
      const nl = input.indexOf(LF, pos);
      const end = nl === -1 ? input.length : nl + 1;
      if (!this.append(input, pos, end)) return "overflow";
      pos = end;
      if (nl === -1) break;
      const lineLength = this.length - 1 - this.lineStart;
      const empty = lineLength === 0 || (lineLength === 1 && this.buf[this.lineStart] === CR);
      this.lineStart = this.length;
      if (singleLine || empty) return { used: pos - from, complete: true };
    }
    return { used: pos - from, complete: false };
  }

  private append(input: Uint8Array, start: number, end: number): boolean {
    const n = end - start;
    if (this.length + n > this.limit) return false;
    if (this.length + n > this.buf.length) {
      const grown = new Uint8Array(Math.min(this.limit, Math.max(this.buf.length * 2, this.length + n)));
      grown.set(this.buf.subarray(0, this.length));
      this.buf = grown;
    }
    if (n <= SMALL_COPY_BYTES) {
      // A header or chunk-size line: a plain loop beats allocating a subarray view to copy from.
      const buf = this.buf;
      let at = this.length;
      for (let i = start; i < end; i++) buf[at++] = input[i]!;
    } else {
      this.buf.set(input.subarray(start, end), this.length);
    }
    this.length += n;
    return true;
  }
}

/** Thrown inside the parser; push() turns it (and the shared rules' Http1FramingError) into an error item. */
class ParseError extends Http1FramingError {}

export class Http1Parser {
  private state: State = "head";
  private readonly maxHeaderBytes: number;
  private readonly maxHeaderCount: number;
  private readonly section: SectionBuffer;
  private readonly chunkLine = new SectionBuffer(MAX_CHUNK_LINE_BYTES);
  private headStartTs = 0;
  private remaining = 0;
  private bodyBytes = 0;
  /** The current message has no content codings: its body pieces are copied here, once (see emitBody). */
  private copyBody = false;
  private keepAlive = true;
  private currentHead?: MessageHead;
  /** The current head's framingFields: all that the framing rules below read of it. */
  private currentFraming: HeaderList = [];
  private finalResponses = 0;
  private pausedData: Array<{ data: Uint8Array; ts: number }> = [];
  private pausedBytes = 0;
  private pausedOverflow = false;
  private _ignoredBytes = 0;
  /** Set by an upgrade: the rest of that push is kept for takeSwitched() instead of ignored. */
  private keepSwitched = false;
  private switchedData: Array<{ data: Uint8Array; ts: number }> = [];

  constructor(
    readonly role: Role,
    private readonly opts: Http1ParserOptions = {},
  ) {
    this.maxHeaderBytes = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    this.maxHeaderCount = opts.maxHeaderCount ?? DEFAULT_MAX_HEADER_COUNT;
    this.section = new SectionBuffer(this.maxHeaderBytes);
  }

  /** Bytes received after parsing stopped (after Connection: close, an upgrade, or an error). */
  get ignoredBytes(): number {
    return this._ignoredBytes;
  }

  /** True while waiting for resume()/stop() after a CONNECT or Upgrade request. */
  get paused(): boolean {
    return this.state === "paused";
  }

  /** True once nothing more will be parsed (done, upgraded or failed). */
  get stopped(): boolean {
    return this.state === "done" || this.state === "failed";
  }

  push(input: Uint8Array, ts: number): Http1Item[] {
    return this.pushInto(input, ts, []);
  }

  /** push() into the caller's array (appended to), which it returns: a caller may reuse one array for every read. */
  pushInto(input: Uint8Array, ts: number, items: Http1Item[]): Http1Item[] {
    // Only the push that carried the upgrade keeps its tail; later bytes are ignored (bounded).
    if (this.state === "done") this.keepSwitched = false;
    try {
      this.parse(input, ts, items);
    } catch (err) {
      if (!(err instanceof Http1FramingError)) throw err;
      this.state = "failed";
      items.push({ type: "error", message: err.message, ts });
    }
    return items;
  }

  /** The peer closed this direction. Ends a close-delimited body, reports a cut message. */
  finish(ts: number): Http1Item[] {
    const items: Http1Item[] = [];
    switch (this.state) {
      case "close-delimited":
        items.push({ type: "end", ts, trailers: [] });
        break;
      case "head":
        if (this.section.length > 0) items.push({ type: "truncated", message: "connection closed inside the message head", ts });
        break;
      case "length":
        items.push({
          type: "truncated",
          message: `connection closed after ${this.bodyBytes} of ${this.bodyBytes + this.remaining} body bytes`,
          ts,
        });
        break;
      case "chunk-size":
      case "chunk-data":
      case "chunk-data-end":
      case "trailers":
        items.push({ type: "truncated", message: `connection closed inside the chunked body after ${this.bodyBytes} bytes`, ts });
        break;
      default:
        break;
    }
    if (this.state !== "failed") this.state = "done";
    return items;
  }

  /** Request parser: the answer to the CONNECT/Upgrade request was an ordinary response, go on parsing. */
  resume(): Http1Item[] {
    if (this.state !== "paused") return [];
    this.state = "head";
    const held = this.pausedData;
    this.pausedData = [];
    this.pausedBytes = 0;
    if (this.pausedOverflow) {
      this.state = "failed";
      return [{ type: "error", message: "too many bytes sent while waiting for a protocol switch", ts: held[0]?.ts ?? 0 }];
    }
    const items: Http1Item[] = [];
    for (const piece of held) items.push(...this.push(piece.data, piece.ts));
    return items;
  }

  /**
   * Stop parsing this direction for good (the protocol switched). Returns the bytes held while paused:
   * they belong to the new protocol (a client may send its first WebSocket frame right behind the head).
   */
  stop(): Array<{ data: Uint8Array; ts: number }> {
    if (this.state !== "failed") this.state = "done";
    const held = this.pausedOverflow ? [] : this.pausedData;
    this.pausedData = [];
    this.pausedBytes = 0;
    return held;
  }

  /**
   * Response parser, after an upgrade item: the bytes that followed the 101 (or CONNECT 2xx) head in the
   * same push, which belong to the new protocol. Later pushes are ignored as before.
   */
  takeSwitched(): Array<{ data: Uint8Array; ts: number }> {
    const out = this.switchedData;
    this.switchedData = [];
    this.keepSwitched = false;
    return out;
  }

  private parse(input: Uint8Array, ts: number, items: Http1Item[]): void {
    let pos = 0;
    while (pos < input.length) {
      switch (this.state) {
        case "head":
          pos = this.parseHead(input, pos, ts, items);
          break;
        case "length": {
          const n = Math.min(this.remaining, input.length - pos);
          this.emitBody(input, pos, n, ts, items);
          this.remaining -= n;
          pos += n;
          if (this.remaining === 0) this.endMessage(ts, [], items);
          break;
        }
        case "chunk-size":
          pos = this.parseChunkSize(input, pos);
          break;
        case "chunk-data": {
          const n = Math.min(this.remaining, input.length - pos);
          this.emitBody(input, pos, n, ts, items);
          this.remaining -= n;
          pos += n;
          if (this.remaining === 0) this.state = "chunk-data-end";
          break;
        }
        case "chunk-data-end": {
          // CRLF after the chunk data; a bare LF is tolerated.
          const byte = input[pos];
          if (byte === CR && this.remaining === 0) {
            this.remaining = 1; // remembers the CR across pushes
            pos++;
          } else if (byte === LF) {
            this.remaining = 0;
            this.state = "chunk-size";
            pos++;
          } else {
            throw new ParseError("chunked body: missing CRLF after chunk data");
          }
          break;
        }
        case "trailers":
          pos = this.parseTrailers(input, pos, ts, items);
          break;
        case "close-delimited":
          this.emitBody(input, pos, input.length - pos, ts, items);
          pos = input.length;
          break;
        case "paused":
          this.holdWhilePaused(input.subarray(pos), ts);
          pos = input.length;
          break;
        case "done":
        case "failed":
          if (this.keepSwitched && this.state === "done") this.switchedData.push({ data: copyBytes(input, pos), ts });
          else this._ignoredBytes += input.length - pos;
          pos = input.length;
          break;
      }
    }
  }

  /**
   * input[start, start + length) as a body item. A body kept as it is (no content codings, nearly every AI call)
   * is copied here, once, straight out of the input: no view to copy from later, which cost as much as the copy
   * (one per network read of a stream). A coded body's piece is a view: the codec reads it during the call.
   */
  private emitBody(input: Uint8Array, start: number, length: number, ts: number, items: Http1Item[]): void {
    if (length === 0) return;
    this.bodyBytes += length;
    const owned = this.copyBody;
    items.push({ type: "body", data: owned ? copyBytes(input, start, start + length) : view(input, start, length), ts, owned });
  }

  private holdWhilePaused(data: Uint8Array, ts: number): void {
    if (this.pausedBytes + data.length > this.maxHeaderBytes) {
      this.pausedOverflow = true;
      this._ignoredBytes += data.length;
      return;
    }
    this.pausedData.push({ data: copyBytes(data), ts });
    this.pausedBytes += data.length;
  }

  private parseHead(input: Uint8Array, pos: number, ts: number, items: Http1Item[]): number {
    if (this.section.length === 0) {
      // Empty lines before a start line are ignored (RFC 9112 §2.2).
      while (pos < input.length && (input[pos] === CR || input[pos] === LF)) pos++;
      if (pos === input.length) return pos;
      this.headStartTs = ts;
      // A whole head within this push (nearly always): read in place, not copied line by line first.
      const end = headEnd(input, pos);
      if (end !== -1 && end - pos <= this.maxHeaderBytes) {
        const text = latin1(input.subarray(pos, end));
        this.checkHeadText(text);
        this.onHead(text, ts, items);
        return end;
      }
    }
    const before = this.section.length;
    const taken = this.section.take(input, pos, false);
    if (taken === "overflow") throw new ParseError(`message head larger than ${this.maxHeaderBytes} bytes`);
    this.checkHeadBytes(before);
    if (!taken.complete) return pos + taken.used;
    const text = latin1(this.section.bytes());
    this.section.reset();
    this.onHead(text, ts, items);
    return pos + taken.used;
  }

  /** checkHeadBytes of a whole head read as latin1 text: the same checks, the same errors. */
  private checkHeadText(text: string): void {
    const b = firstBinaryChar(text);
    if (b >= 0) throw new ParseError(`not HTTP/1.x: binary byte 0x${b.toString(16).padStart(2, "0")} in message head`);
    if (this.role === "response") {
      if (!text.startsWith("HTTP/")) throw new ParseError("not HTTP/1.x: response does not start with HTTP/");
    } else {
      const sp = text.indexOf(" ");
      const method = text.slice(0, sp === -1 ? Math.min(text.length, MAX_METHOD_LENGTH + 1) : sp);
      if (method.length > MAX_METHOD_LENGTH || (method.length > 0 && !TOKEN.test(method)) || sp === 0) {
        throw new ParseError("not HTTP/1.x: request does not start with a method");
      }
    }
  }

  /** Rejects garbage early (TLS records, binary data) instead of buffering up to the head limit. */
  private checkHeadBytes(from: number): void {
    const bytes = this.section.bytes();
    const b = firstBinaryByte(bytes, from);
    if (b >= 0) throw new ParseError(`not HTTP/1.x: binary byte 0x${b.toString(16).padStart(2, "0")} in message head`);
    if (this.role === "response") {
      for (let i = 0; i < Math.min(bytes.length, HTTP_PREFIX.length); i++) {
        if (bytes[i] !== HTTP_PREFIX[i]) throw new ParseError("not HTTP/1.x: response does not start with HTTP/");
      }
    } else if (from <= MAX_METHOD_LENGTH) {
      const sp = bytes.indexOf(0x20);
      const method = bytes.subarray(0, sp === -1 ? Math.min(bytes.length, MAX_METHOD_LENGTH + 1) : sp);
      if (method.length > MAX_METHOD_LENGTH || (method.length > 0 && !TOKEN.test(latin1(method))) || sp === 0) {
        throw new ParseError("not HTTP/1.x: request does not start with a method");
      }
    }
  }

  private onHead(text: string, ts: number, items: Http1Item[]): void {
    const { startLine, fields: headers } = parseHeadText(text, this.maxHeaderCount);
    const startTs = this.headStartTs;
    if (this.role === "request") this.onRequestHead(startLine, headers, startTs, ts, items);
    else this.onResponseHead(startLine, headers, startTs, ts, items);
  }

  private onRequestHead(startLine: string, headers: HeaderList, startTs: number, ts: number, items: Http1Item[]): void {
    const { method, target, version } = parseRequestLine(startLine);
    const head: RequestHead = { role: "request", method, target, version, headers };
    const fields = framingFields(headers);
    const te = transferCodings(fields);
    const framing: BodyFraming = requestBodyFraming(fields, te);
    this.keepAlive = keepsAlive(version, fields);
    this.currentFraming = fields;
    this.startMessage(head, framing, codingsOf(fields, te), startTs, ts, items);
  }

  private onResponseHead(startLine: string, headers: HeaderList, startTs: number, ts: number, items: Http1Item[]): void {
    const m = STATUS_LINE.exec(startLine);
    if (!m) throw new ParseError(`malformed status line: ${JSON.stringify(startLine.slice(0, 100))}`);
    const version = m[1]!;
    const status = Number(m[2]);
    const head: ResponseHead = { role: "response", status, reason: m[3] ?? "", version, headers };
    if (status === 101) {
      const protocol = headerList(framingFields(headers), "upgrade")[0] ?? "unknown";
      this.state = "done";
      this.keepSwitched = true;
      items.push({ type: "upgrade", head, protocol: protocol.toLowerCase(), startTs, ts });
      return;
    }
    if (status >= 100 && status < 200) {
      items.push({ type: "informational", head, startTs, ts });
      return;
    }
    const method = this.opts.requestMethod?.(this.finalResponses)?.toUpperCase();
    this.finalResponses++;
    if (method === "CONNECT" && status >= 200 && status < 300) {
      this.state = "done";
      this.keepSwitched = true;
      items.push({ type: "upgrade", head, protocol: "connect", startTs, ts });
      return;
    }
    const fields = framingFields(headers);
    const te = transferCodings(fields);
    let framing: BodyFraming;
    if (method === "HEAD" || status === 204 || status === 304) framing = { kind: "none" };
    else if (te.length > 0) framing = te[te.length - 1] === "chunked" ? { kind: "chunked" } : { kind: "close" };
    else {
      const length = contentLength(fields);
      framing = length === undefined ? { kind: "close" } : length === 0 ? { kind: "none" } : { kind: "length", length };
    }
    this.keepAlive = keepsAlive(version, fields);
    this.currentFraming = fields;
    this.startMessage(head, framing, codingsOf(fields, te), startTs, ts, items);
  }

  private startMessage(
    head: MessageHead,
    framing: BodyFraming,
    codings: string[],
    startTs: number,
    ts: number,
    items: Http1Item[],
  ): void {
    items.push({ type: "head", head, startTs, ts, framing, codings, keepAlive: this.keepAlive });
    this.currentHead = head;
    this.copyBody = codings.length === 0;
    this.bodyBytes = 0;
    this.remaining = 0;
    switch (framing.kind) {
      case "none":
        this.endMessage(ts, [], items);
        break;
      case "length":
        this.remaining = framing.length;
        this.state = "length";
        break;
      case "chunked":
        this.chunkLine.reset();
        this.state = "chunk-size";
        break;
      case "close":
        this.state = "close-delimited";
        break;
    }
  }

  private endMessage(ts: number, trailers: HeaderList, items: Http1Item[]): void {
    items.push({ type: "end", ts, trailers });
    const head = this.currentHead;
    this.currentHead = undefined;
    if (!this.keepAlive) this.state = "done";
    else if (head?.role === "request" && switchesProtocol(head.method, this.currentFraming)) this.state = "paused";
    else this.state = "head";
  }

  private parseChunkSize(input: Uint8Array, pos: number): number {
    if (this.chunkLine.length === 0) {
      // A whole line within this push (nearly always): read where it lies, not gathered first. Looked for
      // by a loop over at most a line's limit: a native indexOf call per chunk cost more than the few bytes.
      const stop = Math.min(input.length, pos + MAX_CHUNK_LINE_BYTES);
      for (let nl = pos; nl < stop; nl++) {
        if (input[nl] !== LF) continue;
        this.startChunk(chunkSizeIn(input, pos, nl + 1));
        return nl + 1;
      }
    }
    const taken = this.chunkLine.take(input, pos, true);
    if (taken === "overflow") throw new ParseError("chunked body: chunk size line too long");
    if (!taken.complete) return pos + taken.used;
    const n = chunkSize(this.chunkLine.bytes());
    this.chunkLine.reset();
    this.startChunk(n);
    return pos + taken.used;
  }

  /** After a chunk-size line: its data, or the trailers after the last chunk. */
  private startChunk(n: number): void {
    if (n === 0) {
      this.state = "trailers";
      this.section.reset();
    } else {
      this.remaining = n;
      this.state = "chunk-data";
    }
  }

  private parseTrailers(input: Uint8Array, pos: number, ts: number, items: Http1Item[]): number {
    const taken = this.section.take(input, pos, false);
    if (taken === "overflow") throw new ParseError(`chunked trailers larger than ${this.maxHeaderBytes} bytes`);
    if (!taken.complete) return pos + taken.used;
    const lines = headLines(latin1(this.section.bytes())).filter((l) => l !== "");
    this.section.reset();
    this.endMessage(ts, parseFields(lines, this.maxHeaderCount, "trailer"), items);
    return pos + taken.used;
  }
}

/**
 * input[start, start + length) as a plain Uint8Array view (a coded body's piece): the constructor rather than
 * subarray(), which looks up the species constructor; and a plain view even of a Buffer, whose slice() (the
 * content decoder's copies) would be another view.
 */
function view(input: Uint8Array, start: number, length: number): Uint8Array {
  return new Uint8Array(input.buffer, input.byteOffset + start, length);
}

/**
 * Where a head starting at input[from] ends (just after the LF of its empty line: "" or "\r" before the LF,
 * as SectionBuffer.take reads lines), or -1 when it does not end within `input`.
 */
function headEnd(input: Uint8Array, from: number): number {
  let nl = input.indexOf(LF, from);
  while (nl !== -1) {
    const next = nl + 1;
    if (input[next] === LF) return next + 1;
    if (input[next] === CR && input[next + 1] === LF) return next + 2;
    nl = input.indexOf(LF, next);
  }
  return -1;
}

/**
 * The fields the framing rules read (Transfer-Encoding, Content-Length, Connection, Upgrade,
 * Content-Encoding), in order: one pass over the head instead of one per rule, with the same answers.
 */
function framingFields(headers: HeaderList): HeaderList {
  const out: HeaderList = [];
  for (const field of headers) {
    const name = field[0];
    let wanted: string;
    switch (name.length) {
      case 17:
        wanted = "transfer-encoding";
        break;
      case 14:
        wanted = "content-length";
        break;
      case 10:
        wanted = "connection";
        break;
      case 7:
        wanted = "upgrade";
        break;
      case 16:
        wanted = "content-encoding";
        break;
      default:
        continue;
    }
    if (sameNameLower(name, wanted)) out.push(field);
  }
  return out;
}

/** A status line (a constant: a regex literal in a function is a new object per call). */
const STATUS_LINE = /^(HTTP\/1\.[01]) (\d{3})(?: (.*))?$/;

/** Content codings, then transfer codings other than chunked and identity (one array, no spreads). */
function codingsOf(headers: HeaderList, transfer: string[]): string[] {
  const out: string[] = [];
  for (const [k, v] of headers) if (k.length === 16 && sameNameLower(k, "content-encoding")) for (const c of parseCodings(v)) out.push(c);
  for (const c of transfer) if (c !== "chunked" && c !== "identity") out.push(c);
  return out;
}

function keepsAlive(version: string, headers: HeaderList): boolean {
  let keepAlive = false;
  for (const token of headerList(headers, "connection")) {
    if (token.length === 5 && sameNameLower(token, "close")) return false;
    if (token.length === 10 && sameNameLower(token, "keep-alive")) keepAlive = true;
  }
  return version === "HTTP/1.1" || keepAlive;
}
