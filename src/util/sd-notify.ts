// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram such as "READY=1" to the
// unix socket named by $NOTIFY_SOCKET. Neither node:dgram nor Bun.udpSocket speaks unix datagrams, so
// the socket is libc's through bun:ffi. Outside systemd (no NOTIFY_SOCKET), and wherever it fails, it
// does nothing: readiness is a courtesy to the service manager, never a reason to stop capturing.
import { AF_UNIX, loadLibc, MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM } from "../../ffi/libc.ts";

const SUN_PATH_MAX = 108;

/** struct sockaddr_un for a path, or an abstract name written "@name" (systemd's convention). */
export function unixAddress(name: string): { addr: Uint8Array; len: number } | undefined {
  const abstract = name.startsWith("@");
  const bytes = new TextEncoder().encode(abstract ? name.slice(1) : name);
  if (!bytes.length || bytes.length + 1 > SUN_PATH_MAX) return undefined; // path + NUL, or NUL + name
  const addr = new Uint8Array(2 + SUN_PATH_MAX);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, abstract ? 3 : 2); // abstract: a leading NUL, and the length counts no trailing one
  return { addr, len: 2 + bytes.length + 1 };
}

/** Sends `state` ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...") if systemd asked for it. True if sent. */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const target = env.NOTIFY_SOCKET;
  if (!target || process.platform !== "linux") return false;
  const to = unixAddress(target);
  const libc = loadLibc();
  if (!to || !libc) return false;
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  try {
    const msg = new TextEncoder().encode(state);
    return Number(libc.sendto(fd, msg, msg.length, MSG_NOSIGNAL, to.addr, to.len)) === msg.length;
  } finally {
    libc.close(fd);
  }
}
