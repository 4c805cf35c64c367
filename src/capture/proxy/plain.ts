// Plain-HTTP proxying (absolute-form requests: `GET http://localhost:11434/api/chat HTTP/1.1`), used by
// local model servers (Ollama, LM Studio). The one transformation: each request line becomes origin-form
// (`GET /api/chat HTTP/1.1`), found with a sans-IO framer; headers and bodies pass byte for byte.
// One upstream TCP connection per client connection while the host stays the same; a request for another
// host closes that leg and opens a new one (clients do not pipeline, so the previous response is done).
import type net from "node:net";
import type { ConnMeta, ProcessInfo, TapSink } from "../../tap/types.ts";
import { nowMs } from "../../tap/types.ts";
import { ConnTap } from "../../mitm/conn-tap.ts";
import type { ProxyStats } from "../../mitm/stats.ts";
import { countBytes } from "../../mitm/tunnel.ts";
import { connectTcp, resolveTarget, UpstreamError } from "../../mitm/upstream.ts";
import type { Logger } from "../../util/log.ts";
import { RequestFramer, type FramerEvent } from "./request-framer.ts";
import { classifyRequest } from "./request-head.ts";
import { errorResponse, replyAndClose, statusForUpstreamError } from "./responses.ts";

export interface PlainContext {
  tap: TapSink;
  stats: ProxyStats;
  log: Logger;
  resolve: ReadonlyMap<string, string>;
  connectMs: number;
  lookupMs: number;
  newConnId: () => string;
  maxHeadBytes: number;
  /** True when a target is the proxy itself. */
  isSelf: (t: { host: string; port: number }) => boolean;
}

interface Leg {
  key: string;
  sock: net.Socket;
  tap: ConnTap;
  /** Set when we closed it to switch hosts: its end must not end the client. */
  retired: boolean;
}

export class PlainSession {
  private readonly framer: RequestFramer;
  private readonly queue: FramerEvent[] = [];
  private busy = false;
  private leg?: Leg;
  private closed = false;
  private clientWaiting = false;
  /** Resolves once the process lookup has settled, or after `lookupMs`: see openLeg's response hold. */
  private readonly lookupSettled: Promise<void>;
  private lookupDone = false;

  constructor(
    private readonly ctx: PlainContext,
    private readonly client: net.Socket,
    private readonly clientEp: ConnMeta["client"],
    private readonly lookup: Promise<ProcessInfo | undefined>,
    private readonly t0: number,
  ) {
    this.framer = new RequestFramer(ctx.maxHeadBytes);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cap = new Promise<void>((resolve) => (timer = setTimeout(resolve, ctx.lookupMs)));
    this.lookupSettled = Promise.race([lookup.then(noop, noop), cap]).then(() => {
      clearTimeout(timer);
      this.lookupDone = true;
    });
    client.on("data", (chunk: Buffer) => this.onClientData(chunk));
    client.on("end", () => this.whenIdle(() => this.leg?.sock.end()));
    client.on("close", () => {
      this.closed = true;
      this.leg?.sock.destroy();
    });
  }

  /** Feeds bytes read before the session took over (the first head and anything after it). */
  start(initial: Uint8Array): void {
    this.onClientData(initial);
    this.client.resume();
  }

  private onClientData(chunk: Uint8Array) {
    let events: FramerEvent[];
    try {
      events = this.framer.push(chunk);
    } catch (err) {
      this.ctx.log("error", `plain-HTTP framing failed: ${(err as Error).message}`);
      this.client.destroy();
      return;
    }
    if (!events.length) return;
    this.queue.push(...events);
    this.drain().catch((err: Error) => {
      this.ctx.log("error", `plain-HTTP proxying failed: ${err.message}`);
      this.client.destroy();
    });
  }

  private idleWaiters: Array<() => void> = [];
  private whenIdle(fn: () => void) {
    if (!this.busy && this.queue.length === 0) fn();
    else this.idleWaiters.push(fn);
  }

  /** Handles events in order; connecting a new leg is async, so the client is paused meanwhile. */
  private async drain() {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length && !this.closed) {
        const ev = this.queue.shift()!;
        if (ev.kind === "error") {
          this.ctx.stats.badRequests++;
          this.reply(ev.tooLarge ? 431 : 400, ev.reason);
          return;
        }
        if (ev.kind === "body") {
          this.write(ev.bytes);
          continue;
        }
        const req = classifyRequest(ev.head);
        if (req.kind === "reject") {
          this.ctx.stats.badRequests++;
          this.reply(req.status, req.reason);
          return;
        }
        if (req.kind === "connect") {
          this.ctx.stats.badRequests++;
          this.reply(400, "CONNECT after plain-HTTP requests on one connection is not supported; open a new connection");
          return;
        }
        if (this.ctx.isSelf(resolveTarget(this.ctx.resolve, req.host, req.port))) {
          this.ctx.stats.badRequests++;
          this.reply(400, `${req.host}:${req.port} is this proxy; the request would loop`);
          return;
        }
        const key = `${req.host}:${req.port}`;
        if (this.leg?.key !== key) {
          this.retire();
          this.client.pause();
          const ok = await this.openLeg(req.host, req.port, key);
          if (!ok || this.closed) return;
          this.client.resume();
        }
        this.write(rewriteRequestLine(ev.raw, req.path));
      }
    } finally {
      this.busy = false;
      if (!this.queue.length) for (const fn of this.idleWaiters.splice(0)) fn();
    }
  }

  private write(bytes: Uint8Array) {
    const leg = this.leg;
    if (!leg || leg.sock.destroyed) return;
    countBytes(this.ctx.stats, "c2s", bytes.length);
    // Forward first, tap second (as relay.ts): the tap must never delay the user's bytes.
    if (!leg.sock.write(bytes) && !this.clientWaiting) {
      this.clientWaiting = true;
      this.client.pause();
      leg.sock.once("drain", () => {
        this.clientWaiting = false;
        this.client.resume();
      });
    }
    leg.tap.data("c2s", bytes);
  }

  private retire() {
    const leg = this.leg;
    if (!leg) return;
    leg.retired = true;
    leg.sock.end();
    this.leg = undefined;
  }

  private async openLeg(host: string, port: number, key: string): Promise<boolean> {
    const target = resolveTarget(this.ctx.resolve, host, port);
    const meta: ConnMeta = {
      connId: this.ctx.newConnId(),
      startedAt: nowMs(),
      client: this.clientEp,
      server: { ip: target.host, port: target.port },
      host,
      ...(port !== target.port && { port }),
      mode: "plain",
      captureMethod: "mitm_proxy",
    };
    const tap = new ConnTap(this.ctx.tap, meta);
    let sock: net.Socket;
    try {
      sock = await connectTcp(target, this.ctx.connectMs);
    } catch (err) {
      const e = err as UpstreamError;
      this.ctx.stats.upstreamErrors++;
      meta.upstreamError = e.message;
      tap.openAfter(this.lookup, this.ctx.lookupMs);
      tap.close(e.message);
      const status = e instanceof UpstreamError ? statusForUpstreamError(e.kind) : 502;
      this.reply(status, e.message);
      return false;
    }
    this.ctx.stats.plain++;
    meta.upstreamConnectMs = performance.now() - this.t0;
    meta.server = { ip: sock.remoteAddress ?? target.host, port: sock.remotePort ?? target.port };
    tap.openAfter(this.lookup, this.ctx.lookupMs);
    const leg: Leg = { key, sock, tap, retired: false };
    this.leg = leg;
    let error: string | undefined;
    let waiting = false;
    const forward = (chunk: Buffer) => {
      countBytes(this.ctx.stats, "s2c", chunk.length);
      // Tap first, forward once the tap says so (a journaling tap has the answer on disk before the client
      // can have it, see relay.ts); a retired leg's late bytes are still tapped, just not forwarded.
      tap.data("s2c", chunk);
      tap.afterJournal(() => {
        if (!leg.retired && !this.client.destroyed && !this.client.write(chunk) && !waiting) {
          waiting = true;
          sock.pause();
          this.client.once("drain", () => {
            waiting = false;
            sock.resume();
          });
        }
      });
    };
    // The response is held until the process lookup has settled (at most lookupMs; it usually takes a
    // few ms and overlaps the server's work). A plain-HTTP exchange is one round trip: a client that
    // exits as soon as it has its answer (ollama run, curl) is otherwise gone, socket and all, before a
    // loaded machine's /proc scan reaches it, and the call has no process. The paused socket also holds
    // back its end and close, so they follow the held bytes.
    const held: Buffer[] = [];
    sock.on("data", (chunk: Buffer) => {
      if (this.lookupDone) return forward(chunk);
      if (held.push(chunk) > 1) return;
      sock.pause();
      void this.lookupSettled.then(() => {
        for (const c of held.splice(0)) forward(c);
        if (!waiting) sock.resume();
      });
    });
    // Bun emits a paused socket's end and close without waiting for its data to be read: both wait for
    // the held answer to be forwarded first (these callbacks run after the flush registered above), and
    // after the tap let the forwards go.
    const afterHeld = (fn: () => void) => (this.lookupDone && held.length === 0 ? tap.afterJournal(fn) : void this.lookupSettled.then(() => tap.afterJournal(fn)));
    sock.on("end", () =>
      afterHeld(() => {
        // The origin closed (Connection: close, or a body delimited by close): so does the client.
        if (!leg.retired && !this.client.destroyed) this.client.end();
      }),
    );
    sock.on("error", (err) => {
      error ??= err.message;
      tap.afterJournal(() => {
        if (!leg.retired) this.client.destroy();
      });
    });
    sock.on("close", () =>
      afterHeld(() => {
        tap.close(error);
        if (!leg.retired && !this.client.destroyed && !this.client.writableEnded) this.client.destroy();
      }),
    );
    return true;
  }

  private reply(status: number, reason: string) {
    if (this.client.destroyed) return;
    replyAndClose(this.client, errorResponse(status, reason));
    this.leg?.sock.destroy();
    this.queue.length = 0;
  }
}

/** `GET http://h:p/x?y HTTP/1.1` → `GET /x?y HTTP/1.1`; every other byte of the head unchanged. */
export function rewriteRequestLine(raw: Uint8Array, path: string): Uint8Array {
  // Buffer's latin1 maps bytes 1:1 (TextDecoder's "latin1" is windows-1252 and would alter 0x80-0x9f).
  const text = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("latin1");
  const lead = /^[\r\n]*/.exec(text)![0].length;
  const eol = text.indexOf("\n", lead);
  const line = text.slice(lead, eol).replace(/\r$/, "");
  const [method, , version] = line.split(" ");
  const rewritten = `${text.slice(0, lead)}${method} ${path} ${version}${text[eol - 1] === "\r" ? "\r" : ""}${text.slice(eol)}`;
  return Buffer.from(rewritten, "latin1");
}

function noop(): void {}
