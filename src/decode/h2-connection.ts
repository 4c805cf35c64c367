// Passive HTTP/2 decoder of both directions of one connection (RFC 9113). Sans-IO like
// HttpConnectionDecoder and with the same outputs, so the pipeline treats h1 and h2 alike:
// "request" once a stream's request ended, "exchange" once its response ended (or the stream was
// reset, refused by GOAWAY, or the connection ended), "protocol-error" when the connection cannot
// be decoded any further. exchange.seq is the stream id, httpVersion "2". Each direction has its
// own frame reader and HPACK decoder (a direction's headers are compressed by its sender).
// Flow control is only observed, never enforced: the relay is what carries the bytes.
import type { Direction } from "../tap/types.ts";
import type { ConnectionOutput, ConnectionStats } from "./connection-decoder.ts";
import { ContentDecoder, parseCodings } from "./encodings.ts";
import { HpackDecoder } from "./hpack.ts";
import { CLIENT_PREFACE, Flag, FrameType, H2FrameReader, Setting, errorCodeName, parseSettings, readUint32, unpad, type H2Frame } from "./http2.ts";
import { endDecoding, settleBody, TimedChunkCollector } from "./timed-chunks.ts";
import { concatBytes, httpExchange, type HeaderList, type HttpExchange, type HttpRequestRecord, type HttpResponseRecord } from "./types.ts";

export interface H2ConnectionDecoderOptions {
  /** Decoded body bytes kept per message. Default 16 MiB. */
  maxBodyBytes?: number;
  /** Largest header block (HEADERS + CONTINUATION) accepted, compressed. Default 256 KiB. */
  maxHeaderBlockBytes?: number;
  /** Largest decoded header list kept per block. Default 256 KiB. */
  maxHeaderListBytes?: number;
  /** Streams tracked at once; further streams are relayed but not decoded (counted). Default 1000. */
  maxOpenStreams?: number;
}

export interface H2ConnectionStats extends ConnectionStats {
  /** Streams not decoded because maxOpenStreams were already open. */
  untrackedStreams: number;
  /** Server-pushed streams skipped. */
  pushedStreams: number;
}

const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
const DEFAULT_MAX_HEADER_BLOCK_BYTES = 256 * 1024;
const DEFAULT_MAX_OPEN_STREAMS = 1000;

interface Side<R> {
  record: R;
  decoder: ContentDecoder;
  body: TimedChunkCollector;
  done: boolean;
}

interface StreamState {
  id: number;
  request: Side<HttpRequestRecord>;
  response?: Side<HttpResponseRecord>;
  requestEmitted: boolean;
}

interface PendingBlock {
  streamId: number;
  /** HEADERS, or PUSH_PROMISE whose block is decoded only to keep HPACK in sync. */
  type: number;
  fragments: Uint8Array[];
  size: number;
  endStream: boolean;
  startTs: number;
}

class H2Failure extends Error {}

export class H2ConnectionDecoder {
  private readonly maxBodyBytes: number;
  private readonly maxHeaderBlockBytes: number;
  private readonly maxOpenStreams: number;
  private readonly readers: Record<Direction, H2FrameReader> = { c2s: new H2FrameReader(true), s2c: new H2FrameReader(false) };
  private readonly hpack: Record<Direction, HpackDecoder>;
  private readonly blocks: Record<Direction, PendingBlock | undefined> = { c2s: undefined, s2c: undefined };
  private readonly streams = new Map<number, StreamState>();
  /** Highest client stream id seen: lower new ids are protocol errors, ids we skipped stay skipped. */
  private lastClientStream = 0;
  private stopped = false;
  private readonly counters: H2ConnectionStats = { exchanges: 0, bytesIn: 0, truncatedBodies: 0, errors: 0, untrackedStreams: 0, pushedStreams: 0 };

  constructor(
    readonly connId: string,
    opts: H2ConnectionDecoderOptions = {},
  ) {
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.maxHeaderBlockBytes = opts.maxHeaderBlockBytes ?? DEFAULT_MAX_HEADER_BLOCK_BYTES;
    this.maxOpenStreams = opts.maxOpenStreams ?? DEFAULT_MAX_OPEN_STREAMS;
    const hpackOpts = { maxHeaderListSize: opts.maxHeaderListBytes };
    this.hpack = { c2s: new HpackDecoder(hpackOpts), s2c: new HpackDecoder(hpackOpts) };
  }

  push(dir: Direction, bytes: Uint8Array, ts: number): ConnectionOutput[] {
    this.counters.bytesIn += bytes.length;
    if (this.stopped) return [];
    const out: ConnectionOutput[] = [];
    try {
      const { frames, error } = this.readers[dir].push(bytes, ts);
      for (const frame of frames) {
        this.onFrame(dir, frame, out);
        if (this.stopped) return out;
      }
      if (error !== undefined) this.fail(dir, error, ts, out);
    } catch (err) {
      const message = err instanceof H2Failure ? err.message : `internal decoder error: ${(err as Error).message}`;
      this.fail(dir, message, ts, out);
    }
    return out;
  }

  close(ts: number, error?: string): ConnectionOutput[] {
    if (this.stopped) return [];
    const out: ConnectionOutput[] = [];
    const cut = (["c2s", "s2c"] as const).find((d) => this.readers[d].midFrame);
    this.endAll(ts, out, error ?? (cut ? `connection closed inside a frame (${cut})` : "connection closed"));
    this.stopped = true;
    return out;
  }

  stats(): H2ConnectionStats {
    return { ...this.counters };
  }

  private onFrame(dir: Direction, frame: H2Frame, out: ConnectionOutput[]): void {
    const pending = this.blocks[dir];
    if (pending && (frame.type !== FrameType.CONTINUATION || frame.streamId !== pending.streamId)) {
      throw new H2Failure(`expected CONTINUATION for stream ${pending.streamId}, got frame type ${frame.type} on stream ${frame.streamId}`);
    }
    switch (frame.type) {
      case FrameType.DATA:
        return this.onData(dir, frame, out);
      case FrameType.HEADERS: {
        if (frame.streamId === 0) throw new H2Failure("HEADERS on stream 0");
        const fragment = unpad(frame, frame.flags & Flag.PRIORITY ? 5 : 0);
        if (typeof fragment === "string") throw new H2Failure(`HEADERS: ${fragment}`);
        return this.startBlock(dir, frame, FrameType.HEADERS, fragment, out);
      }
      case FrameType.CONTINUATION:
        if (!pending) throw new H2Failure("CONTINUATION without HEADERS");
        return this.addFragment(dir, pending, frame.payload, frame.flags, frame.ts, out);
      case FrameType.PUSH_PROMISE: {
        if (dir === "c2s") throw new H2Failure("PUSH_PROMISE sent by the client");
        const rest = unpad(frame, 4);
        if (typeof rest === "string") throw new H2Failure(`PUSH_PROMISE: ${rest}`);
        this.counters.pushedStreams++;
        return this.startBlock(dir, frame, FrameType.PUSH_PROMISE, rest, out);
      }
      case FrameType.SETTINGS:
        return this.onSettings(dir, frame);
      case FrameType.RST_STREAM:
        if (frame.payload.length !== 4 || frame.streamId === 0) throw new H2Failure("malformed RST_STREAM");
        return this.onReset(dir, frame.streamId, readUint32(frame.payload, 0), frame.ts, out);
      case FrameType.GOAWAY:
        if (frame.payload.length < 8 || frame.streamId !== 0) throw new H2Failure("malformed GOAWAY");
        return this.onGoaway(dir, readUint32(frame.payload, 0) & 0x7fffffff, readUint32(frame.payload, 4), frame.ts, out);
      case FrameType.PING:
        if (frame.payload.length !== 8 || frame.streamId !== 0) throw new H2Failure("malformed PING");
        return;
      case FrameType.PRIORITY:
        if (frame.payload.length !== 5) throw new H2Failure("malformed PRIORITY");
        return;
      case FrameType.WINDOW_UPDATE:
        if (frame.payload.length !== 4) throw new H2Failure("malformed WINDOW_UPDATE");
        return;
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  private onSettings(dir: Direction, frame: H2Frame): void {
    if (frame.streamId !== 0) throw new H2Failure("SETTINGS on a stream");
    if (frame.flags & Flag.ACK) {
      if (frame.payload.length !== 0) throw new H2Failure("SETTINGS ACK with a payload");
      return;
    }
    const settings = parseSettings(frame.payload);
    if (typeof settings === "string") throw new H2Failure(settings);
    // Settings bind the sender as a receiver: they limit what the other direction may send.
    const other: Direction = dir === "c2s" ? "s2c" : "c2s";
    for (const [id, value] of settings) {
      if (id === Setting.HEADER_TABLE_SIZE) this.hpack[other].setProtocolMaxTableSize(value);
      else if (id === Setting.MAX_FRAME_SIZE) {
        if (value < 16_384 || value > 0xffffff) throw new H2Failure(`invalid SETTINGS_MAX_FRAME_SIZE ${value}`);
        this.readers[other].setMaxFrameSize(value);
      }
    }
  }

  private startBlock(dir: Direction, frame: H2Frame, type: number, fragment: Uint8Array, out: ConnectionOutput[]): void {
    const block: PendingBlock = { streamId: frame.streamId, type, fragments: [], size: 0, endStream: (frame.flags & Flag.END_STREAM) !== 0, startTs: frame.startTs };
    if (type === FrameType.PUSH_PROMISE) block.endStream = false;
    this.blocks[dir] = block;
    this.addFragment(dir, block, fragment, frame.flags, frame.ts, out);
  }

  private addFragment(dir: Direction, block: PendingBlock, fragment: Uint8Array, flags: number, ts: number, out: ConnectionOutput[]): void {
    block.size += fragment.length;
    if (block.size > this.maxHeaderBlockBytes) throw new H2Failure(`header block larger than ${this.maxHeaderBlockBytes} bytes`);
    block.fragments.push(fragment);
    if ((flags & Flag.END_HEADERS) === 0) return;
    this.blocks[dir] = undefined;
    const decoded = this.hpack[dir].decode(concatBytes(block.fragments));
    if (!decoded.ok) throw new H2Failure(`HPACK (${dir}): ${decoded.error}`);
    if (block.type === FrameType.PUSH_PROMISE) return;
    if (dir === "c2s") this.onRequestHeaders(block, decoded.headers, ts, out);
    else this.onResponseHeaders(block, decoded.headers, ts, out);
  }

  private onRequestHeaders(block: PendingBlock, headers: HeaderList, ts: number, out: ConnectionOutput[]): void {
    const id = block.streamId;
    const stream = this.streams.get(id);
    if (stream) {
      // Trailers: they can only end the request.
      if (block.endStream) this.endRequest(stream, ts, out);
      return;
    }
    if (id % 2 === 0) throw new H2Failure(`client opened even stream ${id}`);
    if (id <= this.lastClientStream) return; // a stream we skipped or already finished: trailers or a late frame
    this.lastClientStream = id;
    if (this.streams.size >= this.maxOpenStreams) {
      this.counters.untrackedStreams++;
      return;
    }
    const { pseudo, regular } = splitPseudo(headers);
    const authority = pseudo.get(":authority") ?? regular.find(([k]) => k === "host")?.[1] ?? "";
    const record: HttpRequestRecord = {
      method: pseudo.get(":method") ?? "",
      path: pseudo.get(":path") ?? (pseudo.get(":method") === "CONNECT" ? authority : ""),
      host: authority.trim().toLowerCase().replace(/^.*@/, "").replace(/:(80|443)$/, ""),
      httpVersion: "2",
      headers: regular,
      body: new Uint8Array(0),
      bodyTruncated: false,
      startTs: block.startTs,
      endTs: ts,
    };
    const created: StreamState = { id, request: this.side(record, regular), requestEmitted: false };
    this.streams.set(id, created);
    if (block.endStream) this.endRequest(created, ts, out);
  }

  private onResponseHeaders(block: PendingBlock, headers: HeaderList, ts: number, out: ConnectionOutput[]): void {
    const stream = this.streams.get(block.streamId);
    if (!stream) return; // pushed, untracked or already reset
    if (stream.response) {
      if (block.endStream) this.endResponse(stream, ts, true, out);
      return;
    }
    const { pseudo, regular } = splitPseudo(headers);
    const status = Number(pseudo.get(":status"));
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new H2Failure(`stream ${stream.id}: response without a valid :status`);
    if (status < 200) return; // 100 Continue, 103 Early Hints: the final response follows
    const record: HttpResponseRecord = {
      status,
      reason: "",
      headers: regular,
      chunks: [],
      bodyTruncated: false,
      startTs: block.startTs,
      endTs: ts,
      complete: false,
    };
    stream.response = this.side(record, regular);
    if (block.endStream) this.endResponse(stream, ts, true, out);
  }

  private onData(dir: Direction, frame: H2Frame, out: ConnectionOutput[]): void {
    if (frame.streamId === 0) throw new H2Failure("DATA on stream 0");
    const data = unpad(frame);
    if (typeof data === "string") throw new H2Failure(`DATA: ${data}`);
    const stream = this.streams.get(frame.streamId);
    if (!stream) return;
    const endStream = (frame.flags & Flag.END_STREAM) !== 0;
    if (dir === "c2s") {
      const req = stream.request;
      if (req.done) return;
      if (data.length > 0) req.body.add(req.decoder.push(data), frame.ts);
      if (endStream) this.endRequest(stream, frame.ts, out);
    } else {
      const res = stream.response;
      if (!res || res.done) return; // DATA before HEADERS is a stream error; nothing to attach it to
      if (data.length > 0) {
        res.record.firstBodyTs ??= frame.ts;
        res.body.add(res.decoder.push(data), frame.ts);
      }
      if (endStream) this.endResponse(stream, frame.ts, true, out);
    }
  }

  private onReset(dir: Direction, id: number, code: number, ts: number, out: ConnectionOutput[]): void {
    const stream = this.streams.get(id);
    if (!stream) return;
    // A server may answer in full and then reset with NO_ERROR to stop the request upload (RFC 9113 §8.1).
    const benign = code === 0 && stream.response?.done === true;
    this.endStream(stream, ts, out, benign ? undefined : `stream reset by ${dir === "c2s" ? "client" : "server"}: ${errorCodeName(code)}`);
  }

  private onGoaway(dir: Direction, lastStreamId: number, code: number, ts: number, out: ConnectionOutput[]): void {
    // Only the server's GOAWAY concerns client streams; the client's only concerns pushes.
    if (dir !== "s2c") return;
    for (const stream of [...this.streams.values()]) {
      if (stream.id > lastStreamId) this.endStream(stream, ts, out, `not processed: server sent GOAWAY (last stream ${lastStreamId}, ${errorCodeName(code)})`);
    }
    // Later client streams above lastStreamId will not be processed either.
    this.lastClientStream = Math.max(this.lastClientStream, lastStreamId);
  }

  private side<R extends HttpRequestRecord | HttpResponseRecord>(record: R, headers: HeaderList): Side<R> {
    const encoding = headers.filter(([k]) => k === "content-encoding").map(([, v]) => v).join(",");
    return { record, decoder: new ContentDecoder(parseCodings(encoding), { maxOutputBytes: this.maxBodyBytes }), body: new TimedChunkCollector(), done: false };
  }

  private endRequest(stream: StreamState, ts: number, out: ConnectionOutput[]): void {
    this.finishRequest(stream, ts, true);
    if (!stream.requestEmitted) {
      stream.requestEmitted = true;
      out.push({ kind: "request", exchange: this.exchange(stream) });
    }
    if (stream.response?.done) this.emit(stream, out);
  }

  private endResponse(stream: StreamState, ts: number, complete: boolean, out: ConnectionOutput[]): void {
    this.finishResponse(stream, ts, complete);
    if (stream.request.done) this.emit(stream, out);
  }

  /** Ends a stream abnormally (reset, GOAWAY, connection end) and reports it. */
  private endStream(stream: StreamState, ts: number, out: ConnectionOutput[], error?: string): void {
    let problem: string | undefined;
    if (!stream.request.done) {
      this.finishRequest(stream, ts, false);
      if (error !== undefined) problem = `request truncated: ${error}`;
    }
    if (!stream.response) problem ??= error ?? "no response";
    else if (!stream.response.done) {
      this.finishResponse(stream, ts, false);
      problem ??= `response truncated: ${error ?? "stream ended"}`;
    }
    this.emit(stream, out, problem);
  }

  private endAll(ts: number, out: ConnectionOutput[], error: string): void {
    for (const stream of [...this.streams.values()]) this.endStream(stream, ts, out, error);
  }

  private emit(stream: StreamState, out: ConnectionOutput[], error?: string): void {
    if (!this.streams.delete(stream.id)) return;
    this.counters.exchanges++;
    if (error !== undefined) this.counters.errors++;
    out.push({ kind: "exchange", exchange: this.exchange(stream, error) });
  }

  private exchange(stream: StreamState, error?: string): HttpExchange {
    return httpExchange(this.connId, stream.id, stream.request.record, stream.response?.record, error);
  }

  private finishRequest(stream: StreamState, ts: number, complete: boolean): void {
    const req = stream.request;
    if (req.done) return;
    endDecoding(req.decoder, req.body, ts, complete);
    req.done = true;
    req.record.body = req.body.bytes();
    this.settle(req.record, req.decoder);
    req.record.endTs = ts;
  }

  private finishResponse(stream: StreamState, ts: number, complete: boolean): void {
    const res = stream.response;
    if (!res || res.done) return;
    endDecoding(res.decoder, res.body, ts, complete);
    res.done = true;
    res.record.chunks = res.body.chunks();
    res.record.complete = complete;
    res.record.endTs = ts;
    this.settle(res.record, res.decoder);
  }

  private settle(record: HttpRequestRecord | HttpResponseRecord, decoder: ContentDecoder): void {
    if (settleBody(record, decoder)) this.counters.truncatedBodies++;
  }

  private fail(dir: Direction, message: string, ts: number, out: ConnectionOutput[]): void {
    if (this.stopped) return;
    this.counters.errors++;
    out.push({ kind: "protocol-error", dir, message });
    this.endAll(ts, out, `protocol error (${dir}): ${message}`);
    this.stopped = true;
  }
}

function splitPseudo(headers: HeaderList): { pseudo: Map<string, string>; regular: HeaderList } {
  const pseudo = new Map<string, string>();
  const regular: HeaderList = [];
  for (const [k, v] of headers) {
    if (k.startsWith(":")) {
      if (!pseudo.has(k)) pseudo.set(k, v);
    } else regular.push([k, v]);
  }
  return { pseudo, regular };
}
