// Moves bytes both ways between the client leg and the upstream leg: each chunk is written to the other
// side as it arrives (answers at the latest at the end of the event-loop turn, once the tap has journaled
// them: afterTap), no buffering beyond that, so streams stay streams; with backpressure, half-close
// mirrored, and a copy handed to `onData` (the tap). A leg that dies takes the other down with it.
import type { Direction } from "../tap/types.ts";

/** What the relay uses of a leg: a node Duplex (TLSSocket, net.Socket) or a NativeLeg (native-leg.ts). */
export interface RelayLeg {
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  write(chunk: Uint8Array): boolean;
  end(): void;
  destroy(): void;
  pause(): unknown;
  resume(): unknown;
  on(event: "data", fn: (chunk: Buffer) => void): unknown;
  on(event: "end", fn: () => void): unknown;
  on(event: "error", fn: (err: Error) => void): unknown;
  once(event: "close" | "drain", fn: () => void): unknown;
}

export interface RelayOptions {
  /**
   * Called with every chunk: c2s right after it is handed to the upstream, s2c before it is handed to the
   * client. Must not throw (wrap the tap) and must not block.
   */
  onData?: (dir: Direction, chunk: Uint8Array) => void;
  /**
   * s2c chunks, and the upstream's end, close and error after them, go to the client through this, in order
   * (a tap that journals runs them once the answer is on disk: ConnTap.afterJournal). Default: at once.
   */
  afterTap?: (fn: () => void) => void;
  /** s2c chunks wait for this (the tap's open, itself bounded by the lookup timeout): none reaches the client untapped. */
  holdServer?: Promise<void>;
  /** After one leg has closed cleanly, how long the other may take to flush before it is destroyed. */
  lingerMs?: number;
}

export interface RelayResult {
  /** First error seen on either leg, prefixed with the leg ("client: ..." / "upstream: ..."). */
  error?: string;
}

/** `client` and `upstream` must already be connected (and, for TLS, handshaken). */
export function relay(client: RelayLeg, upstream: RelayLeg, opts: RelayOptions = {}): Promise<RelayResult> {
  const linger = opts.lingerMs ?? 30_000;
  let error: string | undefined;
  const endedCleanly = new Set<RelayLeg>();
  // The upstream's end and close wait for the answers held for holdServer (registered after their flush,
  // so they run after it): a server that answers and hangs up must not take the answer down with it.
  const afterTap = opts.afterTap ?? ((fn: () => void) => fn());
  const afterHeld = (leg: RelayLeg, fn: () => void) => {
    if (leg !== upstream) return fn();
    // After the held answers were tapped (holdServer), and after the tapped ones were forwarded (afterTap).
    if (opts.holdServer) void opts.holdServer.then(() => afterTap(fn));
    else afterTap(fn);
  };

  const pipe = (src: RelayLeg, dst: RelayLeg, dir: Direction, hold?: Promise<void>) => {
    let waiting = false;
    const forward = (chunk: Buffer) => {
      if (!dst.destroyed && !dst.write(chunk) && !waiting) {
        waiting = true;
        src.pause();
        dst.once("drain", () => {
          waiting = false;
          src.resume();
        });
      }
    };
    // The tap only queues: it never waits for the sensor. Requests are forwarded first; answers are tapped
    // first and forwarded through afterTap (in `oisp up`, once the turn's journal write has them on disk).
    const onChunk = (chunk: Buffer) => {
      if (dir === "c2s") {
        forward(chunk);
        return opts.onData?.(dir, chunk);
      }
      opts.onData?.(dir, chunk);
      afterTap(() => forward(chunk));
    };
    let held: Buffer[] | undefined;
    if (hold) {
      held = [];
      void hold.then(() => {
        const chunks = held!;
        held = undefined;
        for (const c of chunks) onChunk(c);
        if (!waiting) src.resume();
      });
    }
    src.on("data", (chunk: Buffer) => {
      if (!held) return onChunk(chunk);
      held.push(chunk);
      src.pause();
    });
    src.on("end", () =>
      afterHeld(src, () => {
        endedCleanly.add(src);
        if (!dst.destroyed && !dst.writableEnded) dst.end();
      }),
    );
  };
  pipe(client, upstream, "c2s");
  pipe(upstream, client, "s2c", opts.holdServer);

  const closed = (leg: RelayLeg) => new Promise<void>((resolve) => (leg.destroyed ? resolve() : leg.once("close", () => resolve())));
  const onClose = (src: RelayLeg, dst: RelayLeg) => () => {
    if (dst.destroyed) return;
    // A leg that closed after a clean end (FIN) lets the other finish flushing; an abort tears it down.
    if (endedCleanly.has(src) && dst.writableEnded) setTimeout(() => dst.destroy(), linger).unref?.();
    else dst.destroy();
  };
  client.once("close", onClose(client, upstream));
  upstream.once("close", () => afterHeld(upstream, onClose(upstream, client)));
  // A leg that died while the connection was being set up has already emitted "close".
  if (client.destroyed) onClose(client, upstream)();
  if (upstream.destroyed) afterHeld(upstream, onClose(upstream, client));
  client.on("error", (err) => {
    error ??= `client: ${err.message}`;
    upstream.destroy();
  });
  upstream.on("error", (err) => {
    error ??= `upstream: ${err.message}`;
    afterTap(() => client.destroy());
  });
  // Legs may have been paused while the connection was set up (an upstream held for holdServer resumes then).
  client.resume();
  if (!opts.holdServer) upstream.resume();
  return Promise.all([closed(client), closed(upstream)]).then(() => ({ error }));
}
