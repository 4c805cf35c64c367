// HTTP/2 framing (RFC 9113 §4, §6) for one direction of a connection, sans-IO: push bytes with
// their arrival time, get whole frames. The client direction starts with the connection preface.
// A frame is buffered until complete; its size is bounded by the receiver's SETTINGS_MAX_FRAME_SIZE.

export const CLIENT_PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

const ERROR_NAMES = [
  "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED",
  "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
];

export function errorCodeName(code: number): string {
  return ERROR_NAMES[code] ?? `0x${code.toString(16)}`;
}

export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const FRAME_HEADER_BYTES = 9;

export interface H2Frame {
  type: number;
  flags: number;
  streamId: number;
  /** Payload as sent (padding still in). Owned by the caller. */
  payload: Uint8Array;
  /** Arrival of the frame's first byte. */
  startTs: number;
  /** Arrival of its last byte. */
  ts: number;
}

export type FrameReaderResult = { frames: H2Frame[]; error?: string };

export class H2FrameReader {
  private prefaceLeft: number;
  private header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private payload?: Uint8Array;
  private payloadFill = 0;
  private type = 0;
  private flags = 0;
  private streamId = 0;
  private startTs = 0;
  private maxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  private failed = false;

  constructor(expectPreface: boolean) {
    this.prefaceLeft = expectPreface ? CLIENT_PREFACE.length : 0;
  }

  /** The receiver of this direction advertised SETTINGS_MAX_FRAME_SIZE (RFC 9113 §6.5.2). */
  setMaxFrameSize(size: number): void {
    // Passive: a larger value may be in force before we see the ACK, a smaller one only after.
    this.maxFrameSize = Math.max(this.maxFrameSize, Math.min(size, 0xffffff));
  }

  push(input: Uint8Array, ts: number): FrameReaderResult {
    const frames: H2Frame[] = [];
    if (this.failed) return { frames };
    let pos = 0;
    while (pos < input.length) {
      if (this.prefaceLeft > 0) {
        const at = CLIENT_PREFACE.length - this.prefaceLeft;
        const n = Math.min(this.prefaceLeft, input.length - pos);
        for (let i = 0; i < n; i++) {
          if (input[pos + i] !== CLIENT_PREFACE[at + i]) return this.fail(frames, "not HTTP/2: missing client connection preface");
        }
        this.prefaceLeft -= n;
        pos += n;
        continue;
      }
      if (!this.payload) {
        if (this.headerFill === 0) this.startTs = ts;
        const n = Math.min(FRAME_HEADER_BYTES - this.headerFill, input.length - pos);
        this.header.set(input.subarray(pos, pos + n), this.headerFill);
        this.headerFill += n;
        pos += n;
        if (this.headerFill < FRAME_HEADER_BYTES) break;
        const h = this.header;
        const length = (h[0]! << 16) | (h[1]! << 8) | h[2]!;
        this.type = h[3]!;
        this.flags = h[4]!;
        this.streamId = ((h[5]! & 0x7f) << 24) | (h[6]! << 16) | (h[7]! << 8) | h[8]!;
        if (length > this.maxFrameSize) return this.fail(frames, `frame of ${length} bytes exceeds the maximum frame size ${this.maxFrameSize}`);
        this.payload = new Uint8Array(length);
        this.payloadFill = 0;
      }
      const n = Math.min(this.payload.length - this.payloadFill, input.length - pos);
      this.payload.set(input.subarray(pos, pos + n), this.payloadFill);
      this.payloadFill += n;
      pos += n;
      if (this.payloadFill === this.payload.length) {
        frames.push({ type: this.type, flags: this.flags, streamId: this.streamId, payload: this.payload, startTs: this.startTs, ts });
        this.payload = undefined;
        this.headerFill = 0;
      }
    }
    return { frames };
  }

  /** True when the direction ended in the middle of a frame (or of the preface). */
  get midFrame(): boolean {
    return this.headerFill > 0 || this.payload !== undefined || (this.prefaceLeft > 0 && this.prefaceLeft < CLIENT_PREFACE.length);
  }

  private fail(frames: H2Frame[], error: string): FrameReaderResult {
    this.failed = true;
    return { frames, error };
  }
}

/** Payload without its padding (PADDED flag, RFC 9113 §6.1), and without `skip` leading bytes after the pad length. */
export function unpad(frame: H2Frame, skip = 0): Uint8Array | string {
  const p = frame.payload;
  if ((frame.flags & Flag.PADDED) === 0) {
    if (p.length < skip) return "frame too short";
    return p.subarray(skip);
  }
  if (p.length < 1) return "padded frame without a pad length";
  const padLength = p[0]!;
  if (1 + skip + padLength > p.length) return "padding longer than the frame";
  return p.subarray(1 + skip, p.length - padLength);
}

export function readUint32(p: Uint8Array, at: number): number {
  return ((p[at]! << 24) | (p[at + 1]! << 16) | (p[at + 2]! << 8) | p[at + 3]!) >>> 0;
}

/** SETTINGS payload as [id, value] pairs, or an error string (length not a multiple of 6). */
export function parseSettings(payload: Uint8Array): Array<[number, number]> | string {
  if (payload.length % 6 !== 0) return `SETTINGS length ${payload.length} is not a multiple of 6`;
  const out: Array<[number, number]> = [];
  for (let i = 0; i < payload.length; i += 6) out.push([(payload[i]! << 8) | payload[i + 1]!, readUint32(payload, i + 2)]);
  return out;
}
