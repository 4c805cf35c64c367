// Pairs the two directions of one HTTP/1.1 connection into exchanges. Sans-IO: the tap pushes
// each direction's plaintext with its arrival time; out come requests as soon as they are
// complete and exchanges once their response is (or once the connection ends). Responses are
// paired with requests by order on the connection, never by anything else. Never throws:
// anything undecodable becomes one protocol-error, after which the connection is ignored.
import type { Direction } from "../tap/types.ts";
import { ContentDecoder } from "./encodings.ts";
import { Http1Parser, type Http1Item, type RequestHead, type ResponseHead } from "./http1.ts";
import { endDecoding, settleBody, TimedChunkCollector } from "./timed-chunks.ts";
import { headerValue, httpExchange, type HttpExchange, type HttpRequestRecord, type HttpResponseRecord } from "./types.ts";
import type { ConnectionOutput, ConnectionStats } from "./connection-decoder.ts";
import { WebSocketConnection, type WsConnectionItem } from "./websocket.ts";

export interface HttpConnectionDecoderOptions {
  /** Decoded body bytes kept per message; the rest is counted, not kept. Default 16 MiB. */
  maxBodyBytes?: number;
  /** Largest head (or trailer section) accepted. Default 64 KiB. */
  maxHeaderBytes?: number;
  /** Requests waiting for their responses (pipelining) before the connection is given up. Default 100. */
  maxPendingExchanges?: number;
}

const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
const DEFAULT_MAX_PENDING = 100;

interface RequestState {
  record: HttpRequestRecord;
  decoder: ContentDecoder;
  body: TimedChunkCollector;
  done: boolean;
  /** Why the request stopped early, from the parser, when it did. */
  cut?: string;
}

interface ResponseState {
  record: HttpResponseRecord;
  decoder?: ContentDecoder;
  body: TimedChunkCollector;
  done: boolean;
  cut?: string;
}

interface PendingExchange {
  seq: number;
  request: RequestState;
  response?: ResponseState;
  requestEmitted: boolean;
}

export class HttpConnectionDecoder {
  private readonly maxBodyBytes: number;
  private readonly maxPending: number;
  private readonly requests: Http1Parser;
  private readonly responses: Http1Parser;
  /** Exchanges not yet reported as "exchange", in connection order. */
  private pending: PendingExchange[] = [];
  private nextSeq = 0;
  /** Once set (protocol error, upgrade, close) every later byte is only counted. */
  private stopped = false;
  private readonly counters: ConnectionStats = { exchanges: 0, bytesIn: 0, truncatedBodies: 0, errors: 0 };
  /** The array push() fills next: handed out only when something went in, so a read that completes nothing allocates none. */
  private nextOut: ConnectionOutput[] = [];
  /** push()'s items of the current read (emptied after it; resume() hands its own array). */
  private readonly items: Http1Item[] = [];
  /** Set once the connection switched to WebSocket: every later byte goes to its frame decoders. */
  private ws?: { conn: WebSocketConnection; exchange: HttpExchange };

  constructor(
    readonly connId: string,
    opts: HttpConnectionDecoderOptions = {},
  ) {
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.maxPending = opts.maxPendingExchanges ?? DEFAULT_MAX_PENDING;
    const maxHeaderBytes = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    this.requests = new Http1Parser("request", { maxHeaderBytes });
    this.responses = new Http1Parser("response", {
      maxHeaderBytes,
      requestMethod: (i) => this.pendingWithSeq(i)?.request.record.method,
    });
  }

  push(dir: Direction, bytes: Uint8Array, ts: number): ConnectionOutput[] {
    this.counters.bytesIn += bytes.length;
    if (this.ws) return this.pushWebSocket(dir, [{ data: bytes, ts }]);
    if (this.stopped) return NO_OUTPUT;
    // Most reads (a stream's pieces) complete nothing: the array is kept for the next read until one does.
    const out = this.nextOut;
    try {
      // The items of one read are handled before the next read: one array serves every read that has any.
      const items = this.items;
      try {
        if (dir === "c2s") this.onRequestItems(this.requests.pushInto(bytes, ts, items), out);
        else this.onResponseItems(this.responses.pushInto(bytes, ts, items), out);
      } finally {
        items.length = 0;
      }
    } catch (err) {
      // A decoder bug must not take the relay down: report it like undecodable input.
      this.fail(dir, `internal decoder error: ${(err as Error).message}`, ts, out);
    }
    if (out.length === 0) return NO_OUTPUT;
    this.nextOut = [];
    return out;
  }

  close(ts: number, error?: string): ConnectionOutput[] {
    if (this.stopped) return [];
    const out: ConnectionOutput[] = [];
    try {
      this.onRequestItems(this.requests.finish(ts), out);
      if (!this.stopped) this.onResponseItems(this.responses.finish(ts), out, error);
      if (!this.stopped) this.flushPending(ts, out, error);
    } catch (err) {
      this.fail("s2c", `internal decoder error: ${(err as Error).message}`, ts, out);
    }
    this.stopped = true;
    return out;
  }

  stats(): ConnectionStats {
    return { ...this.counters };
  }

  private onRequestItems(items: Http1Item[], out: ConnectionOutput[]): void {
    for (const item of items) {
      if (this.stopped) return;
      const current = this.pending[this.pending.length - 1];
      switch (item.type) {
        case "head":
          if (item.head.role !== "request") break;
          if (this.pending.length >= this.maxPending) {
            this.fail("c2s", `more than ${this.maxPending} requests waiting for responses`, item.ts, out);
            return;
          }
          this.pending.push({ seq: this.nextSeq++, request: this.newRequest(item.head, item.codings, item.startTs, item.ts), requestEmitted: false });
          break;
        case "body":
          if (current && !current.request.done) current.request.decoder.pushTo(item.data, current.request.body, item.ts, item.owned);
          break;
        case "end":
          if (current && !current.request.done) {
            this.finishRequest(current.request, item.ts, true);
            this.emitRequest(current, out);
            if (current.response?.done) this.completeReady(out);
          }
          break;
        case "truncated":
          if (current && !current.request.done) current.request.cut = item.message;
          break;
        case "error":
          this.fail("c2s", item.message, item.ts, out);
          return;
        case "informational":
        case "upgrade":
          break; // response-only items
      }
    }
  }

  private onResponseItems(items: Http1Item[], out: ConnectionOutput[], closeError?: string): void {
    for (const item of items) {
      if (this.stopped) return;
      // The response being received: started, not finished (responses arrive one after another).
      const target = this.receivingResponse();
      switch (item.type) {
        case "head": {
          if (item.head.role !== "response") break;
          const ex = this.awaitingResponse();
          if (!ex) {
            this.fail("s2c", `response ${item.head.status} without a request`, item.ts, out);
            return;
          }
          ex.response = this.newResponse(item.head, item.codings, item.startTs, item.ts);
          this.resumeRequestsAfter(ex, out);
          break;
        }
        case "body":
          if (target?.response && !target.response.done) {
            const res = target.response;
            res.record.firstBodyTs ??= item.ts;
            res.decoder?.pushTo(item.data, res.body, item.ts, item.owned);
          }
          break;
        case "end":
          if (target?.response && !target.response.done) {
            if (closeError !== undefined) target.response.cut = closeError; // a close-delimited body cut by an error
            else this.finishResponse(target.response, item.ts, true);
            this.completeReady(out);
          }
          break;
        case "truncated":
          if (target?.response && !target.response.done) target.response.cut = item.message;
          break;
        case "informational":
          break; // 100 Continue, 103 Early Hints: the final response follows
        case "upgrade":
          this.onUpgrade(item.head, item.protocol, item.startTs, item.ts, out);
          return;
        case "error":
          this.fail("s2c", item.message, item.ts, out);
          return;
      }
    }
  }

  // Loops rather than find(): no closure per item (these run for every network read of a response).
  private pendingWithSeq(seq: number): PendingExchange | undefined {
    for (const p of this.pending) if (p.seq === seq) return p;
    return undefined;
  }

  /** The response being received: started, not finished. */
  private receivingResponse(): PendingExchange | undefined {
    for (const p of this.pending) if (p.response && !p.response.done) return p;
    return undefined;
  }

  /** The first exchange whose response has not started. */
  private awaitingResponse(): PendingExchange | undefined {
    for (const p of this.pending) if (!p.response) return p;
    return undefined;
  }

  /** A final answer to a CONNECT/Upgrade request that did not switch protocols: requests go on. */
  private resumeRequestsAfter(ex: PendingExchange, out: ConnectionOutput[]): void {
    if (this.requests.paused && ex.seq === this.nextSeq - 1) this.onRequestItems(this.requests.resume(), out);
  }

  private onUpgrade(head: ResponseHead, protocol: string, startTs: number, ts: number, out: ConnectionOutput[]): void {
    const ex = this.pending.find((p) => !p.response);
    if (!ex) {
      this.fail("s2c", `${head.status} upgrade without a request`, ts, out);
      return;
    }
    ex.response = this.newResponse(head, [], startTs, ts);
    this.finishResponse(ex.response, ts, true);
    if (!ex.request.done) this.finishRequest(ex.request, ts, false);
    this.pending = this.pending.filter((p) => p !== ex);
    this.counters.exchanges++;
    const exchange = this.buildExchange(ex);
    out.push({ kind: "upgrade", exchange, protocol });
    // Bytes of the new protocol already read: the client's frames sent right behind its request, and
    // whatever followed the 101 head in the same read (a server may send its first frame with it).
    const c2sRest = this.requests.stop();
    const s2cRest = this.responses.takeSwitched();
    this.responses.stop();
    if (protocol === "websocket" && head.status === 101) {
      this.ws = { conn: new WebSocketConnection(head.headers, { maxMessageBytes: this.maxBodyBytes }), exchange };
      out.push(...this.pushWebSocket("c2s", c2sRest), ...this.pushWebSocket("s2c", s2cRest));
    }
    // Whatever else is pending can no longer be answered in HTTP/1.1.
    this.flushPending(ts, out, `connection switched to ${protocol}`);
    this.stopped = true;
  }

  /** Reports, in order, every exchange at the head of the queue whose request and response are both done. */
  private completeReady(out: ConnectionOutput[]): void {
    while (this.pending.length > 0) {
      const first = this.pending[0]!;
      if (!first.request.done || !first.response?.done) return;
      this.pending.shift();
      this.emitExchange(first, out);
    }
  }

  private pushWebSocket(dir: Direction, pieces: Array<{ data: Uint8Array; ts: number }>): ConnectionOutput[] {
    const ws = this.ws!;
    const items: WsConnectionItem[] = [];
    try {
      for (const piece of pieces) items.push(...ws.conn.push(dir, piece.data, piece.ts));
    } catch (err) {
      items.push({ type: "error", message: `internal WebSocket decoder error: ${(err as Error).message}`, fatal: true, ts: pieces[0]?.ts ?? 0, dir });
    }
    return items.length > 0 ? [{ kind: "websocket", exchange: ws.exchange, items }] : [];
  }

  /** Ends every pending exchange: the connection is over (closed, failed or switched). */
  private flushPending(ts: number, out: ConnectionOutput[], error?: string): void {
    const pending = this.pending;
    this.pending = [];
    for (const ex of pending) {
      let problem: string | undefined;
      if (!ex.request.done) {
        this.finishRequest(ex.request, ts, false);
        problem = `request truncated: ${error ?? ex.request.cut ?? "connection closed"}`;
      }
      const res = ex.response;
      if (!res) problem ??= error ?? "connection closed before response";
      else if (!res.done) {
        this.finishResponse(res, ts, false);
        problem ??= `response truncated: ${error ?? res.cut ?? "connection closed"}`;
      }
      this.emitExchange(ex, out, problem);
    }
  }

  private fail(dir: Direction, message: string, ts: number, out: ConnectionOutput[]): void {
    if (this.stopped) return;
    this.counters.errors++;
    out.push({ kind: "protocol-error", dir, message });
    this.requests.stop();
    this.responses.stop();
    this.flushPending(ts, out, `protocol error (${dir}): ${message}`);
    this.stopped = true;
  }

  private emitRequest(ex: PendingExchange, out: ConnectionOutput[]): void {
    if (ex.requestEmitted) return;
    ex.requestEmitted = true;
    out.push({ kind: "request", exchange: this.buildExchange(ex) });
  }

  private emitExchange(ex: PendingExchange, out: ConnectionOutput[], error?: string): void {
    this.counters.exchanges++;
    if (error !== undefined) this.counters.errors++;
    out.push({ kind: "exchange", exchange: this.buildExchange(ex, error) });
  }

  private buildExchange(ex: PendingExchange, error?: string): HttpExchange {
    return httpExchange(this.connId, ex.seq, ex.request.record, ex.response?.record, error);
  }

  private newRequest(head: RequestHead, codings: string[], startTs: number, ts: number): RequestState {
    const { path, host } = requestTarget(head);
    const record: HttpRequestRecord = {
      method: head.method,
      path,
      host,
      httpVersion: head.version.slice("HTTP/".length),
      headers: head.headers,
      body: new Uint8Array(0),
      bodyTruncated: false,
      startTs,
      endTs: ts,
    };
    return { record, decoder: new ContentDecoder(codings, { maxOutputBytes: this.maxBodyBytes }), body: new TimedChunkCollector(), done: false };
  }

  private newResponse(head: ResponseHead, codings: string[], startTs: number, ts: number): ResponseState {
    const record: HttpResponseRecord = {
      status: head.status,
      reason: head.reason,
      headers: head.headers,
      chunks: [],
      bodyTruncated: false,
      startTs,
      endTs: ts,
      complete: false,
    };
    return { record, decoder: new ContentDecoder(codings, { maxOutputBytes: this.maxBodyBytes }), body: new TimedChunkCollector(), done: false };
  }

  private finishRequest(req: RequestState, ts: number, complete: boolean): void {
    endDecoding(req.decoder, req.body, ts, complete);
    req.done = true;
    req.record.body = req.body.bytes();
    this.settle(req.record, req.decoder);
    req.record.endTs = ts;
  }

  private finishResponse(res: ResponseState, ts: number, complete: boolean): void {
    if (res.decoder) {
      endDecoding(res.decoder, res.body, ts, complete);
      this.settle(res.record, res.decoder);
    }
    res.done = true;
    res.record.chunks = res.body.chunks();
    res.record.complete = complete;
    res.record.endTs = ts;
  }

  private settle(record: HttpRequestRecord | HttpResponseRecord, decoder: ContentDecoder): void {
    if (settleBody(record, decoder)) this.counters.truncatedBodies++;
  }
}

/** What push() returns when a read completes nothing: one frozen empty array, never written to. */
const NO_OUTPUT: ConnectionOutput[] = Object.freeze([]) as unknown as ConnectionOutput[];

/** A target's scheme (absolute-form); a constant, not a new RegExp per request. */
const ABSOLUTE_FORM = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;

/** Origin-form path and host of a request; an absolute-form target (plain-HTTP proxying) wins over Host. */
function requestTarget(head: RequestHead): { path: string; host: string } {
  const hostHeader = headerValue(head.headers, "host") ?? "";
  const target = head.target;
  if (head.method.toUpperCase() === "CONNECT") return { path: target, host: withoutDefaultPort(target) };
  const scheme = ABSOLUTE_FORM.exec(target);
  if (!scheme) return { path: target, host: withoutDefaultPort(hostHeader) };
  const rest = target.slice(scheme[0].length);
  const pathStart = rest.search(/[/?#]/);
  const authority = pathStart === -1 ? rest : rest.slice(0, pathStart);
  let path = pathStart === -1 ? "/" : rest.slice(pathStart);
  if (path.startsWith("?")) path = `/${path}`;
  path = path.replace(/#.*$/, "");
  return { path, host: withoutDefaultPort(authority.replace(/^.*@/, "")) };
}

/** Host without :80 / :443 (the decoder does not know the scheme; both are defaults for AI APIs). */
function withoutDefaultPort(host: string): string {
  return host.trim().toLowerCase().replace(/:(80|443)$/, "");
}

