// After CONNECT is answered: read the client's first bytes until the ClientHello is complete (or it is
// clearly not TLS), while watching the upstream, because some protocols let the server speak first.
import type net from "node:net";
import { ClientHelloParser, type ClientHelloResult } from "../wire/tls-client-hello.ts";

export type PeekResult =
  | { kind: "hello"; result: ClientHelloResult; bytes: Uint8Array }
  /** The upstream sent bytes before the client did (SSH, SMTP...): relay blind. */
  | { kind: "server-first"; serverBytes: Uint8Array; bytes: Uint8Array }
  /** Neither side said anything in time: relay blind with what we have. */
  | { kind: "timeout"; bytes: Uint8Array }
  | { kind: "closed"; who: "client" | "upstream" };

/** Both sockets are left paused with no listeners of ours attached. */
export function peekClientHello(
  client: net.Socket,
  upstream: net.Socket,
  initial: Uint8Array,
  opts: { timeoutMs: number; maxBytes: number },
): Promise<PeekResult> {
  const parser = new ClientHelloParser(opts.maxBytes);
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: PeekResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client.off("data", onClient).off("end", onClientGone).off("close", onClientGone);
      upstream.off("data", onServer).off("end", onUpstreamGone).off("close", onUpstreamGone);
      client.pause();
      upstream.pause();
      resolve(r);
    };
    const onClient = (chunk: Uint8Array) => {
      let result: ClientHelloResult;
      try {
        result = parser.push(chunk);
      } catch (err) {
        result = { status: "invalid", reason: `parser error: ${(err as Error).message}` };
      }
      if (result.status !== "need-more") finish({ kind: "hello", result, bytes: parser.bytes() });
    };
    const onServer = (chunk: Uint8Array) => finish({ kind: "server-first", serverBytes: chunk, bytes: parser.bytes() });
    const onClientGone = () => finish({ kind: "closed", who: "client" });
    const onUpstreamGone = () => finish({ kind: "closed", who: "upstream" });
    const timer = setTimeout(() => finish({ kind: "timeout", bytes: parser.bytes() }), opts.timeoutMs);
    client.on("data", onClient).once("end", onClientGone).once("close", onClientGone);
    upstream.on("data", onServer).once("end", onUpstreamGone).once("close", onUpstreamGone);
    if (initial.length) onClient(initial);
    client.resume();
    upstream.resume();
  });
}
