// AWS event stream (application/vnd.amazon.eventstream), sans-IO: push body bytes, get messages.
// Message: total length (4) | headers length (4) | prelude CRC32 (4) | headers | payload | message CRC32 (4).
// Both CRCs are checked. A bad message CRC skips that message (reported, its length was vouched
// for by the prelude CRC); a bad prelude CRC means the framing itself cannot be trusted, so the
// decoder reports it and stops.
import zlib from "node:zlib";
import { ByteQueue } from "./byte-queue.ts";

export type EventStreamHeaderValue = boolean | number | bigint | string | Uint8Array | Date;

export interface EventStreamMessage {
  headers: Record<string, EventStreamHeaderValue>;
  payload: Uint8Array;
}

export type EventStreamItem = { type: "message"; message: EventStreamMessage } | { type: "error"; message: string; fatal: boolean };

export interface EventStreamDecoderOptions {
  /** Largest message accepted. AWS allows 16 MiB (+ prelude); default 24 MiB. */
  maxMessageBytes?: number;
}

const PRELUDE_BYTES = 12;
const MIN_MESSAGE_BYTES = 16;
const DEFAULT_MAX_MESSAGE_BYTES = 24 * 1024 * 1024;

const crc32 = (data: Uint8Array, initial = 0): number => (zlib as unknown as { crc32(d: Uint8Array, v?: number): number }).crc32(data, initial) >>> 0;

export class EventStreamDecoder {
  private readonly queue = new ByteQueue();
  private failed = false;
  private readonly maxMessageBytes: number;
  private _messages = 0;
  private _badMessages = 0;

  constructor(opts: EventStreamDecoderOptions = {}) {
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  get messageCount(): number {
    return this._messages;
  }

  /** Messages skipped because their CRC or headers were wrong. */
  get badMessages(): number {
    return this._badMessages;
  }

  push(input: Uint8Array): EventStreamItem[] {
    const items: EventStreamItem[] = [];
    if (this.failed || input.length === 0) return items;
    this.queue.push(input);
    while (this.queue.length >= PRELUDE_BYTES) {
      const prelude = this.queue.peek(PRELUDE_BYTES);
      const view = new DataView(prelude.buffer, prelude.byteOffset, PRELUDE_BYTES);
      const total = view.getUint32(0);
      const headersLength = view.getUint32(4);
      if (crc32(prelude.subarray(0, 8)) !== view.getUint32(8)) return this.fatal(items, "event stream: prelude CRC mismatch");
      if (total < MIN_MESSAGE_BYTES || headersLength > total - MIN_MESSAGE_BYTES) return this.fatal(items, `event stream: bad lengths (total ${total}, headers ${headersLength})`);
      if (total > this.maxMessageBytes) return this.fatal(items, `event stream: message of ${total} bytes exceeds ${this.maxMessageBytes}`);
      if (this.queue.length < total) break;
      const message = this.queue.take(total);
      const messageCrc = new DataView(message.buffer, message.byteOffset, total).getUint32(total - 4);
      if (crc32(message.subarray(0, total - 4)) !== messageCrc) {
        this._badMessages++;
        items.push({ type: "error", message: "event stream: message CRC mismatch (message skipped)", fatal: false });
        continue;
      }
      const headers = parseHeaders(message.subarray(PRELUDE_BYTES, PRELUDE_BYTES + headersLength));
      if (typeof headers === "string") {
        this._badMessages++;
        items.push({ type: "error", message: `event stream: ${headers} (message skipped)`, fatal: false });
        continue;
      }
      this._messages++;
      items.push({ type: "message", message: { headers, payload: message.slice(PRELUDE_BYTES + headersLength, total - 4) } });
    }
    return items;
  }

  /** The body ended: leftover bytes mean a cut message. */
  end(): EventStreamItem[] {
    if (this.failed || this.queue.length === 0) return [];
    const n = this.queue.length;
    this.queue.clear();
    return [{ type: "error", message: `event stream: body ended inside a message (${n} bytes left)`, fatal: true }];
  }

  private fatal(items: EventStreamItem[], message: string): EventStreamItem[] {
    this.failed = true;
    this.queue.clear();
    items.push({ type: "error", message, fatal: true });
    return items;
  }
}

const utf8 = new TextDecoder("utf-8");

function parseHeaders(bytes: Uint8Array): Record<string, EventStreamHeaderValue> | string {
  const headers: Record<string, EventStreamHeaderValue> = {};
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > bytes.length) throw new RangeError("header runs past the header section");
  };
  try {
    while (pos < bytes.length) {
      need(1);
      const nameLength = bytes[pos++]!;
      need(nameLength + 1);
      const name = utf8.decode(bytes.subarray(pos, pos + nameLength));
      pos += nameLength;
      const type = bytes[pos++]!;
      let value: EventStreamHeaderValue;
      switch (type) {
        case 0:
          value = true;
          break;
        case 1:
          value = false;
          break;
        case 2:
          need(1);
          value = view.getInt8(pos);
          pos += 1;
          break;
        case 3:
          need(2);
          value = view.getInt16(pos);
          pos += 2;
          break;
        case 4:
          need(4);
          value = view.getInt32(pos);
          pos += 4;
          break;
        case 5:
          need(8);
          value = view.getBigInt64(pos);
          pos += 8;
          break;
        case 6:
        case 7: {
          need(2);
          const len = view.getUint16(pos);
          pos += 2;
          need(len);
          const raw = bytes.slice(pos, pos + len);
          value = type === 7 ? utf8.decode(raw) : raw;
          pos += len;
          break;
        }
        case 8:
          need(8);
          value = new Date(Number(view.getBigInt64(pos)));
          pos += 8;
          break;
        case 9: {
          need(16);
          const hex = Buffer.from(bytes.subarray(pos, pos + 16)).toString("hex");
          value = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
          pos += 16;
          break;
        }
        default:
          return `unknown header value type ${type}`;
      }
      headers[name] = value;
    }
  } catch (err) {
    return (err as Error).message;
  }
  return headers;
}

/** Whole-body convenience for records already received. */
export function parseEventStream(body: Uint8Array, opts?: EventStreamDecoderOptions): EventStreamItem[] {
  const dec = new EventStreamDecoder(opts);
  return [...dec.push(body), ...dec.end()];
}
