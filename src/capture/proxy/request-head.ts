// Sans-IO reader for HTTP/1.x request heads sent to the proxy: CONNECT authority-form, absolute-form
// plain HTTP, and the origin-form requests we refuse. Bounded; says how many bytes the head took.
// The request line and header fields are read by the same rules as the sensor's decoder (src/wire/http1.ts).
import { firstBinaryChar, headLines, Http1FramingError, latin1, parseFields, parseRequestLine, type HeaderFields } from "../../wire/http1.ts";

export interface RequestHead {
  method: string;
  target: string;
  version: string;
  /** Header fields in order, names as sent. */
  headers: HeaderFields;
  /** Length in bytes of the whole head including the final CRLFCRLF. */
  length: number;
}

export type HeadResult =
  | { status: "need-more" }
  | { status: "ok"; head: RequestHead }
  | { status: "bad"; reason: string }
  | { status: "too-large"; limit: number };

export const DEFAULT_MAX_HEAD_BYTES = 64 * 1024;

/** Header fields past this many make a head bad (as in the decoder). */
const MAX_HEADER_COUNT = 256;

/** Finds the end of a head (CRLFCRLF, or LFLF from lenient clients) in `buf`, searching from `from`. */
function headEnd(buf: Uint8Array, from: number): number {
  for (let i = Math.max(0, from); i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i - 1] === 0x0a) return i + 1;
    if (buf[i - 1] === 0x0d && buf[i - 2] === 0x0a) return i + 1;
  }
  return -1;
}

/** Parses one head from the start of `buf`. */
export function parseRequestHead(buf: Uint8Array, maxBytes = DEFAULT_MAX_HEAD_BYTES): HeadResult {
  // Tolerate stray CRLFs before a request (RFC 9112 §2.2).
  let start = 0;
  while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
  const end = headEnd(buf, start + 1);
  if (end < 0) return buf.length > maxBytes ? { status: "too-large", limit: maxBytes } : { status: "need-more" };
  if (end > maxBytes) return { status: "too-large", limit: maxBytes };
  const head = buf.subarray(start, end);
  const text = latin1(head);
  const binary = firstBinaryChar(text);
  if (binary >= 0) return { status: "bad", reason: `not HTTP/1.x: binary byte 0x${binary.toString(16).padStart(2, "0")} in request head` };
  try {
    const lines = headLines(text);
    const line = parseRequestLine(lines[0] ?? "");
    const headers = parseFields(lines.slice(1), MAX_HEADER_COUNT, "header");
    return { status: "ok", head: { ...line, headers, length: end } };
  } catch (err) {
    if (err instanceof Http1FramingError) return { status: "bad", reason: err.message };
    throw err;
  }
}

/** host:port with IPv6 in brackets; port required (CONNECT authority-form). */
export function parseAuthority(authority: string, defaultPort?: number): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]/?#@\s]+))(?::(\d{1,5}))?$/.exec(authority);
  if (!m) return undefined;
  const port = m[3] ? Number(m[3]) : defaultPort;
  if (port === undefined || port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2]!).toLowerCase(), port };
}

export type ProxyRequest =
  | { kind: "connect"; host: string; port: number }
  | { kind: "absolute"; host: string; port: number; /** origin-form: path + query */ path: string }
  | { kind: "reject"; status: number; reason: string };

/** What a head asks the proxy to do. */
export function classifyRequest(head: RequestHead): ProxyRequest {
  if (head.method === "CONNECT") {
    const a = parseAuthority(head.target);
    return a ? { kind: "connect", ...a } : { kind: "reject", status: 400, reason: `bad CONNECT target "${head.target}" (want host:port)` };
  }
  if (head.target.startsWith("/") || head.target === "*") {
    return {
      kind: "reject",
      status: 400,
      reason: "this is an HTTP proxy: send absolute-form requests (http://host/path) or CONNECT host:port; set HTTPS_PROXY/HTTP_PROXY to this address",
    };
  }
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^#]*)/.exec(head.target);
  if (!m) return { kind: "reject", status: 400, reason: `bad request target "${head.target}"` };
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "http") return { kind: "reject", status: 400, reason: `scheme ${scheme} is not proxied as absolute-form; use CONNECT` };
  if (m[2]!.includes("@")) return { kind: "reject", status: 400, reason: "credentials in the request URL are not supported" };
  const a = parseAuthority(m[2]!, 80);
  if (!a) return { kind: "reject", status: 400, reason: `bad host in "${head.target}"` };
  let path = m[3] || "/";
  if (path.startsWith("?")) path = `/${path}`;
  return { kind: "absolute", ...a, path };
}

/** Accumulates bytes until a whole head is there; rescans only new bytes, so a slow drip stays linear. */
export class HeadReader {
  private store = new Uint8Array(1024);
  private len = 0;
  private scanned = 0;

  constructor(private readonly maxBytes = DEFAULT_MAX_HEAD_BYTES) {}

  push(chunk: Uint8Array): HeadResult {
    if (this.len + chunk.length > this.store.length) {
      const grown = new Uint8Array(Math.max(this.store.length * 2, this.len + chunk.length));
      grown.set(this.store.subarray(0, this.len));
      this.store = grown;
    }
    this.store.set(chunk, this.len);
    this.len += chunk.length;
    const buf = this.bytes();
    if (headEnd(buf, Math.max(1, this.scanned - 3)) < 0) {
      this.scanned = buf.length;
      return buf.length > this.maxBytes ? { status: "too-large", limit: this.maxBytes } : { status: "need-more" };
    }
    return parseRequestHead(buf, this.maxBytes);
  }

  /** Everything pushed so far (head and whatever followed it). */
  bytes(): Uint8Array {
    return this.store.subarray(0, this.len);
  }
}
