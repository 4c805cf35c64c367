// Records of ffi/bpf/proc.bpf.c's ring buffer, decoded from their bytes. Sans-IO: the layouts mirror the C
// structs (x86_64/arm64 natural alignment, little-endian) and tests feed bytes built the same way.

export const REC_EXEC = 1;
export const REC_PATH = 2;
export const REC_WRITE = 3;
export const REC_CHUNK = 4;
export const REC_CLOSE = 5;
export const REC_EXIT = 6;
export const REC_HELLO = 7;

/** Header of every record: type, pid (tgid), tid, the process's watch mark, CLOCK_MONOTONIC ns. */
interface Head {
  pid: number;
  tid: number;
  /** proc_watched's value when recorded: WATCH_CONFIRMED, WATCH_PROVISIONAL | root pid, or 0. */
  watch: number;
  tsNs: bigint;
}

export const WATCH_CONFIRMED = 1;
export const WATCH_PROVISIONAL = 0x80000000;

/** The process whose ClientHello a provisional mark waits on; undefined for a confirmed (or no) mark. */
export function provisionalRoot(watch: number): number | undefined {
  return watch & WATCH_PROVISIONAL ? (watch & ~WATCH_PROVISIONAL) >>> 0 : undefined;
}

export interface SockAddr {
  ip: string;
  port: number;
}

export type ProcRecord =
  | (Head & { type: "exec"; ppid: number; uid: number; comm: string; filename: string; argv: string[]; argvTruncated: boolean; cwd?: string })
  | (Head & { type: "path"; file: bigint; ino: bigint; path: string })
  | (Head & { type: "write"; file: bigint; ino: bigint; ret: number; offset: number; fd: number; syscall: number; chunks: number })
  | (Head & { type: "chunk"; file: bigint; seq: number; data: Uint8Array })
  | (Head & { type: "close"; file: bigint })
  | (Head & { type: "exit" })
  | (Head & { type: "hello"; family: number; local: SockAddr; remote: SockAddr; fd: number; data: Uint8Array });

/** Sizes of the C structs: a record shorter than its type's is malformed. */
export const RECORD_SIZE = { exec: 8768, path: 4400, write: 72, chunk: 4136, close: 32, exit: 24, hello: 4168 } as const;

export const EXEC_AT = { ppid: 24, uid: 28, argvLen: 32, argvFullLen: 36, cwdLen: 40, comm: 48, filename: 64, argv: 320, cwd: 4416 } as const;
export const PATH_AT = { file: 24, ino: 32, len: 40, path: 48 } as const;
const PATH_BUF = 4096 + 256;
const utf8 = new TextDecoder("utf-8");

/** Decodes one record; undefined for an unknown type or a record too short for its type (counted by the caller). */
export function decodeRecord(b: Uint8Array): ProcRecord | undefined {
  if (b.length < RECORD_SIZE.exit) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const head: Head = { pid: v.getUint32(4, true), tid: v.getUint32(8, true), watch: v.getUint32(12, true), tsNs: v.getBigUint64(16, true) };
  switch (v.getUint32(0, true)) {
    case REC_EXEC: {
      if (b.length < RECORD_SIZE.exec) return undefined;
      const argvLen = Math.min(v.getUint32(EXEC_AT.argvLen, true), 4096);
      const fullLen = v.getUint32(EXEC_AT.argvFullLen, true);
      const cwdLen = Math.min(v.getUint32(EXEC_AT.cwdLen, true), PATH_BUF);
      return {
        ...head,
        type: "exec",
        ppid: v.getUint32(EXEC_AT.ppid, true),
        uid: v.getUint32(EXEC_AT.uid, true),
        comm: cString(b, EXEC_AT.comm, 16),
        filename: cString(b, EXEC_AT.filename, 256),
        argv: splitNul(b.subarray(EXEC_AT.argv, EXEC_AT.argv + argvLen)),
        argvTruncated: fullLen > argvLen,
        ...(cwdLen > 0 && { cwd: joinComponents(b.subarray(EXEC_AT.cwd, EXEC_AT.cwd + cwdLen)) }),
      };
    }
    case REC_PATH: {
      if (b.length < RECORD_SIZE.path) return undefined;
      const len = Math.min(v.getUint32(PATH_AT.len, true), PATH_BUF);
      return { ...head, type: "path", file: v.getBigUint64(PATH_AT.file, true), ino: v.getBigUint64(PATH_AT.ino, true), path: joinComponents(b.subarray(PATH_AT.path, PATH_AT.path + len)) };
    }
    case REC_WRITE:
      if (b.length < RECORD_SIZE.write) return undefined;
      return {
        ...head,
        type: "write",
        file: v.getBigUint64(24, true),
        ino: v.getBigUint64(32, true),
        ret: Number(v.getBigInt64(40, true)),
        offset: Number(v.getBigInt64(48, true)),
        fd: v.getUint32(56, true),
        syscall: v.getUint32(60, true),
        chunks: v.getUint32(64, true),
      };
    case REC_CHUNK: {
      if (b.length < RECORD_SIZE.chunk) return undefined;
      const len = Math.min(v.getUint32(32, true), 4096);
      return { ...head, type: "chunk", file: v.getBigUint64(24, true), seq: v.getUint32(36, true), data: b.slice(40, 40 + len) };
    }
    case REC_CLOSE:
      if (b.length < RECORD_SIZE.close) return undefined;
      return { ...head, type: "close", file: v.getBigUint64(24, true) };
    case REC_EXIT:
      return { ...head, type: "exit" };
    case REC_HELLO: {
      if (b.length < RECORD_SIZE.hello) return undefined;
      const family = v.getUint16(24, true);
      const len = Math.min(v.getUint32(36, true), 4096);
      return {
        ...head,
        type: "hello",
        family,
        local: { ip: ipString(family, b.subarray(40, 56)), port: v.getUint16(26, true) },
        remote: { ip: ipString(family, b.subarray(56, 72)), port: v.getUint16(28, true) },
        fd: v.getUint32(32, true),
        data: b.slice(72, 72 + len),
      };
    }
  }
  return undefined;
}

function cString(b: Uint8Array, at: number, max: number): string {
  const s = b.subarray(at, at + max);
  const end = s.indexOf(0);
  return utf8.decode(end >= 0 ? s.subarray(0, end) : s);
}

/** argv as the kernel lays it out: NUL-separated, a NUL after the last (absent when cut). */
function splitNul(b: Uint8Array): string[] {
  if (b.length === 0) return [];
  const parts = utf8.decode(b).split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** The probe writes a path's names leaf first, each NUL-terminated: "/" + root-first join. */
function joinComponents(b: Uint8Array): string {
  const names = splitNul(b).filter((n) => n !== "" && n !== "/");
  return `/${names.reverse().join("/")}`;
}

function ipString(family: number, b: Uint8Array): string {
  if (family === 2) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  const text = groups.join(":");
  // ::ffff:a.b.c.d (an IPv4 peer of an IPv6 socket) reads as the IPv4 address
  if (text.startsWith("0:0:0:0:0:ffff:")) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  return text.replace(/(^|:)0(:0)+(:|$)/, "::");
}
