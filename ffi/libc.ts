// libc calls the Linux process lookup needs, through bun:ffi, loaded lazily (only ever on Linux): the
// socket calls that query one socket over NETLINK_SOCK_DIAG (src/capture/process/sock-diag.ts) instead of
// reading the whole /proc/net/tcp table. bun:ffi dlopens the system's libc, so this works the same in the
// compiled binary. Errors are return values (-1); errno is not read: every failure is handled alike.
import { dlopen, FFIType } from "bun:ffi";

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
/** SO_RCVTIMEO on x86-64 and arm64 (asm-generic; it differs on some other architectures). */
export const SO_RCVTIMEO = 20;
export const MSG_NOSIGNAL = 0x4000;

const SYMBOLS = {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  send: { args: ["i32", "ptr", "u64", "i32"], returns: FFIType.i64_fast },
  // One datagram to a unix socket: systemd's readiness notification (src/util/sd-notify.ts).
  sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: FFIType.i64_fast },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: FFIType.i64_fast },
  close: { args: ["i32"], returns: "i32" },
  // A TCP listener on loopback, the socket the netlink answers are checked against once.
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  listen: { args: ["i32", "i32"], returns: "i32" },
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
} as const;

/** glibc's soname first, then musl's (Alpine) and the unversioned name. */
const CANDIDATES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

type Libc = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];
let libc: Libc | null | undefined;

/** The libc symbols, or null when no libc could be loaded (not Linux, no FFI). Tried once. */
export function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== "linux") return libc;
  for (const name of CANDIDATES) {
    try {
      libc = dlopen(name, SYMBOLS).symbols;
      break;
    } catch {
      // try the next name
    }
  }
  return libc;
}
