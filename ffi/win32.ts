// Win32 calls the Windows capture needs, through bun:ffi, loaded lazily (only ever on Windows):
//   iphlpapi  GetExtendedTcpTable (IPv4 and IPv6, TCP_TABLE_OWNER_PID_ALL): which PID owns a connection
//   kernel32  OpenProcess, QueryFullProcessImageNameW, CloseHandle, GetCurrentProcess, GetLastError,
//             GetCurrentThread, GetThreadPriority, SetThreadPriority
//   advapi32  OpenProcessToken + GetTokenInformation(TokenElevation): are we elevated?
// The table parsing is plain code over bytes (parseTcpTable4/6) so it is tested on any OS.
import { dlopen } from "bun:ffi";

export const AF_INET = 2;
export const AF_INET6 = 23;
const TCP_TABLE_OWNER_PID_ALL = 5;
const ERROR_INSUFFICIENT_BUFFER = 122;
const PROCESS_QUERY_LIMITED_INFORMATION = 0x1000;
const TOKEN_QUERY = 0x0008;
const TOKEN_ELEVATION = 20;

export interface TcpRow {
  state: number;
  /** Network-order address bytes (4 or 16). */
  localAddr: Uint8Array;
  localPort: number;
  remoteAddr: Uint8Array;
  remotePort: number;
  pid: number;
}

// MIB_TCPTABLE_OWNER_PID: DWORD dwNumEntries; MIB_TCPROW_OWNER_PID table[] (24 bytes each):
//   dwState, dwLocalAddr (network order bytes), dwLocalPort (network-order port in the low 2 bytes),
//   dwRemoteAddr, dwRemotePort, dwOwningPid.
export function parseTcpTable4(buf: Uint8Array): TcpRow[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 4) return [];
  const n = Math.min(dv.getUint32(0, true), Math.floor((buf.length - 4) / 24));
  const rows: TcpRow[] = [];
  for (let i = 0, o = 4; i < n; i++, o += 24) {
    rows.push({
      state: dv.getUint32(o, true),
      localAddr: buf.slice(o + 4, o + 8),
      localPort: dv.getUint16(o + 8, false),
      remoteAddr: buf.slice(o + 12, o + 16),
      remotePort: dv.getUint16(o + 16, false),
      pid: dv.getUint32(o + 20, true),
    });
  }
  return rows;
}

// MIB_TCP6TABLE_OWNER_PID: DWORD dwNumEntries; MIB_TCP6ROW_OWNER_PID table[] (56 bytes each):
//   ucLocalAddr[16], dwLocalScopeId, dwLocalPort, ucRemoteAddr[16], dwRemoteScopeId, dwRemotePort,
//   dwState, dwOwningPid.
export function parseTcpTable6(buf: Uint8Array): TcpRow[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 4) return [];
  const n = Math.min(dv.getUint32(0, true), Math.floor((buf.length - 4) / 56));
  const rows: TcpRow[] = [];
  for (let i = 0, o = 4; i < n; i++, o += 56) {
    rows.push({
      localAddr: buf.slice(o, o + 16),
      localPort: dv.getUint16(o + 20, false),
      remoteAddr: buf.slice(o + 24, o + 40),
      remotePort: dv.getUint16(o + 44, false),
      state: dv.getUint32(o + 48, true),
      pid: dv.getUint32(o + 52, true),
    });
  }
  return rows;
}

type Libs = ReturnType<typeof openLibs>;
let libs: Libs | undefined;

function openLibs() {
  const iphlpapi = dlopen("iphlpapi.dll", {
    GetExtendedTcpTable: { args: ["ptr", "ptr", "i32", "u32", "i32", "u32"], returns: "u32" },
  });
  const kernel32 = dlopen("kernel32.dll", {
    OpenProcess: { args: ["u32", "i32", "u32"], returns: "u64" },
    QueryFullProcessImageNameW: { args: ["u64", "u32", "ptr", "ptr"], returns: "i32" },
    CloseHandle: { args: ["u64"], returns: "i32" },
    GetCurrentProcess: { args: [], returns: "u64" },
    GetLastError: { args: [], returns: "u32" },
    GetCurrentThread: { args: [], returns: "u64" },
    GetThreadPriority: { args: ["u64"], returns: "i32" },
    SetThreadPriority: { args: ["u64", "i32"], returns: "i32" },
  });
  const advapi32 = dlopen("advapi32.dll", {
    OpenProcessToken: { args: ["u64", "u32", "ptr"], returns: "i32" },
    GetTokenInformation: { args: ["u64", "i32", "ptr", "u32", "ptr"], returns: "i32" },
  });
  return { iphlpapi: iphlpapi.symbols, kernel32: kernel32.symbols, advapi32: advapi32.symbols };
}

function win32(): Libs {
  if (process.platform !== "win32") throw new Error("Win32 API is only available on Windows");
  libs ??= openLibs();
  return libs;
}

/** The raw TCP connection table with owning PIDs for one address family (grows its buffer as told). */
export function getTcpTable(family: typeof AF_INET | typeof AF_INET6): TcpRow[] {
  const { iphlpapi } = win32();
  const size = new Uint32Array([64 * 1024]);
  for (let attempt = 0; attempt < 4; attempt++) {
    const buf = new Uint8Array(size[0]!);
    const rc = iphlpapi.GetExtendedTcpTable(buf, size, 0, family, TCP_TABLE_OWNER_PID_ALL, 0);
    if (rc === 0) return family === AF_INET ? parseTcpTable4(buf) : parseTcpTable6(buf);
    if (rc !== ERROR_INSUFFICIENT_BUFFER) throw new Error(`GetExtendedTcpTable failed: Win32 error ${rc}`);
    size[0] = size[0]! + 16 * 1024; // the table grew between calls
  }
  throw new Error("GetExtendedTcpTable: table kept growing");
}

/** Full path of a process's executable, or undefined (exited, or protected). */
export function processImagePath(pid: number): string | undefined {
  const { kernel32 } = win32();
  const h = kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
  if (h === 0n) return undefined;
  try {
    const buf = new Uint16Array(32768);
    const len = new Uint32Array([buf.length]);
    if (!kernel32.QueryFullProcessImageNameW(h, 0, buf, len)) return undefined;
    return String.fromCharCode(...buf.subarray(0, len[0]!));
  } finally {
    kernel32.CloseHandle(h);
  }
}

/** True when this process runs with an elevated (Administrator) token. */
export function isElevated(): boolean {
  const { kernel32, advapi32 } = win32();
  const token = new BigUint64Array(1);
  if (!advapi32.OpenProcessToken(kernel32.GetCurrentProcess(), TOKEN_QUERY, token)) return false;
  try {
    const elevation = new Uint32Array(1);
    const ret = new Uint32Array(1);
    if (!advapi32.GetTokenInformation(token[0]!, TOKEN_ELEVATION, elevation, 4, ret)) return false;
    return elevation[0] !== 0;
  } finally {
    kernel32.CloseHandle(token[0]!);
  }
}

/** THREAD_PRIORITY_BELOW_NORMAL: one step under the process's base priority. */
export const THREAD_PRIORITY_BELOW_NORMAL = -1;

/**
 * Lowers the calling thread's priority to `priority` (never raises it); returns its priority afterwards, or
 * undefined when it could not be read or set. GetCurrentThread is a pseudo-handle: nothing to close.
 */
export function lowerCurrentThreadPriority(priority: number): number | undefined {
  const { kernel32 } = win32();
  const me = kernel32.GetCurrentThread();
  const now = kernel32.GetThreadPriority(me);
  if (now === 0x7fffffff) return undefined; // THREAD_PRIORITY_ERROR_RETURN
  if (now <= priority) return now;
  return kernel32.SetThreadPriority(me, priority) ? kernel32.GetThreadPriority(me) : undefined;
}

/** The calling thread's priority (THREAD_PRIORITY_*). */
export function currentThreadPriority(): number {
  const { kernel32 } = win32();
  return kernel32.GetThreadPriority(kernel32.GetCurrentThread());
}
