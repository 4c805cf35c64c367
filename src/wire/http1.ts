// HTTP/1.1 framing rules (RFC 9112), in one place for the two readers of HTTP/1 bytes: the proxy's
// request framer (capture/proxy/request-framer.ts), which splits a client's request stream to rewrite each
// request line, and the sensor's decoder (decode/http1.ts), which parses both directions of a tapped
// connection. Both must split the same bytes at the same places: the request line and header fields, which
// header decides the body (Transfer-Encoding, Content-Length), the chunk-size line, and which request may
// switch protocols. Pure functions; errors are thrown as Http1FramingError with a short message.
import { Buffer } from "node:buffer";

/** Header fields in order, names as sent. (decode/types.ts HeaderList is this.) */
export type HeaderFields = ReadonlyArray<readonly [name: string, value: string]>;

export class Http1FramingError extends Error {}

export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Longest chunk-size line (size, extensions, line break) read before giving up. */
export const MAX_CHUNK_LINE_BYTES = 4096;
/** Longest method accepted before a request is judged not to be HTTP/1. */
export const MAX_METHOD_LENGTH = 32;
/** 13 hex digits: every size up to 2^52, which a JS number holds exactly. */
const MAX_CHUNK_SIZE_DIGITS = 13;
const CR = 0x0d;
const LF = 0x0a;
const EXTENDED_CHUNK_SIZE = new RegExp(`^[0-9a-fA-F]{1,${MAX_CHUNK_SIZE_DIGITS}}$`);

/** A head's lines without their line breaks (CRLF or a bare LF), trailing empty lines dropped. */
export function headLines(text: string): string[] {
  // One cut per line, its CR left out (a split, then a map trimming each CR, made every line twice).
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf("\n", start);
    const end = nl === -1 ? text.length : nl;
    lines.push(text.slice(start, end > start && text.charCodeAt(end - 1) === 0x0d ? end - 1 : end));
    if (nl === -1) break;
    start = nl + 1;
  }
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

const BINARY_CHAR = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** The same test over a head already read as latin1 text (one regex scan instead of a loop over bytes). */
export function firstBinaryChar(text: string): number {
  const m = BINARY_CHAR.exec(text);
  return m ? m[0].charCodeAt(0) : -1;
}

/** The first control byte (other than CR, LF, tab) in bytes[from..], or -1: such a head is not HTTP/1.x. */
export function firstBinaryByte(bytes: Uint8Array, from = 0): number {
  for (let i = from; i < bytes.length; i++) {
    const b = bytes[i]!;
    if ((b < 0x20 && b !== 0x0d && b !== 0x0a && b !== 0x09) || b === 0x7f) return b;
  }
  return -1;
}

// Regex literals in functions run per head are a new RegExp object each time: these are made once (no g or y
// flag, so no lastIndex to share).
const HTTP1_VERSION = /^HTTP\/1\.[01]$/;
const CONTENT_LENGTH_DIGITS = /^\d{1,15}$/;
const HIGH_BYTE = /[\x80-\xff]/;
const TARGET_BAD_CHAR = /[\x00-\x20\x7f]/;

export interface RequestLine {
  method: string;
  target: string;
  version: string;
}

/** `METHOD target HTTP/1.x`, exactly one space apart. */
export function parseRequestLine(startLine: string): RequestLine {
  // Exactly two spaces (the three parts of a split on " "), found without the split's array.
  const sp1 = startLine.indexOf(" ");
  const sp2 = sp1 === -1 ? -1 : startLine.indexOf(" ", sp1 + 1);
  if (sp2 === -1 || startLine.indexOf(" ", sp2 + 1) !== -1) {
    throw new Http1FramingError(`malformed request line: ${JSON.stringify(startLine.slice(0, 100))}`);
  }
  const method = startLine.slice(0, sp1);
  const target = startLine.slice(sp1 + 1, sp2);
  const version = startLine.slice(sp2 + 1);
  if (version === "HTTP/2.0" && method === "PRI") throw new Http1FramingError("not HTTP/1.x: HTTP/2 connection preface");
  if (!HTTP1_VERSION.test(version)) throw new Http1FramingError(`unsupported HTTP version: ${JSON.stringify(version.slice(0, 20))}`);
  if (!TOKEN.test(method)) throw new Http1FramingError("malformed request method");
  if (target === "" || TARGET_BAD_CHAR.test(target)) throw new Http1FramingError("malformed request target");
  return { method, target, version };
}

/** Header (or trailer) lines into fields; obsolete folding, bare CR and bad names are errors. */
export function parseFields(lines: string[], maxCount: number, what: "header" | "trailer"): Array<[string, string]> {
  if (lines.length > maxCount) throw new Http1FramingError(`more than ${maxCount} ${what} fields`);
  const fields: Array<[string, string]> = [];
  for (const line of lines) {
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) throw new Http1FramingError(`obsolete line folding in ${what} section`);
    const colon = line.indexOf(":");
    if (!isTokenIn(line, 0, colon)) throw new Http1FramingError(`malformed ${what} line: ${JSON.stringify(line.slice(0, 100))}`);
    const name = line.slice(0, colon);
    if (line.includes("\r")) throw new Http1FramingError(`bare CR in ${what} section`);
    fields.push([name, utf8IfValid(trimSpaceTab(line, colon + 1))]);
  }
  return fields;
}

/**
 * A head's start line and fields: headLines then parseFields of the other lines, with the same answers and
 * the same errors. A head whose lines all end in CRLF, with no bare CR or LF and no byte above 0x7f in its
 * fields (nearly every head), is read in one pass over the text: no array of lines, no per-line scan for a CR,
 * no per-value UTF-8 test. Anything else goes the line-by-line way.
 */
export function parseHeadText(text: string, maxCount: number): { startLine: string; fields: Array<[string, string]> } {
  const fast = crlfHeadFields(text, maxCount);
  if (fast) return fast;
  const lines = headLines(text);
  const startLine = lines.shift() ?? "";
  return { startLine, fields: parseFields(lines, maxCount, "header") };
}

/**
 * parseHeadText's one pass, character by character (a regex over the whole head to rule out odd bytes first
 * cost as much as the reading): undefined at whatever parseFields would reject or read otherwise (a bare CR
 * or LF, a byte above 0x7f in a field, a folded or malformed line, too many fields), which the line-by-line
 * reading then answers.
 */
function crlfHeadFields(text: string, maxCount: number): { startLine: string; fields: Array<[string, string]> } | undefined {
  const len = text.length;
  const fields: Array<[string, string]> = [];
  const firstLf = text.indexOf("\n");
  // No line break: the start line alone (a CR inside the start line stays in it, as headLines leaves it; a last
  // one headLines drops).
  if (firstLf === -1) return text.charCodeAt(len - 1) === CR ? undefined : { startLine: text, fields };
  if (firstLf === 0 || text.charCodeAt(firstLf - 1) !== CR) return undefined;
  const startLine = text.slice(0, firstLf - 1);
  let start = firstLf + 1;
  while (start < len) {
    let i = start;
    let c = 0;
    while (i < len) {
      c = text.charCodeAt(i);
      if (c >= 128 || TCHAR[c] === 0) break;
      i++;
    }
    if (i === start) {
      // An empty line: only more empty lines may follow (headLines drops trailing ones); else the slow way.
      // Anything else without a name (a folded line, a colon first) is the slow way's to judge.
      if (c === CR && text.charCodeAt(i + 1) === LF && len - start === countTrailingCrlf(text, start)) break;
      return undefined;
    }
    if (i === len || c !== 0x3a || fields.length === maxCount) return undefined;
    const colon = i;
    let end = colon + 1;
    while (end < len) {
      c = text.charCodeAt(end);
      if (c === CR) break;
      if (c === LF || c >= 128) return undefined;
      end++;
    }
    if (end < len && text.charCodeAt(end + 1) !== LF) return undefined;
    let vs = colon + 1;
    let ve = end;
    while (vs < ve && (text.charCodeAt(vs) === 0x20 || text.charCodeAt(vs) === 0x09)) vs++;
    while (ve > vs && (text.charCodeAt(ve - 1) === 0x20 || text.charCodeAt(ve - 1) === 0x09)) ve--;
    fields.push([text.slice(start, colon), text.slice(vs, ve)]);
    start = end + 2;
  }
  return { startLine, fields };
}

/** Characters of CRLF pairs from text[from] on. */
function countTrailingCrlf(text: string, from: number): number {
  let i = from;
  while (text.charCodeAt(i) === 0x0d && text.charCodeAt(i + 1) === 0x0a) i += 2;
  return i - from;
}

/** TOKEN's characters, by code (RFC 9110 tchar). */
const TCHAR = (() => {
  const table = new Uint8Array(128);
  for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") table[c.charCodeAt(0)] = 1;
  return table;
})();

/** Whether text[start..end) is a token (TOKEN.test of it, without cutting it out first): one or more tchars. */
function isTokenIn(text: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/**
 * `name.toLowerCase() === lower` for a `lower` of the same length, without a lower-cased copy of an ASCII name
 * (a copy per header name and rule was a tenth of reading a head).
 */
export function sameNameLower(name: string, lower: string): boolean {
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    // Beyond ASCII, lower-casing may change a character into ASCII (K, the Kelvin sign, into k): asked in full.
    if (c >= 0x80) return name.toLowerCase() === lower;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** All comma-separated values of a header (name in lower case), over every line carrying it. */
export function headerList(headers: HeaderFields, name: string): string[] {
  const out: string[] = [];
  for (const [k, v] of headers) {
    if (k.length !== name.length || !sameNameLower(k, name)) continue;
    if (!v.includes(",")) {
      // One value (nearly always): what the split would give, without the array of one.
      const t = v.trim();
      if (t !== "") out.push(t);
      continue;
    }
    for (const item of v.split(",")) {
      const t = item.trim();
      if (t !== "") out.push(t);
    }
  }
  return out;
}

export function transferCodings(headers: HeaderFields): string[] {
  return headerList(headers, "transfer-encoding").map((s) => s.toLowerCase());
}

/** Content-Length; repeated equal values are accepted, anything else is an error (RFC 9112 §6.3). */
export function contentLength(headers: HeaderFields): number | undefined {
  const values = headerList(headers, "content-length");
  if (values.length === 0) return undefined;
  const first = values[0]!;
  if (!CONTENT_LENGTH_DIGITS.test(first) || values.some((v) => v !== first)) {
    throw new Http1FramingError(`invalid Content-Length: ${JSON.stringify(values.join(", ").slice(0, 40))}`);
  }
  return Number(first);
}

export type RequestBodyFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

/** RFC 9112 §6.3 for requests: chunked wins, else Content-Length, else no body. */
export function requestBodyFraming(headers: HeaderFields, te: string[] = transferCodings(headers)): RequestBodyFraming {
  if (te.length > 0) {
    if (te[te.length - 1] !== "chunked") throw new Http1FramingError("request Transfer-Encoding does not end with chunked");
    return { kind: "chunked" };
  }
  const length = contentLength(headers);
  return length ? { kind: "length", length } : { kind: "none" };
}

/**
 * A request after which the connection may stop speaking HTTP/1.1 (CONNECT, or any Upgrade header, with
 * or without a `Connection: upgrade` token): whether it does is the response's to say. The decoder waits
 * for it; the proxy, which does not read responses, relays the rest opaquely (fail open).
 */
export function switchesProtocol(method: string, headers: HeaderFields): boolean {
  return method.toUpperCase() === "CONNECT" || headerList(headers, "upgrade").length > 0;
}

/** The size on a chunk-size line (line break included or not): 1-13 hex digits, then optional extensions. */
export function chunkSize(line: Uint8Array): number {
  return plainChunkSize(line, 0, line.length) ?? chunkSizeOfExtendedLine(line);
}

/** chunkSize of the line bytes[start..end), read where it lies (no view made of it unless it has extensions). */
export function chunkSizeIn(bytes: Uint8Array, start: number, end: number): number {
  return plainChunkSize(bytes, start, end) ?? chunkSizeOfExtendedLine(bytes.subarray(start, end));
}

/** The size of a line (line[start..end)) that is only hex digits and its line break (nearly all), else undefined. */
function plainChunkSize(line: Uint8Array, start: number, end: number): number | undefined {
  if (end > start && line[end - 1] === LF) end--;
  if (end > start && line[end - 1] === CR) end--;
  if (end === start || end - start > MAX_CHUNK_SIZE_DIGITS) return undefined;
  let n = 0;
  for (let i = start; i < end; i++) {
    const b = line[i]!;
    const digit = b >= 0x30 && b <= 0x39 ? b - 0x30 : b >= 0x61 && b <= 0x66 ? b - 0x57 : b >= 0x41 && b <= 0x46 ? b - 0x37 : -1;
    if (digit < 0) return undefined;
    n = n * 16 + digit;
  }
  return n;
}

/** Any other line: extensions and padding after the size are skipped, anything else is an error. */
function chunkSizeOfExtendedLine(line: Uint8Array): number {
  const size = latin1(line).replace(/\r?\n$/, "").split(";")[0]!.replace(/[ \t]+$/, "");
  if (!EXTENDED_CHUNK_SIZE.test(size)) {
    throw new Http1FramingError(`chunked body: invalid chunk size ${JSON.stringify(size.slice(0, 20))}`);
  }
  return parseInt(size, 16);
}

/** line[from..] without leading and trailing spaces and tabs (a field value's optional whitespace, RFC 9112 §5). */
function trimSpaceTab(line: string, from: number): string {
  let start = from;
  let end = line.length;
  while (start < end && (line.charCodeAt(start) === 0x20 || line.charCodeAt(start) === 0x09)) start++;
  while (end > start && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end--;
  return line.slice(start, end);
}

export function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Header bytes are latin1 on the wire; values that are valid UTF-8 (file names, titles) read better decoded. */
function utf8IfValid(value: string): string {
  if (!HIGH_BYTE.test(value)) return value;
  try {
    return strictUtf8.decode(Buffer.from(value, "latin1"));
  } catch {
    return value;
  }
}
