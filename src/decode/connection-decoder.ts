// What every connection decoder hands the pipeline, and the choice of decoder for a connection. The
// contract sits here, apart from either implementation, so HTTP/1.1 (connection.ts) and HTTP/2
// (h2-connection.ts) both import it and the pipeline imports neither's internals.
import type { Direction } from "../tap/types.ts";
import { HttpConnectionDecoder, type HttpConnectionDecoderOptions } from "./connection.ts";
import { H2ConnectionDecoder, type H2ConnectionDecoderOptions } from "./h2-connection.ts";
import { CLIENT_PREFACE } from "./http2.ts";
import { concatBytes, copyBytes, type HttpExchange } from "./types.ts";
import type { WsConnectionItem } from "./websocket.ts";

export type ConnectionOutput =
  /** A request fully received (exchange.response undefined yet). */
  | { kind: "request"; exchange: HttpExchange }
  /** Response finished, or the connection ended/failed (exchange.error set). */
  | { kind: "exchange"; exchange: HttpExchange }
  /** 101 or CONNECT 2xx: later bytes are not HTTP/1.1. */
  | { kind: "upgrade"; exchange: HttpExchange; protocol: string }
  /** After a 101 to WebSocket: decoded frames of either direction, with the exchange that upgraded. */
  | { kind: "websocket"; exchange: HttpExchange; items: WsConnectionItem[] }
  /** Gave up decoding this connection; the relay is unaffected. */
  | { kind: "protocol-error"; dir: Direction; message: string };

export interface ConnectionStats {
  exchanges: number;
  bytesIn: number;
  truncatedBodies: number;
  errors: number;
}

/** Either connection decoder, behind the interface the pipeline uses. */
export interface ConnectionDecoder {
  push(dir: Direction, bytes: Uint8Array, ts: number): ConnectionOutput[];
  close(ts: number, error?: string): ConnectionOutput[];
  stats(): ConnectionStats;
}

/**
 * The decoder for a connection: HTTP/2 when ALPN said "h2", HTTP/1.1 when it said anything else,
 * and when ALPN is unknown (plain HTTP, prior-knowledge h2c) decided by whether the client's
 * first bytes are the HTTP/2 preface.
 */
export function createConnectionDecoder(connId: string, alpn: string | undefined, opts: HttpConnectionDecoderOptions & H2ConnectionDecoderOptions = {}): ConnectionDecoder {
  if (alpn === "h2") return new H2ConnectionDecoder(connId, opts);
  if (alpn !== undefined && alpn !== "") return new HttpConnectionDecoder(connId, opts);
  return new SniffingConnectionDecoder(connId, opts);
}

/** Holds the first bytes until the client's opening shows HTTP/2 preface or not (bounded). */
class SniffingConnectionDecoder implements ConnectionDecoder {
  private inner?: ConnectionDecoder;
  private held: Array<{ dir: Direction; bytes: Uint8Array; ts: number }> = [];
  private clientBytes: Uint8Array = new Uint8Array(0);
  private heldBytes = 0;

  constructor(
    private readonly connId: string,
    private readonly opts: HttpConnectionDecoderOptions & H2ConnectionDecoderOptions,
  ) {}

  push(dir: Direction, bytes: Uint8Array, ts: number): ConnectionOutput[] {
    if (this.inner) return this.inner.push(dir, bytes, ts);
    this.held.push({ dir, bytes: copyBytes(bytes), ts });
    this.heldBytes += bytes.length;
    if (dir === "c2s") this.clientBytes = concatBytes([this.clientBytes, bytes]).subarray(0, CLIENT_PREFACE.length);
    const n = this.clientBytes.length;
    const isPrefix = CLIENT_PREFACE.subarray(0, n).every((b, i) => b === this.clientBytes[i]);
    if (!isPrefix) return this.decide(false);
    if (n === CLIENT_PREFACE.length) return this.decide(true);
    if (this.heldBytes > 64 * 1024) return this.decide(false);
    return [];
  }

  close(ts: number, error?: string): ConnectionOutput[] {
    const out = this.inner ? [] : this.decide(false);
    return [...out, ...this.inner!.close(ts, error)];
  }

  stats(): ConnectionStats {
    return this.inner?.stats() ?? { exchanges: 0, bytesIn: this.heldBytes, truncatedBodies: 0, errors: 0 };
  }

  private decide(h2: boolean): ConnectionOutput[] {
    this.inner = h2 ? new H2ConnectionDecoder(this.connId, this.opts) : new HttpConnectionDecoder(this.connId, this.opts);
    const out: ConnectionOutput[] = [];
    for (const piece of this.held) out.push(...this.inner.push(piece.dir, piece.bytes, piece.ts));
    this.held = [];
    return out;
  }
}
