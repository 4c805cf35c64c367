// WebSocket frames (RFC 6455) for one direction of an upgraded connection, sans-IO: push bytes,
// get whole messages (fragments joined, masking removed) and control frames (ping, pong, close).
// permessage-deflate (RFC 7692) is inflated with node:zlib; with context takeover the sliding
// window carries over between messages, which inflateRawSync gets as its preset dictionary
// (the last 32 KiB of output is exactly the LZ77 window the sender may refer back to).
import zlib from "node:zlib";
import { ByteQueue } from "./byte-queue.ts";
import { concatBytes, copyBytes, type HeaderList } from "./types.ts";

export interface WsDeflateParams {
  /** permessage-deflate was negotiated (RSV1 marks compressed messages). */
  enabled: boolean;
  /** The sender of this direction resets its compression context after each message. */
  noContextTakeover: boolean;
}

export type WsOpcode = "text" | "binary";

export type WsItem =
  | {
      type: "message";
      opcode: WsOpcode;
      /** Unmasked, inflated payload (capped at maxMessageBytes). */
      data: Uint8Array;
      compressed: boolean;
      /** Payload bigger than maxMessageBytes: data holds the start only. */
      truncated: boolean;
      /** Arrival of the first and the last frame of the message. */
      startTs: number;
      ts: number;
    }
  | { type: "ping" | "pong"; data: Uint8Array; ts: number }
  | { type: "close"; code?: number; reason?: string; ts: number }
  /** fatal: framing is lost, nothing more is decoded on this direction. */
  | { type: "error"; message: string; fatal: boolean; ts: number };

export interface WebSocketDecoderOptions {
  deflate?: WsDeflateParams;
  /** Largest message kept (after inflating). Default 16 MiB. */
  maxMessageBytes?: number;
}

const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const WINDOW_BYTES = 32 * 1024;
/** 2 + 8 (64-bit length) + 4 (mask). */
const MAX_HEADER_BYTES = 14;
const DEFLATE_TAIL = Uint8Array.of(0x00, 0x00, 0xff, 0xff);

/** Reads the extension the server accepted (the 101 response's Sec-WebSocket-Extensions). */
export function negotiatedDeflate(responseHeaders: HeaderList): { c2s: WsDeflateParams; s2c: WsDeflateParams } {
  const value = responseHeaders
    .filter(([k]) => k.toLowerCase() === "sec-websocket-extensions")
    .map(([, v]) => v)
    .join(",");
  const off = { enabled: false, noContextTakeover: false };
  for (const ext of value.split(",")) {
    const [name, ...params] = ext.split(";").map((s) => s.trim().toLowerCase());
    if (name !== "permessage-deflate") continue;
    const has = (p: string) => params.some((x) => x.split("=")[0]!.trim() === p);
    return {
      c2s: { enabled: true, noContextTakeover: has("client_no_context_takeover") },
      s2c: { enabled: true, noContextTakeover: has("server_no_context_takeover") },
    };
  }
  return { c2s: off, s2c: { ...off } };
}

export class WebSocketDecoder {
  private readonly queue = new ByteQueue();
  private failed = false;
  private readonly deflate: WsDeflateParams;
  private readonly maxMessageBytes: number;
  /** Message being assembled from fragments. */
  private message?: { opcode: WsOpcode; compressed: boolean; parts: Uint8Array[]; size: number; truncated: boolean; startTs: number };
  /** Inflate window carried between messages (context takeover). */
  private window: Uint8Array = new Uint8Array(0);
  /** The inflate context was lost (a message too big to inflate): later compressed messages cannot be trusted. */
  private contextLost = false;

  constructor(opts: WebSocketDecoderOptions = {}) {
    this.deflate = opts.deflate ?? { enabled: false, noContextTakeover: false };
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  push(input: Uint8Array, ts: number): WsItem[] {
    const items: WsItem[] = [];
    if (this.failed || input.length === 0) return items;
    this.queue.push(input);
    for (;;) {
      const header = readHeader(this.queue.peek(Math.min(MAX_HEADER_BYTES, this.queue.length)), 0);
      if (header === undefined) break;
      if (typeof header === "string") return this.fatal(items, header, ts);
      const { fin, rsv1, opcode, masked, length, payloadStart } = header;
      if (opcode >= 8) {
        if (!fin || length > 125) return this.fatal(items, "control frame fragmented or longer than 125 bytes", ts);
        if (this.queue.length < payloadStart + length) break;
        const frame = this.queue.take(payloadStart + length);
        this.onControl(opcode, unmask(frame.subarray(payloadStart), masked, 0), ts, items);
        if (this.failed) return items;
        continue;
      }
      // A frame is taken whole: refuse one that could never fit the limit rather than hold it.
      if (length > this.maxMessageBytes + 1024) return this.fatal(items, `frame of ${length} bytes larger than the ${this.maxMessageBytes}-byte limit`, ts);
      if (this.queue.length < payloadStart + length) break;
      const data = unmask(this.queue.take(payloadStart + length).subarray(payloadStart), masked, 0);
      if (opcode !== 0) {
        if (this.message) return this.fatal(items, "new data frame inside a fragmented message", ts);
        if (opcode !== 1 && opcode !== 2) return this.fatal(items, `unknown opcode ${opcode}`, ts);
        if (rsv1 && !this.deflate.enabled) return this.fatal(items, "RSV1 set without permessage-deflate", ts);
        this.message = { opcode: opcode === 1 ? "text" : "binary", compressed: rsv1, parts: [], size: 0, truncated: false, startTs: ts };
      } else if (!this.message) return this.fatal(items, "continuation frame without a message", ts);
      else if (rsv1) return this.fatal(items, "RSV1 set on a continuation frame", ts);
      this.addPart(data);
      if (fin) this.finishMessage(ts, items);
    }
    return items;
  }

  private addPart(data: Uint8Array): void {
    const m = this.message!;
    // Compressed payloads are kept up to the limit too: their output is at least as large.
    const room = this.maxMessageBytes - m.size;
    if (data.length > room) {
      m.truncated = true;
      if (room > 0) m.parts.push(data.slice(0, room));
      m.size = this.maxMessageBytes;
      return;
    }
    m.parts.push(copyBytes(data));
    m.size += data.length;
  }

  private finishMessage(ts: number, items: WsItem[]): void {
    const m = this.message!;
    this.message = undefined;
    let data = concatBytes(m.parts);
    let truncated = m.truncated;
    if (m.compressed) {
      const inflated = this.inflate(data, truncated, ts, items);
      if (inflated === undefined) return;
      data = inflated.data;
      truncated ||= inflated.truncated;
    }
    items.push({ type: "message", opcode: m.opcode, data, compressed: m.compressed, truncated, startTs: m.startTs, ts });
  }

  private inflate(payload: Uint8Array, cut: boolean, ts: number, items: WsItem[]): { data: Uint8Array; truncated: boolean } | undefined {
    const takeover = !this.deflate.noContextTakeover;
    if (takeover && this.contextLost) {
      items.push({ type: "error", message: "permessage-deflate context lost earlier: compressed message skipped", fatal: false, ts });
      return undefined;
    }
    if (cut) {
      if (takeover) this.contextLost = true;
      items.push({ type: "error", message: `compressed message larger than ${this.maxMessageBytes} bytes: not inflated`, fatal: false, ts });
      return undefined;
    }
    try {
      const opts: zlib.ZlibOptions = { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: this.maxMessageBytes };
      if (takeover && this.window.length > 0) opts.dictionary = this.window;
      const out = new Uint8Array(zlib.inflateRawSync(concatBytes([payload, DEFLATE_TAIL]), opts));
      if (takeover) this.window = concatBytes([this.window, out]).slice(-WINDOW_BYTES);
      return { data: out, truncated: false };
    } catch (err) {
      if (takeover) this.contextLost = true;
      items.push({ type: "error", message: `permessage-deflate: ${(err as Error).message}`, fatal: false, ts });
      return undefined;
    }
  }

  private onControl(opcode: number, data: Uint8Array, ts: number, items: WsItem[]): void {
    switch (opcode) {
      case 8: {
        if (data.length === 1) {
          this.fatal(items, "close frame with a 1-byte payload", ts);
          return;
        }
        const item: WsItem = { type: "close", ts };
        if (data.length >= 2) {
          item.code = (data[0]! << 8) | data[1]!;
          item.reason = new TextDecoder().decode(data.subarray(2));
        }
        items.push(item);
        return;
      }
      case 9:
        items.push({ type: "ping", data, ts });
        return;
      case 10:
        items.push({ type: "pong", data, ts });
        return;
      default:
        this.fatal(items, `unknown control opcode ${opcode}`, ts);
    }
  }

  private fatal(items: WsItem[], message: string, ts: number): WsItem[] {
    this.failed = true;
    this.queue.clear();
    this.message = undefined;
    items.push({ type: "error", message: `websocket: ${message}`, fatal: true, ts });
    return items;
  }
}

interface FrameHeader {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  masked: Uint8Array | undefined;
  length: number;
  payloadStart: number;
}

/** Frame header at `pos`, undefined when incomplete, a string when invalid. */
function readHeader(buf: Uint8Array, pos: number): FrameHeader | string | undefined {
  if (buf.length - pos < 2) return undefined;
  const b0 = buf[pos]!;
  const b1 = buf[pos + 1]!;
  if (b0 & 0x30) return "RSV2/RSV3 set";
  let length = b1 & 0x7f;
  let at = pos + 2;
  if (length === 126) {
    if (buf.length - at < 2) return undefined;
    length = (buf[at]! << 8) | buf[at + 1]!;
    at += 2;
  } else if (length === 127) {
    if (buf.length - at < 8) return undefined;
    const high = ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
    const low = ((buf[at + 4]! << 24) | (buf[at + 5]! << 16) | (buf[at + 6]! << 8) | buf[at + 7]!) >>> 0;
    if (high > 0x1fffff) return "64-bit payload length out of range";
    length = high * 2 ** 32 + low;
    at += 8;
  }
  let masked: Uint8Array | undefined;
  if (b1 & 0x80) {
    if (buf.length - at < 4) return undefined;
    masked = buf.slice(at, at + 4);
    at += 4;
  }
  return { fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, opcode: b0 & 0x0f, masked, length, payloadStart: at };
}

function unmask(data: Uint8Array, key: Uint8Array | undefined, offset: number): Uint8Array {
  if (!key) return data;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ key[(i + offset) & 3]!;
  return out;
}

export type WsConnectionItem = WsItem & { dir: "c2s" | "s2c" };

/**
 * Both directions of an upgraded connection: one decoder per direction, permessage-deflate set up
 * from the 101 response's headers. Feed it the bytes that follow each direction's HTTP head.
 */
export class WebSocketConnection {
  private readonly decoders: Record<"c2s" | "s2c", WebSocketDecoder>;

  constructor(responseHeaders: HeaderList, opts: { maxMessageBytes?: number } = {}) {
    const deflate = negotiatedDeflate(responseHeaders);
    this.decoders = {
      c2s: new WebSocketDecoder({ deflate: deflate.c2s, maxMessageBytes: opts.maxMessageBytes }),
      s2c: new WebSocketDecoder({ deflate: deflate.s2c, maxMessageBytes: opts.maxMessageBytes }),
    };
  }

  push(dir: "c2s" | "s2c", bytes: Uint8Array, ts: number): WsConnectionItem[] {
    return this.decoders[dir].push(bytes, ts).map((item) => ({ ...item, dir }));
  }
}
