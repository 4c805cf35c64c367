// bun:ffi bindings for WinDivert 2.2 (WinDivert.dll). Only the calls the packet loop needs, wrapped so
// that errors carry the Win32 error code and a sentence a user can act on. Blocking calls (RecvEx) must
// run in a Worker: a blocking FFI call blocks its thread's event loop.
//
// The same bindings load the stand-in library (test/support/windivert-stub) on Linux, which exports a
// WinDivertStubLastError because Linux has no GetLastError.
import { dlopen, ptr } from "bun:ffi";
import { ADDRESS_SIZE } from "./windivert-address.ts";

export const FLAG_SNIFF = 0x0001n;
export const FLAG_DROP = 0x0002n;
export const FLAG_RECV_ONLY = 0x0004n;
export const FLAG_SEND_ONLY = 0x0008n;

export const PARAM_QUEUE_LENGTH = 0;
export const PARAM_QUEUE_TIME = 1;
export const PARAM_QUEUE_SIZE = 2;

export const SHUTDOWN_RECV = 1;
export const SHUTDOWN_SEND = 2;
export const SHUTDOWN_BOTH = 3;

export const QUEUE_LENGTH_MAX = 16384;
export const QUEUE_SIZE_MAX = 33554432;
export const QUEUE_TIME_MAX = 16000;
export const BATCH_MAX = 255;
export const MTU_MAX = 40 + 0xffff;

export const ERROR_FILE_NOT_FOUND = 2;
export const ERROR_ACCESS_DENIED = 5;
export const ERROR_INVALID_PARAMETER = 87;
export const ERROR_INSUFFICIENT_BUFFER = 122;
export const ERROR_NO_DATA = 232;
export const ERROR_INVALID_IMAGE_HASH = 577;
export const ERROR_DRIVER_FAILED_PRIOR_UNLOAD = 654;
export const ERROR_DRIVER_BLOCKED = 1275;
export const EPT_S_NOT_REGISTERED = 1753;

const INVALID_HANDLE = 0xffffffffffffffffn;

/** A WinDivert handle (HANDLE as a 64-bit integer). */
export type DivertHandle = bigint;

export class WinDivertError extends Error {
  constructor(readonly call: string, readonly code: number) {
    super(`${call} failed: ${explainError(code)}`);
    this.name = "WinDivertError";
  }
}

/** What a WinDivert error code means for the user (wording follows WinDivert's documentation). */
export function explainError(code: number): string {
  switch (code) {
    case ERROR_FILE_NOT_FOUND: return "WinDivert64.sys was not found next to WinDivert.dll (error 2)";
    case ERROR_ACCESS_DENIED: return "access denied: run oisp redirect as Administrator (error 5)";
    case ERROR_INVALID_PARAMETER: return "invalid filter, layer, priority or flags (error 87)";
    case ERROR_INVALID_IMAGE_HASH: return "WinDivert64.sys has no valid signature (error 577)";
    case ERROR_DRIVER_FAILED_PRIOR_UNLOAD: return "an incompatible WinDivert driver version is loaded; reboot or stop it (error 654)";
    case ERROR_DRIVER_BLOCKED: return "the WinDivert driver was blocked by security software or policy (error 1275)";
    case EPT_S_NOT_REGISTERED: return "the Base Filtering Engine service is disabled (error 1753)";
    case ERROR_NO_DATA: return "the handle was shut down and its queue is empty (error 232)";
    case ERROR_INSUFFICIENT_BUFFER: return "the packet buffer is too small (error 122)";
    default: return `Win32 error ${code}`;
  }
}

const SYMBOLS = {
  WinDivertOpen: { args: ["ptr", "i32", "i16", "u64"], returns: "u64" },
  WinDivertRecvEx: { args: ["u64", "ptr", "u32", "ptr", "u64", "ptr", "ptr", "ptr"], returns: "i32" },
  WinDivertSendEx: { args: ["u64", "ptr", "u32", "ptr", "u64", "ptr", "u32", "ptr"], returns: "i32" },
  WinDivertShutdown: { args: ["u64", "i32"], returns: "i32" },
  WinDivertClose: { args: ["u64"], returns: "i32" },
  WinDivertSetParam: { args: ["u64", "i32", "u64"], returns: "i32" },
  WinDivertHelperCalcChecksums: { args: ["ptr", "u32", "ptr", "u64"], returns: "i32" },
  WinDivertHelperParsePacket: {
    args: ["ptr", "u32", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr"],
    returns: "i32",
  },
} as const;

export interface ParsedByHelper {
  protocol: number;
  ipv4HeaderAt?: number;
  ipv6HeaderAt?: number;
  tcpHeaderAt?: number;
  udpHeaderAt?: number;
  dataAt?: number;
  dataLen: number;
  /** Offset of the next packet in a batch buffer, if any. */
  nextAt?: number;
}

export interface WinDivert {
  readonly path: string;
  open(filter: string, layer: number, priority: number, flags: bigint): DivertHandle;
  /**
   * Receives up to `addrs.length / 80` packets into `packets` (concatenated). Returns the byte count and
   * the number of packets, or undefined once the handle has been shut down and drained.
   */
  recv(h: DivertHandle, packets: Uint8Array, addrs: Uint8Array): { bytes: number; count: number } | undefined;
  /** Sends `count` concatenated packets (`bytes` long) with their addresses. */
  send(h: DivertHandle, packets: Uint8Array, bytes: number, addrs: Uint8Array, count: number): void;
  shutdown(h: DivertHandle, how?: number): void;
  close(h: DivertHandle): void;
  setParam(h: DivertHandle, param: number, value: number): void;
  calcChecksums(packet: Uint8Array, addr?: Uint8Array): void;
  parsePacket(packet: Uint8Array): ParsedByHelper | undefined;
  lastError(): number;
}

function lastErrorReader(path: string, stub: boolean): () => number {
  if (process.platform === "win32") {
    const k = dlopen("kernel32.dll", { GetLastError: { args: [], returns: "u32" } });
    return () => k.symbols.GetLastError();
  }
  if (stub) {
    const s = dlopen(path, { WinDivertStubLastError: { args: [], returns: "u32" } });
    return () => s.symbols.WinDivertStubLastError();
  }
  return () => 0;
}

/** Loads WinDivert.dll (or the stand-in) from an explicit path; throws with the path if it cannot. */
export function loadWinDivert(path: string): WinDivert {
  const lib = dlopen(path, SYMBOLS);
  const s = lib.symbols;
  const lastError = lastErrorReader(path, process.platform !== "win32");
  const recvLen = new Uint32Array(1);
  const addrLen = new Uint32Array(1);
  const sendLen = new Uint32Array(1);
  const fail = (call: string): never => {
    throw new WinDivertError(call, lastError());
  };

  return {
    path,
    lastError,
    open(filter, layer, priority, flags) {
      const h = s.WinDivertOpen(Buffer.from(`${filter}\0`, "latin1"), layer, priority, flags);
      if (h === INVALID_HANDLE || h === 0n) fail("WinDivertOpen");
      return h;
    },
    recv(h, packets, addrs) {
      addrLen[0] = Math.floor(Math.min(addrs.length / ADDRESS_SIZE, BATCH_MAX)) * ADDRESS_SIZE;
      recvLen[0] = 0;
      const ok = s.WinDivertRecvEx(
        h, packets, packets.length, recvLen, 0n, addrs, addrLen, null,
      );
      if (!ok) {
        const code = lastError();
        if (code === ERROR_NO_DATA) return undefined;
        throw new WinDivertError("WinDivertRecvEx", code);
      }
      return { bytes: recvLen[0]!, count: addrLen[0]! / ADDRESS_SIZE };
    },
    send(h, packets, bytes, addrs, count) {
      if (count === 0) return;
      if (!s.WinDivertSendEx(h, packets, bytes, sendLen, 0n, addrs, count * ADDRESS_SIZE, null)) fail("WinDivertSendEx");
    },
    shutdown(h, how = SHUTDOWN_BOTH) {
      if (!s.WinDivertShutdown(h, how)) fail("WinDivertShutdown");
    },
    close(h) {
      if (!s.WinDivertClose(h)) fail("WinDivertClose");
    },
    setParam(h, param, value) {
      if (!s.WinDivertSetParam(h, param, BigInt(value))) fail("WinDivertSetParam");
    },
    calcChecksums(packet, addr) {
      if (!s.WinDivertHelperCalcChecksums(packet, packet.length, addr ?? null, 0n)) fail("WinDivertHelperCalcChecksums");
    },
    parsePacket(packet) {
      const out = new BigUint64Array(10); // ip, ipv6, -, icmp, icmpv6, tcp, udp, data, next (pointers)
      const proto = new Uint8Array(1);
      const lens = new Uint32Array(2);
      const base = BigInt(ptr(packet));
      const slot = (i: number) => out.subarray(i, i + 1);
      const ok = s.WinDivertHelperParsePacket(
        packet, packet.length, slot(0), slot(1), proto, slot(3), slot(4), slot(5), slot(6), slot(7),
        lens.subarray(0, 1), slot(8), lens.subarray(1, 2),
      );
      if (!ok) return undefined;
      const at = (i: number) => (out[i] ? Number(out[i]! - base) : undefined);
      return {
        protocol: proto[0]!, ipv4HeaderAt: at(0), ipv6HeaderAt: at(1), tcpHeaderAt: at(5), udpHeaderAt: at(6),
        dataAt: at(7), dataLen: lens[0]!, nextAt: at(8),
      };
    },
  };
}
