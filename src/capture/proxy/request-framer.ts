// Sans-IO framing of a client's plain-HTTP request stream: where each request head starts and ends and
// which bytes are its body (Content-Length, chunked, or none). The proxy needs exactly this much to turn
// each absolute-form request line into origin-form on a keep-alive connection; bodies pass untouched.
// Which header decides the body, the chunk-size line and the protocol switch are the sensor decoder's rules
// (src/wire/http1.ts): the proxy and the sensor split the same bytes at the same places.
import { chunkSize, Http1FramingError, MAX_CHUNK_LINE_BYTES, requestBodyFraming, switchesProtocol } from "../../wire/http1.ts";
import { DEFAULT_MAX_HEAD_BYTES, HeadReader, type RequestHead } from "./request-head.ts";

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
  /** After a request that may switch protocols (Upgrade, CONNECT) everything is opaque (WebSocket...). */
  | { s: "raw" }
  | { s: "dead" };

const MAX_TRAILER = 64 * 1024;

export class RequestFramer {
  private state: State = { s: "head" };
  /** Where the current request's end leads: the next head, or opaque bytes after a protocol switch. */
  private afterMessage: State = { s: "head" };
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
          let framing;
          try {
            framing = requestBodyFraming(r.head.headers);
          } catch (err) {
            if (!(err instanceof Http1FramingError)) throw err;
            this.state = { s: "dead" };
            out.push({ kind: "error", reason: err.message });
            return;
          }
          out.push({ kind: "head", head: r.head, raw });
          this.afterMessage = switchesProtocol(r.head.method, r.head.headers) ? { s: "raw" } : { s: "head" };
          this.state =
            framing.kind === "chunked" ? { s: "chunk-size", line: [] } : framing.kind === "length" ? { s: "length", remaining: framing.length } : this.afterMessage;
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
            this.state = this.afterMessage;
          }
          break;
        }
        case "chunk-size": {
          const b = chunk[i++]!;
          if (b === 0x0a) {
            let size: number;
            try {
              st.line.push(b); // the line break too: the size is read exactly as the decoder reads it
              size = chunkSize(Uint8Array.from(st.line));
            } catch (err) {
              if (!(err instanceof Http1FramingError)) throw err;
              return this.fail(out, flushBody, err.message);
            }
            this.state = size === 0 ? { s: "trailer", lineLen: 0, sawCr: false, total: 0 } : { s: "chunk-data", remaining: size };
          } else {
            st.line.push(b);
            if (st.line.length > MAX_CHUNK_LINE_BYTES) return this.fail(out, flushBody, "chunked body: chunk size line too long");
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
          else if (b !== 0x0d || st.seen > 0) return this.fail(out, flushBody, "chunked body: missing CRLF after chunk data");
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
              this.state = this.afterMessage;
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
