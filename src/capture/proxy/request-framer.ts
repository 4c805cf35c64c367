// Sans-IO framing of a client's plain-HTTP request stream: where each request head starts and ends and
// which bytes are its body (Content-Length, chunked, or none). The proxy needs exactly this much to turn
// each absolute-form request line into origin-form on a keep-alive connection; bodies pass untouched.
import { DEFAULT_MAX_HEAD_BYTES, HeadReader, headerValues, type RequestHead } from "./request-head.ts";

export type FramerEvent =
  /** A complete request head; `raw` is its exact bytes. */
  | { kind: "head"; head: RequestHead; raw: Uint8Array }
  /** Bytes belonging to the current request's body (chunk framing included), or to an upgraded stream. */
  | { kind: "body"; bytes: Uint8Array }
  | { kind: "error"; reason: string; tooLarge?: boolean };

type State =
  | { s: "head" }
  | { s: "length"; remaining: number }
  | { s: "chunk-size"; line: number[] }
  | { s: "chunk-data"; remaining: number }
  | { s: "chunk-data-end"; seen: number }
  | { s: "trailer"; lineLen: number; sawCr: boolean; total: number }
  /** After an Upgrade request everything is opaque (WebSocket...). */
  | { s: "raw" }
  | { s: "dead" };

const MAX_CHUNK_LINE = 4096;
const MAX_TRAILER = 64 * 1024;

export class RequestFramer {
  private state: State = { s: "head" };
  private reader: HeadReader;

  constructor(private readonly maxHeadBytes = DEFAULT_MAX_HEAD_BYTES) {
    this.reader = new HeadReader(maxHeadBytes);
  }

  push(chunk: Uint8Array): FramerEvent[] {
    const out: FramerEvent[] = [];
    this.feed(chunk, out);
    return out;
  }

  private feed(chunk: Uint8Array, out: FramerEvent[]): void {
    let i = 0;
    let bodyStart = 0;
    const flushBody = () => {
      if (i > bodyStart) out.push({ kind: "body", bytes: chunk.subarray(bodyStart, i) });
    };
    while (i < chunk.length) {
      const st = this.state;
      switch (st.s) {
        case "dead":
          return;
        case "raw":
          i = chunk.length;
          break;
        case "head": {
          const r = this.reader.push(chunk.subarray(i));
          if (r.status === "need-more") return;
          if (r.status !== "ok") {
            this.state = { s: "dead" };
            out.push(r.status === "bad" ? { kind: "error", reason: r.reason } : { kind: "error", reason: `request head larger than ${r.limit} bytes`, tooLarge: true });
            return;
          }
          const all = this.reader.bytes();
          const raw = all.slice(0, r.head.length);
          const rest = all.slice(r.head.length);
          this.reader = new HeadReader(this.maxHeadBytes);
          const next = bodyStateFor(r.head);
          if ("error" in next) {
            this.state = { s: "dead" };
            out.push({ kind: "error", reason: next.error });
            return;
          }
          out.push({ kind: "head", head: r.head, raw });
          this.state = next;
          if (rest.length) this.feed(rest, out);
          return;
        }
        case "length": {
          const n = Math.min(st.remaining, chunk.length - i);
          st.remaining -= n;
          i += n;
          if (st.remaining === 0) {
            flushBody();
            bodyStart = i;
            this.state = { s: "head" };
          }
          break;
        }
        case "chunk-size": {
          const b = chunk[i++]!;
          if (b === 0x0a) {
            const line = String.fromCharCode(...st.line).replace(/\r$/, "");
            const m = /^([0-9a-fA-F]{1,15})[ \t]*(;.*)?$/.exec(line);
            if (!m) return this.fail(out, flushBody, "bad chunk size line");
            const size = parseInt(m[1]!, 16);
            this.state = size === 0 ? { s: "trailer", lineLen: 0, sawCr: false, total: 0 } : { s: "chunk-data", remaining: size };
          } else {
            st.line.push(b);
            if (st.line.length > MAX_CHUNK_LINE) return this.fail(out, flushBody, "chunk size line too long");
          }
          break;
        }
        case "chunk-data": {
          const n = Math.min(st.remaining, chunk.length - i);
          st.remaining -= n;
          i += n;
          if (st.remaining === 0) this.state = { s: "chunk-data-end", seen: 0 };
          break;
        }
        case "chunk-data-end": {
          const b = chunk[i++]!;
          if (b === 0x0a) this.state = { s: "chunk-size", line: [] };
          else if (b !== 0x0d || st.seen > 0) return this.fail(out, flushBody, "missing CRLF after chunk data");
          else st.seen++;
          break;
        }
        case "trailer": {
          const b = chunk[i++]!;
          if (++st.total > MAX_TRAILER) return this.fail(out, flushBody, "chunked trailer too large");
          if (b === 0x0a) {
            if (st.lineLen === 0) {
              flushBody();
              bodyStart = i;
              this.state = { s: "head" };
            }
            st.lineLen = 0;
          } else if (b !== 0x0d) st.lineLen++;
          break;
        }
      }
    }
    flushBody();
  }

  private fail(out: FramerEvent[], flushBody: () => void, reason: string): void {
    flushBody();
    this.state = { s: "dead" };
    out.push({ kind: "error", reason });
  }
}

/** RFC 9112 §6.3 for requests: chunked wins, else Content-Length, else no body. Upgrade turns the rest raw. */
function bodyStateFor(head: RequestHead): State | { error: string } {
  const upgrade = headerValues(head, "upgrade").length > 0 && /\bupgrade\b/i.test(headerValues(head, "connection").join(","));
  const te = headerValues(head, "transfer-encoding").join(",").toLowerCase().split(",").map((s) => s.trim()).filter(Boolean);
  if (te.length) {
    if (te[te.length - 1] !== "chunked") return { error: "request Transfer-Encoding does not end with chunked" };
    return { s: "chunk-size", line: [] };
  }
  const cl = headerValues(head, "content-length").flatMap((v) => v.split(",").map((s) => s.trim()));
  if (cl.length) {
    if (!cl.every((v) => /^\d{1,15}$/.test(v)) || new Set(cl).size !== 1) return { error: "invalid Content-Length" };
    const n = Number(cl[0]);
    if (n > 0) return { s: "length", remaining: n };
  }
  return upgrade ? { s: "raw" } : { s: "head" };
}
