// The upstream leg of an intercepted connection up to the upstream's first response byte, able to swap in a fresh
// leg when the upstream drops the first one. The leg was opened and handshaken before the client's handshake with
// us was done, so it may have sat idle for seconds (1,000 handshakes at once queue that long) while the client's
// connection is brand new: a server's idle close then meets the client's first request, which no HTTP client
// retries on a new connection. A direct client never meets that; this is the proxy's to absorb.
//
// Retry rule (RFC 9110 §9.2.2; the rule Go's http.Transport follows for a reused connection), applied once, and
// only while no byte of the response has arrived:
//   - No byte of the request reached the upstream: its close had already arrived when the client's first bytes
//     came (`peerGone`), or the socket refused every write (it had already been reset). Nothing can have been
//     processed, so any request, POST included, goes to a fresh leg.
//   - Bytes reached the upstream: the server may have read them before closing. Replayed only when they are one
//     complete request of an idempotent method that carries no body (GET, HEAD, OPTIONS, TRACE, DELETE: running
//     it twice is running it once), and only on HTTP/1.1 (h2 has GOAWAY for this). Anything else (a POST) is not
//     replayed: the client's connection is closed as the upstream closed it, as a server dropping an idle
//     keep-alive would, and its own HTTP client decides (the openai and Anthropic SDKs retry such errors).
// Before all that, a leg dialled STALE_LEG_MS or more before the client's first bytes come is replaced by a fresh one
// before any byte goes to it (safe for any request): measured in bench/relay-close.ts, Bun.serve (which counts from
// its accept) closed such legs with our request already written to them (190 in one run, 8–9.4 s after our
// handshake), which the rule above must not retry for a POST. A direct client's first request follows its
// connect at once; so does ours on the fresh leg.
// The tap sees the client's bytes once, as relayed: a retried request is one call in the events.
import { EventEmitter } from "node:events";
import type { NativeLeg } from "./native-leg.ts";
import type { RelayLeg } from "./relay.ts";

/**
 * A leg dialled this long before its first request is not used: a fresh one is (a resumed handshake, ~1 ms on
 * loopback, a round trip or two on the internet). Below the shortest pre-request limit met (uWS / Bun.serve 10 s;
 * Node, nginx, load balancers 60 s), far above the time from our dial to a client's first request when the machine
 * keeps up (milliseconds, or a few round trips to a distant upstream).
 */
export const STALE_LEG_MS = 5000;
/** Request bytes held for a replay; a larger first request is never retried. */
const MAX_HELD_BYTES = 64 * 1024;

const REPLAYABLE = /^(GET|HEAD|OPTIONS|TRACE|DELETE) [^\r\n]* HTTP\/1\.1\r\n/;

/** One complete bodiless HTTP/1.1 request of an idempotent method, and nothing after it. */
export function isReplayableRequest(bytes: Buffer): boolean {
  const text = bytes.toString("latin1");
  if (!REPLAYABLE.test(text)) return false;
  const end = text.indexOf("\r\n\r\n");
  if (end < 0 || end + 4 !== text.length) return false;
  const head = text.slice(0, end + 2);
  return !/\r\ntransfer-encoding:/i.test(head) && !/\r\ncontent-length:\s*0*[1-9]/i.test(head);
}

export interface FirstExchangeOptions {
  /** The protocol agreed with both sides: replays of written bytes only on HTTP/1.1. */
  alpn: string | undefined;
  /**
   * When the leg's TCP connect began (performance.now()): no request has gone through it since. Servers count its
   * idle time from their accept, handshake included (measured: uWS), so that is the clock that matters.
   */
  dialedAt: number;
  /** A fresh verified leg with the same ALPN, or why there is none. */
  redial: (why: string) => Promise<NativeLeg | string>;
  /** Told of each leg swapped in (stats, log). */
  onRetry: (kind: RetryKind, why: string) => void;
}

/** stale: the first leg dialled too long ago, replaced before use; closed: the upstream closed it before answering. */
export type RetryKind = "stale" | "closed";

type LegEvent = "data" | "end" | "error" | "close" | "drain";

export class FirstExchangeLeg extends EventEmitter implements RelayLeg {
  private leg: NativeLeg;
  /** Request bytes written since the leg was opened, until the first response byte (then undefined: disarmed). */
  private held: Buffer[] | undefined = [];
  private heldBytes = 0;
  /** Writes waiting for a fresh leg. */
  private waiting: Uint8Array[] | undefined;
  private ended = false;
  private paused = true;
  private retried = false;
  /** Waiting for the fresh leg: the old one is closed and forgotten. */
  private swapping = false;
  private gone = false;

  constructor(
    first: NativeLeg,
    private readonly opts: FirstExchangeOptions,
  ) {
    super();
    this.leg = first;
    this.listen(first);
  }

  get destroyed(): boolean {
    return this.gone || (!this.swapping && this.leg.destroyed);
  }

  get writableEnded(): boolean {
    return this.ended;
  }

  write(chunk: Uint8Array): boolean {
    if (this.destroyed || this.ended) return false;
    if (this.waiting) {
      this.waiting.push(chunk);
      return false;
    }
    if (this.held && this.heldBytes === 0 && !this.retried) {
      const age = performance.now() - this.opts.dialedAt;
      if (age >= STALE_LEG_MS) {
        this.waiting = [chunk];
        this.startRetry("stale", `upstream leg dialled ${Math.round(age)} ms before the first request`);
        return false;
      }
    }
    return this.send(chunk);
  }

  end(): void {
    if (this.ended || this.destroyed) return;
    this.ended = true;
    if (!this.waiting) this.leg.end();
  }

  destroy(): void {
    if (this.gone) return;
    this.gone = true;
    this.waiting = undefined;
    if (this.swapping || this.leg.destroyed) queueMicrotask(() => this.emit("close"));
    else this.leg.destroy(); // its close is relayed
  }

  pause(): this {
    this.paused = true;
    this.leg.pause();
    return this;
  }

  resume(): this {
    this.paused = false;
    this.leg.resume();
    return this;
  }

  private send(chunk: Uint8Array): boolean {
    if (this.held && this.heldBytes === 0 && this.leg.peerGone && !this.retried) {
      this.waiting = [chunk];
      this.startRetry("closed", "upstream closed its leg before the first request reached it");
      return false;
    }
    if (this.held) {
      if ((this.heldBytes += chunk.length) > MAX_HELD_BYTES) this.held = undefined;
      else this.held.push(Buffer.from(chunk));
    }
    return this.leg.write(chunk);
  }

  /** Writes what waited, in order; `drain` tells the relay to go on once the leg took it all. */
  private flushWaiting(chunks: Uint8Array[]): void {
    let ok = true;
    for (let i = 0; i < chunks.length; i++) {
      ok = this.send(chunks[i]!);
      if (this.waiting) {
        this.waiting.push(...chunks.slice(i + 1)); // a retry started: the rest waits for the fresh leg
        return;
      }
    }
    if (this.ended) this.leg.end();
    if (ok) this.emit("drain");
  }

  private listen(leg: NativeLeg): void {
    const forward = (ev: LegEvent) => (arg?: unknown) => {
      if (leg !== this.leg) return; // a leg already replaced
      if (ev === "data") this.held = undefined; // the first response byte: the exchange is the upstream's now
      else if ((ev === "end" || ev === "error" || ev === "close") && this.held && !this.retried && !this.gone) {
        const why = this.retryable();
        if (why) return this.startRetry("closed", why);
      }
      if (ev === "close") this.gone = true;
      this.emit(ev, arg);
    };
    leg.on("data", forward("data"));
    leg.on("end", forward("end"));
    leg.on("error", forward("error"));
    leg.once("close", forward("close"));
    leg.on("drain", forward("drain"));
  }

  /** Why the upstream's close (no response byte yet) may be retried on a fresh leg, or undefined (see the rule above). */
  private retryable(): string | undefined {
    if (this.leg.bytesAccepted === 0) return "upstream closed before any byte of the request reached it";
    if (this.opts.alpn !== "h2" && this.held && isReplayableRequest(Buffer.concat(this.held))) return "upstream closed before answering an idempotent request without a body";
    return undefined;
  }

  /** A retry that fails in an unforeseen way closes this leg (and so the client) rather than hanging it. */
  private startRetry(kind: RetryKind, why: string): void {
    this.retry(kind, why).catch((err: Error) => {
      if (this.gone) return;
      this.gone = true;
      this.emit("error", err);
      this.emit("close");
    });
  }

  private async retry(kind: RetryKind, why: string): Promise<void> {
    this.retried = true;
    this.swapping = true;
    const old = this.leg;
    old.removeAllListeners();
    old.on("error", () => {});
    old.destroy();
    this.waiting ??= [];
    const held = this.held ?? [];
    this.held = undefined; // once only
    this.heldBytes = 0;
    const fresh = await this.opts.redial(why);
    this.swapping = false;
    if (this.gone) {
      if (typeof fresh !== "string") fresh.destroy(); // the client left meanwhile; destroy() emitted the close
      return;
    }
    if (typeof fresh === "string") {
      this.gone = true;
      this.emit("error", new Error(fresh));
      this.emit("close");
      return;
    }
    this.opts.onRetry(kind, why);
    this.leg = fresh;
    this.listen(fresh);
    if (!this.paused) fresh.resume();
    const chunks = [...held, ...(this.waiting ?? [])];
    this.waiting = undefined;
    this.flushWaiting(chunks);
  }
}
