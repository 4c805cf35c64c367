// Our server handshake with the client on Bun's native TLS, started on the accepted socket after the ClientHello
// peek: its native handle is upgraded in place, with the peeked bytes handed over as the first TLS input
// (`upgradeTLS({ isServer, initialData })`, what Bun's own node:tls does for a socket with buffered bytes).
// The TLS then runs in uSockets and the decrypted bytes reach a NativeLeg, with no node:stream or Duplex in
// between: about a third less relay CPU per request than the Duplex it replaces (bench/relay-upgrade.ts). The raw
// socket still sees the client's ciphertext, which is how a certificate alert after our flight is spotted.
import type net from "node:net";
import type tls from "node:tls";
import { alpnWire, nativeHandle, NativeLeg, type NativeSocket } from "./native-leg.ts";
import { AlertWatcher } from "./tls-alert.ts";

export interface ClientAnswer {
  leg: NativeLeg;
  watcher: AlertWatcher;
  /** "ok" once the client finished the handshake, else why not. */
  done: Promise<"ok" | string>;
  /** The client's EOF came after our flight had gone out (it hung up on our answer). */
  endedAfterAnswer(): boolean;
  /** Tears the client's connection down. */
  destroy(): void;
}

/** The calls of the accepted socket's native handle (Bun's net.Socket keeps a Bun.Socket in `_handle`). */
interface UpgradableHandle {
  upgradeTLS(opts: {
    isServer: true;
    initialData: Uint8Array;
    tls: { secureContext: unknown; ALPNProtocols?: Uint8Array };
    socket: ReturnType<NativeLeg["handlers"]> & { handshake: (s: unknown, ok: boolean, err?: Error) => void };
  }): [raw: unknown, tls: NativeSocket];
}

/**
 * Answers `client` (paused, its ClientHello in `peeked`) with the leaf in `ctx` and ALPN `chosen`. Throws, with
 * nothing sent to the client and every byte it sent still readable, when TLS cannot start on its socket: the
 * caller then passes the connection through.
 */
export function answerClient(client: net.Socket, peeked: Uint8Array, ctx: tls.SecureContext, chosen: string | undefined, timeoutMs: number): ClientAnswer {
  const handle = nativeHandle<UpgradableHandle>(client);
  const watcher = new AlertWatcher();
  // Bytes the socket read after the peek (the client did not wait for our answer) go to TLS first, as Bun's
  // own node:tls does; an EOF among them came before our answer, so it is no hang-up on our certificate.
  const buffered = client.readableLength ? (client.read(client.readableLength) as Buffer | null) : null;
  const eofBeforeAnswer = (client as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended === true;
  if (buffered) watcher.push(buffered, false);
  let answered = false; // our flight has gone out
  let endedAfterAnswer = false;
  // Writes on the TLS leg bypass the net.Socket, so its idle timer (setTimeout in the proxy) is refreshed here.
  const leg = new NativeLeg((client as unknown as { _unrefTimer?: () => void })._unrefTimer?.bind(client));
  const onCiphertext = (chunk: Buffer) => watcher.push(chunk, answered);
  const onRawGone = () => finish("closed");
  let settle!: (r: "ok" | string) => void;
  const done = new Promise<"ok" | string>((resolve) => (settle = resolve));
  let settled = false;
  const finish = (r: "ok" | string) => {
    if (settled) return;
    settled = true;
    // Bun reports the client's EOF during the handshake as a close of the TLS socket (the raw "end" may come
    // later or not at all): after our answer, and not already read before it, it is a hang-up on our answer.
    endedAfterAnswer = r === "closed" && answered && !eofBeforeAnswer;
    clearTimeout(timer);
    watcher.done();
    client.off("close", onRawGone).off("end", onRawGone);
    settle(r);
  };
  const timer = setTimeout(() => finish(`timed out after ${timeoutMs} ms`), timeoutMs);
  // The raw side keeps seeing the ciphertext (the alert watcher reads the handshake's) and the EOF.
  client.on("data", onCiphertext);
  client.once("close", onRawGone).once("end", onRawGone);
  const handlers = leg.handlers();
  let sock: NativeSocket;
  try {
    [, sock] = handle.upgradeTLS({
      isServer: true,
      initialData: buffered ? Buffer.concat([peeked, buffered]) : peeked,
      tls: { secureContext: (ctx as unknown as { context: unknown }).context, ...(chosen ? { ALPNProtocols: alpnWire([chosen]) } : {}) },
      socket: {
        ...handlers,
        handshake: (_s, ok, err) => finish(ok ? "ok" : handshakeFailure(err)),
        close: (s, err) => {
          finish("closed"); // a no-op once the handshake is done
          handlers.close(s, err);
          // The net.Socket does not learn of it by itself: destroyed, it emits the "close" the proxy counts
          // connections out on.
          client.destroy();
        },
      },
    });
  } catch (err) {
    // Nothing went to the client: the caller can still pass it through, with every byte it sent.
    finish("not started");
    client.off("data", onCiphertext);
    if (buffered) client.unshift(buffered);
    throw err;
  }
  leg.attach(sock);
  // Destroying the net.Socket (the proxy's idle timeout, its close) does not reach a socket upgraded in place: the
  // TLS side, which owns the connection now, goes with it.
  client.once("close", () => leg.destroy());
  // The ClientHello was processed inside upgradeTLS: unless that failed, our ServerHello is out.
  answered = !settled;
  client.resume();
  return {
    leg,
    watcher,
    done,
    endedAfterAnswer: () => endedAfterAnswer,
    destroy: () => {
      leg.destroy();
      client.destroy();
    },
  };
}

/**
 * Why the native handshake failed. Bun reports the client's hang-up during it as ECONNRESET ("Client network
 * socket disconnected before secure TLS connection was established"): that is a close, as the pinning logic
 * sees it (tunnel.ts judgeFailedHandshake), not a TLS error of ours.
 */
function handshakeFailure(err: (Error & { code?: string }) | undefined): string {
  if (err?.code === "ECONNRESET") return "closed";
  return err?.message ?? "TLS handshake failed";
}
