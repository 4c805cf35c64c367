// The first thing a client sends the proxy, without the socket: bytes in until one decision comes out.
// CONNECT host:port opens a tunnel (with whatever followed the head), an absolute-form request starts a
// plain-HTTP session (with every byte read so far), a TLS ClientHello means the client was given an
// https:// proxy URL, and anything else is answered with an HTTP error. startProxy carries it out.
import { classifyRequest, HeadReader } from "./request-head.ts";

export type ProxyRequestDecision =
  | { kind: "need-more" }
  /** A TLS record where a proxy request belongs. */
  | { kind: "tls" }
  | { kind: "bad"; status: number; reason: string }
  /** Absolute-form plain HTTP: the session takes every byte read so far, head included. */
  | { kind: "plain"; bytes: Uint8Array }
  | { kind: "connect"; host: string; port: number; /** Bytes after the head (the client may not wait for 200). */ rest: Uint8Array };

export class ProxyRequestReader {
  private readonly reader: HeadReader;
  private decided = false;

  constructor(
    maxHeadBytes: number,
    /** True when host:port is this proxy (the request would loop). */
    private readonly loops: (host: string, port: number) => boolean,
  ) {
    this.reader = new HeadReader(maxHeadBytes);
  }

  push(chunk: Uint8Array): ProxyRequestDecision {
    if (this.decided) throw new Error("ProxyRequestReader: pushed after its decision");
    const d = this.decide(chunk);
    if (d.kind !== "need-more") this.decided = true;
    return d;
  }

  private decide(chunk: Uint8Array): ProxyRequestDecision {
    if (this.reader.bytes().length === 0 && looksLikeTlsRecord(chunk)) return { kind: "tls" };
    const r = this.reader.push(chunk);
    if (r.status === "need-more") return { kind: "need-more" };
    if (r.status === "bad") return { kind: "bad", status: 400, reason: r.reason };
    if (r.status === "too-large") return { kind: "bad", status: 431, reason: `request head larger than ${r.limit} bytes` };
    const req = classifyRequest(r.head);
    if (req.kind === "reject") return { kind: "bad", status: req.status, reason: req.reason };
    if (req.kind === "absolute") return { kind: "plain", bytes: this.reader.bytes().slice() };
    if (this.loops(req.host, req.port)) return { kind: "bad", status: 400, reason: `${req.host}:${req.port} is this proxy; the request would loop` };
    return { kind: "connect", host: req.host, port: req.port, rest: this.reader.bytes().slice(r.head.length) };
  }
}

/** First bytes of a TLS handshake record (0x16, version 3.x): no HTTP method starts with them. */
export function looksLikeTlsRecord(chunk: Uint8Array): boolean {
  return chunk.length >= 2 && chunk[0] === 0x16 && chunk[1] === 0x03;
}
