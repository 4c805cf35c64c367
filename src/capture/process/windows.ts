// Process lookup on Windows: which process owns the client end of a TCP connection, from the system TCP
// table (GetExtendedTcpTable) and the image path of its PID. Used by the proxy (explicit mode) and for
// diverted connections whose PID the SOCKET layer did not report in time.
import path from "node:path";
import { AF_INET, AF_INET6, getTcpTable, processImagePath, type TcpRow } from "../../../ffi/win32.ts";
import { parseIp } from "./ip.ts";
import type { Endpoint, ProcessInfo } from "../../tap/types.ts";

const sameIp = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The row whose local end is `client` (and remote end `server`, when given), from rows of either family. */
export function findOwner(rows: readonly TcpRow[], client: Endpoint, server?: Endpoint): TcpRow | undefined {
  const c = toBytes(client.ip);
  const s = server ? toBytes(server.ip) : undefined;
  if (!c) return undefined;
  return rows.find(
    (r) =>
      r.localPort === client.port && sameIp(r.localAddr, c) &&
      (!server || !s || (r.remotePort === server.port && sameIp(r.remoteAddr, s))),
  );
}

/** Address bytes in the family the TCP table uses: IPv4-mapped IPv6 text becomes 4 bytes. */
function toBytes(ip: string): Uint8Array | undefined {
  const b = parseIp(ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip);
  return b;
}

const names = new Map<number, { exe?: string; at: number }>();
const NAME_TTL_MS = 10_000;
const NAME_CACHE_MAX = 1024;

function exeOf(pid: number, now: number): string | undefined {
  const hit = names.get(pid);
  if (hit && now - hit.at < NAME_TTL_MS) return hit.exe;
  const exe = processImagePath(pid);
  names.set(pid, { exe, at: now });
  if (names.size > NAME_CACHE_MAX) names.delete(names.keys().next().value as number);
  return exe;
}

/** ProcessInfo for a PID already known (from the SOCKET layer). */
export function windowsProcessInfo(pid: number): ProcessInfo {
  const exe = pid > 4 ? exeOf(pid, Date.now()) : undefined;
  return { pid, exe, name: exe ? path.win32.basename(exe) : pid === 4 ? "System" : undefined };
}

/**
 * The process that owns the client end `client` of a connection to `server` (as seen from the client).
 * Undefined when the connection is already gone. Never throws.
 */
export function lookupWindowsProcess(client: Endpoint, server?: Endpoint): ProcessInfo | undefined {
  try {
    const v6 = client.ip.includes(":") && !(client.ip.startsWith("::ffff:") && client.ip.includes("."));
    const row = findOwner(getTcpTable(v6 ? AF_INET6 : AF_INET), client, server);
    return row ? windowsProcessInfo(row.pid) : undefined;
  } catch {
    return undefined;
  }
}


/** The ProcessLookup of src/capture/process/index.ts for Windows (explicit proxy mode). */
export function createWindowsProcessLookup(): (client: Endpoint, proxy: Endpoint) => Promise<ProcessInfo | undefined> {
  return async (client, proxy) => lookupWindowsProcess(client, proxy);
}
