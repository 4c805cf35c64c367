// The proxy's own answers: one status line, a one-line plain-text reason, and Connection: close.
import type { ConnectFailure } from "../../mitm/upstream.ts";

const REASONS: Record<number, string> = {
  400: "Bad Request",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

export function errorResponse(status: number, reason: string): Buffer {
  const body = `oisp proxy: ${reason.replace(/[\r\n]+/g, " ")}\n`;
  return Buffer.from(
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n` +
      "Content-Type: text/plain; charset=utf-8\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      "Connection: close\r\n" +
      "Proxy-Connection: close\r\n" +
      `\r\n${body}`,
    "utf8",
  );
}

/** A refused or unresolvable host is a bad gateway; a host that does not answer is a gateway timeout. */
export function statusForUpstreamError(kind: ConnectFailure): number {
  return kind === "timeout" ? 504 : 502;
}

export const CONNECT_ESTABLISHED = Buffer.from("HTTP/1.1 200 Connection Established\r\n\r\n");

/**
 * Sends the proxy's own answer and closes: destroyed once flushed (or after `graceMs`), because a
 * client that keeps its side open would otherwise hold a half-closed socket forever.
 */
export function replyAndClose(sock: { end(data: Buffer, cb?: () => void): unknown; destroy(): unknown; destroyed: boolean }, response: Buffer, graceMs = 2000): void {
  if (sock.destroyed) return;
  const timer = setTimeout(() => sock.destroy(), graceMs);
  timer.unref?.();
  sock.end(response, () => {
    clearTimeout(timer);
    sock.destroy();
  });
}
