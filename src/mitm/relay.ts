// Moves bytes both ways between the client leg and the upstream leg: each chunk is written to the other
// side as it arrives (no buffering, so streams stay streams), with backpressure, half-close mirrored,
// and a copy handed to `onData` (the tap). A leg that dies takes the other down with it.
import type { Duplex } from "node:stream";
import type { Direction } from "../tap/types.ts";

export interface RelayOptions {
  /** Called with every chunk right after it is handed to the other leg. Must not throw (wrap the tap). */
  onData?: (dir: Direction, chunk: Uint8Array) => void;
  /** After one leg has closed cleanly, how long the other may take to flush before it is destroyed. */
  lingerMs?: number;
}

export interface RelayResult {
  /** First error seen on either leg, prefixed with the leg ("client: ..." / "upstream: ..."). */
  error?: string;
}

/** `client` and `upstream` must already be connected (and, for TLS, handshaken). */
export function relay(client: Duplex, upstream: Duplex, opts: RelayOptions = {}): Promise<RelayResult> {
  const linger = opts.lingerMs ?? 30_000;
  let error: string | undefined;
  const endedCleanly = new Set<Duplex>();

  const pipe = (src: Duplex, dst: Duplex, dir: Direction) => {
    let waiting = false;
    src.on("data", (chunk: Buffer) => {
      // Forward first, tap second: the tap (in `oisp up`, the whole sensor) must never delay the user's bytes.
      if (!dst.destroyed && !dst.write(chunk) && !waiting) {
        waiting = true;
        src.pause();
        dst.once("drain", () => {
          waiting = false;
          src.resume();
        });
      }
      opts.onData?.(dir, chunk);
    });
    src.on("end", () => {
      endedCleanly.add(src);
      if (!dst.destroyed && !dst.writableEnded) dst.end();
    });
  };
  pipe(client, upstream, "c2s");
  pipe(upstream, client, "s2c");

  const closed = (leg: Duplex) => new Promise<void>((resolve) => (leg.destroyed ? resolve() : leg.once("close", () => resolve())));
  const onClose = (src: Duplex, dst: Duplex) => () => {
    if (dst.destroyed) return;
    // A leg that closed after a clean end (FIN) lets the other finish flushing; an abort tears it down.
    if (endedCleanly.has(src) && dst.writableEnded) setTimeout(() => dst.destroy(), linger).unref?.();
    else dst.destroy();
  };
  client.once("close", onClose(client, upstream));
  upstream.once("close", onClose(upstream, client));
  // A leg that died while the connection was being set up has already emitted "close".
  if (client.destroyed) onClose(client, upstream)();
  if (upstream.destroyed) onClose(upstream, client)();
  client.on("error", (err) => {
    error ??= `client: ${err.message}`;
    upstream.destroy();
  });
  upstream.on("error", (err) => {
    error ??= `upstream: ${err.message}`;
    client.destroy();
  });
  // Legs may have been paused while the connection was set up.
  client.resume();
  upstream.resume();
  return Promise.all([closed(client), closed(upstream)]).then(() => ({ error }));
}
