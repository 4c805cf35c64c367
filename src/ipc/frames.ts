// Wire format between `oisp redirect` and `oisp sensor` (and of the redirector's disk spool).
// Sans-IO: encodeFrame() gives bytes, FrameDecoder takes bytes in any split and gives frames.
//
// Layout of one frame (big-endian):
//   u8  magic/version (0xA1: "OISP IPC v1")
//   u8  type          (1 hello, 2 open, 3 data, 4 close, 5 welcome, 6 ack)
//   u32 header length (UTF-8 JSON, validated with zod)
//   u32 payload length (raw bytes; only data frames carry one)
//   header JSON, then payload.
//
// Protocol revisions ride in the hello and the welcome (`proto`, absent = 1), inside the v1 framing:
//   1  frames flow one way; what a sensor had when it died is lost.
//   2  acknowledgements: the sensor sends `ack` frames naming connections whose events are durably
//      stored; the redirector keeps every frame of an unacknowledged connection and, after a reconnect,
//      resends those connections from their open frame. A sensor sends acks only to a peer whose hello
//      said proto >= 2 (a proto-1 redirector would reject the unknown frame type); a redirector keeps
//      frames only when the welcome said proto >= 2 (a proto-1 sensor never acks).
//   3  `activity` frames (redirector → sensor): process.exec / file.write activity of the eBPF source. Sent
//      only to a sensor whose welcome said proto >= 3, only while connected (never spooled, never acked:
//      lost if the sensor dies, counted), so an older sensor never sees the unknown type.
import { z } from "zod";
import type { HostActivity } from "../tap/activity.ts";
import { PASSTHROUGH_CODES, type ConnMeta, type Direction } from "../tap/types.ts";

export const FRAME_MAGIC = 0xa1;
export const FRAME_PREFIX_BYTES = 10;
export const MAX_HEADER_BYTES = 64 * 1024;
export const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
/** The IPC protocol revision this build speaks (see above). */
export const IPC_PROTO = 3;
/** Connection ids per ack frame: 200 ids of the longest allowed length (256) fit the 64 KiB header. */
export const MAX_ACK_IDS = 200;

export type IpcFrame =
  | { t: "hello"; token: string; version: string; pid: number; runId: string; proto?: number }
  | { t: "open"; meta: ConnMeta }
  | { t: "data"; connId: string; dir: Direction; ts: number; bytes: Uint8Array }
  | { t: "close"; connId: string; ts: number; error?: string }
  /** Sensor → redirector after a good hello: frames sent from now on are accepted. */
  | { t: "welcome"; version: string; proto?: number }
  /** Sensor → redirector (proto >= 2): these connections are closed and their events durably stored. */
  | { t: "ack"; connIds: string[] }
  /** Redirector → sensor (proto >= 3): programs started and files written by watched processes. */
  | { t: "activity"; items: HostActivity[] };

export type IpcFrameType = IpcFrame["t"];

const TYPE_CODES: Record<IpcFrameType, number> = { hello: 1, open: 2, data: 3, close: 4, welcome: 5, ack: 6, activity: 7 };
const TYPE_NAMES: Record<number, IpcFrameType> = { 1: "hello", 2: "open", 3: "data", 4: "close", 5: "welcome", 6: "ack", 7: "activity" };

// Header schemas mirror src/tap/types.ts. Metadata objects are loose so an optional field added to
// ConnMeta later survives the trip without touching this file; the 64 KiB header limit bounds them.
const Str = z.string().max(8192);
const ConnIdSchema = z.string().min(1).max(256);
const EndpointSchema = z.object({ ip: Str, port: z.int().min(0).max(65535) });
const ProcessInfoSchema = z.looseObject({
  pid: z.int().nonnegative(),
  ppid: z.int().nonnegative().optional(),
  exe: Str.optional(),
  name: Str.optional(),
  cmdline: z.string().max(32768).optional(),
  user: Str.optional(),
  uid: z.int().optional(),
});
const ConnMetaSchema = z.looseObject({
  connId: ConnIdSchema,
  startedAt: z.number(),
  client: EndpointSchema,
  server: EndpointSchema,
  host: Str,
  port: z.int().min(1).max(65535).optional(),
  sni: Str.optional(),
  alpn: Str.optional(),
  mode: z.enum(["mitm", "plain", "passthrough"]),
  passthroughCode: z.enum(PASSTHROUGH_CODES).optional(),
  passthroughReason: Str.optional(),
  upstreamConnectMs: z.number().optional(),
  upstreamError: Str.optional(),
  process: ProcessInfoSchema.optional(),
  captureMethod: z.enum(["mitm_proxy", "windivert", "ebpf_uprobe", "ebpf_tracepoint"]),
});

// HostActivity (src/tap/activity.ts), closed: the sensor builds events from these fields as they are.
const Int = z.int();
const ExecActivitySchema = z.strictObject({
  kind: z.literal("exec"),
  ts: z.number(),
  pid: Int.nonnegative(),
  ppid: Int.nonnegative(),
  uid: Int.nonnegative(),
  comm: Str,
  exe: Str,
  argv: z.array(Str).max(4096),
  argvTruncated: z.boolean(),
  cwd: Str.optional(),
});
const FileWriteActivitySchema = z.strictObject({
  kind: z.literal("file_write"),
  ts: z.number(),
  endTs: z.number(),
  pid: Int.nonnegative(),
  ppid: Int.nonnegative().optional(),
  uid: Int.nonnegative().optional(),
  comm: Str.optional(),
  exe: Str.optional(),
  path: Str,
  inode: z.number().nonnegative().optional(),
  bytes: z.number().nonnegative(),
  writes: Int.nonnegative(),
  offset: z.number().optional(),
  contentHash: Str.optional(),
  hashedBytes: z.number().nonnegative(),
  preview: z.string().max(1024).optional(),
  flushedBy: Str,
});

const HeaderSchemas = {
  hello: z.object({ token: z.string().max(1024), version: Str, pid: z.int().nonnegative(), runId: z.string().min(1).max(256), proto: z.int().min(1).optional() }),
  open: z.object({ meta: ConnMetaSchema }),
  data: z.object({ connId: ConnIdSchema, dir: z.enum(["c2s", "s2c"]), ts: z.number() }),
  close: z.object({ connId: ConnIdSchema, ts: z.number(), error: Str.optional() }),
  welcome: z.object({ version: Str, proto: z.int().min(1).optional() }),
  ack: z.object({ connIds: z.array(ConnIdSchema).max(MAX_ACK_IDS) }),
  activity: z.object({ items: z.array(z.discriminatedUnion("kind", [ExecActivitySchema, FileWriteActivitySchema])).min(1).max(1024) }),
} as const;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** Raised only by encodeFrame, for frames our own code built wrong (over a limit). */
export class FrameEncodeError extends Error {
  override name = "FrameEncodeError";
}

/** One frame as bytes. Throws FrameEncodeError if a limit is exceeded; callers that must not throw catch it. */
export function encodeFrame(frame: IpcFrame): Uint8Array {
  const { header, payload } = splitFrame(frame);
  const headerBytes = utf8Encoder.encode(JSON.stringify(header));
  if (headerBytes.length > MAX_HEADER_BYTES) throw new FrameEncodeError(`ipc: ${frame.t} header is ${headerBytes.length} bytes (max ${MAX_HEADER_BYTES})`);
  if (payload.length > MAX_PAYLOAD_BYTES) throw new FrameEncodeError(`ipc: payload is ${payload.length} bytes (max ${MAX_PAYLOAD_BYTES})`);
  const out = new Uint8Array(FRAME_PREFIX_BYTES + headerBytes.length + payload.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, FRAME_MAGIC);
  view.setUint8(1, TYPE_CODES[frame.t]);
  view.setUint32(2, headerBytes.length);
  view.setUint32(6, payload.length);
  out.set(headerBytes, FRAME_PREFIX_BYTES);
  out.set(payload, FRAME_PREFIX_BYTES + headerBytes.length);
  return out;
}

function splitFrame(frame: IpcFrame): { header: object; payload: Uint8Array } {
  if (frame.t === "data") {
    const { t: _t, bytes, ...header } = frame;
    return { header, payload: bytes };
  }
  const { t: _t, ...header } = frame;
  return { header, payload: new Uint8Array(0) };
}

export interface FramePrefix {
  type: IpcFrameType;
  headerLength: number;
  payloadLength: number;
  /** Prefix + header + payload. */
  totalLength: number;
}

/** Checks the fixed 10-byte prefix. Shared by the decoder and the spool reader. */
export function parseFramePrefix(prefix: Uint8Array): FramePrefix | { error: string } {
  if (prefix.length < FRAME_PREFIX_BYTES) return { error: "short frame prefix" };
  const view = new DataView(prefix.buffer, prefix.byteOffset, FRAME_PREFIX_BYTES);
  const magic = view.getUint8(0);
  if (magic !== FRAME_MAGIC) return { error: `bad magic byte 0x${magic.toString(16).padStart(2, "0")} (not an OISP IPC v1 peer)` };
  const code = view.getUint8(1);
  const type = TYPE_NAMES[code];
  if (!type) return { error: `unknown frame type ${code}` };
  const headerLength = view.getUint32(2);
  const payloadLength = view.getUint32(6);
  if (headerLength > MAX_HEADER_BYTES) return { error: `${type} header too large: ${headerLength} bytes (max ${MAX_HEADER_BYTES})` };
  if (payloadLength > MAX_PAYLOAD_BYTES) return { error: `${type} payload too large: ${payloadLength} bytes (max ${MAX_PAYLOAD_BYTES})` };
  if (type !== "data" && payloadLength !== 0) return { error: `${type} frame must not carry a payload (${payloadLength} bytes)` };
  return { type, headerLength, payloadLength, totalLength: FRAME_PREFIX_BYTES + headerLength + payloadLength };
}

/** Header JSON + payload → a validated frame, or a reason. (Wrapped: a close frame has its own `error` field.) */
export function parseFrameBody(type: IpcFrameType, headerBytes: Uint8Array, payload: Uint8Array): { frame: IpcFrame } | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(utf8Decoder.decode(headerBytes));
  } catch {
    return { error: `${type} header is not valid UTF-8 JSON` };
  }
  const parsed = HeaderSchemas[type].safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "header";
    return { error: `${type} header invalid at ${where}: ${issue?.message ?? "schema mismatch"}` };
  }
  if (type === "data") return { frame: { t: "data", ...(parsed.data as z.infer<typeof HeaderSchemas.data>), bytes: payload } };
  return { frame: { t: type, ...parsed.data } as IpcFrame };
}

/**
 * The connection an encoded open/data/close frame belongs to (undefined for other frames or bad bytes).
 * Used for frames read back from the spool, which are stored as bytes only.
 */
export function frameConnection(frame: Uint8Array): { connId: string; kind: "open" | "data" | "close" } | undefined {
  const prefix = parseFramePrefix(frame);
  if ("error" in prefix || frame.length < FRAME_PREFIX_BYTES + prefix.headerLength) return undefined;
  if (prefix.type !== "open" && prefix.type !== "data" && prefix.type !== "close") return undefined;
  const header = frame.subarray(FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + prefix.headerLength);
  const body = parseFrameBody(prefix.type, header, new Uint8Array(0));
  if (!("frame" in body)) return undefined;
  const f = body.frame;
  if (f.t === "open") return { connId: f.meta.connId, kind: "open" };
  if (f.t === "data" || f.t === "close") return { connId: f.connId, kind: f.t };
  return undefined;
}

export interface DecodeResult {
  frames: IpcFrame[];
  /** Set once the stream is unusable (garbage, over a limit); the decoder then stays failed. */
  error?: string;
}

/**
 * Incremental decoder. Bytes go straight into a buffer sized for the part being read (prefix, header,
 * payload), so a 4 MiB payload arriving in small chunks is copied once, not once per chunk.
 */
export class FrameDecoder {
  private stage: "prefix" | "header" | "payload" = "prefix";
  private buf = new Uint8Array(FRAME_PREFIX_BYTES);
  private filled = 0;
  private prefix?: FramePrefix;
  private headerBytes = new Uint8Array(0);
  private failure?: string;

  push(bytes: Uint8Array): DecodeResult {
    const frames: IpcFrame[] = [];
    if (this.failure) return { frames, error: this.failure };
    let offset = 0;
    while (true) {
      const need = this.buf.length - this.filled;
      const take = Math.min(need, bytes.length - offset);
      this.buf.set(bytes.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled < this.buf.length) break; // wait for more bytes
      const error = this.advance(frames);
      if (error) {
        this.failure = error;
        return { frames, error };
      }
      if (offset >= bytes.length && this.buf.length > 0) break;
    }
    return { frames };
  }

  /** Bytes of an unfinished frame held right now (0 between frames). */
  get pendingBytes(): number {
    if (this.stage === "prefix") return this.filled;
    return FRAME_PREFIX_BYTES + (this.stage === "payload" ? this.headerBytes.length : 0) + this.filled;
  }

  /** The current part is complete: move to the next one, emitting a frame when the payload is done. */
  private advance(frames: IpcFrame[]): string | undefined {
    switch (this.stage) {
      case "prefix": {
        const prefix = parseFramePrefix(this.buf);
        if ("error" in prefix) return prefix.error;
        this.prefix = prefix;
        this.begin("header", prefix.headerLength);
        return undefined;
      }
      case "header":
        this.headerBytes = this.buf;
        this.begin("payload", this.prefix!.payloadLength);
        return undefined;
      case "payload": {
        const body = parseFrameBody(this.prefix!.type, this.headerBytes, this.buf);
        if (!("frame" in body)) return body.error;
        frames.push(body.frame);
        this.headerBytes = new Uint8Array(0);
        this.prefix = undefined;
        this.begin("prefix", FRAME_PREFIX_BYTES);
        return undefined;
      }
    }
  }

  private begin(stage: FrameDecoder["stage"], size: number): void {
    this.stage = stage;
    this.buf = new Uint8Array(size);
    this.filled = 0;
  }
}
