// Messages between the main thread (redirector.ts) and the packet workers (worker.ts), and the shared
// socket-owner table the SOCKET-layer worker fills and the NETWORK-layer worker reads.
import type { EngineStats } from "./engine.ts";
import type { DivertedConn, TableLimits } from "./table.ts";

export interface WorkerInit {
  type: "init";
  /** network: divert and rewrite; socket: sniff connect events for PIDs. */
  role: "network" | "socket";
  dllPath: string;
  proxyPort: number;
  allTraffic: boolean;
  /** Hosts treated as AI hosts in addition to the spec bundle's (tests, user additions). */
  extraAiHosts: string[];
  /** Use the embedded spec bundle's AI host list (off in tests that want only extraAiHosts). */
  useSpec: boolean;
  selfPid: number;
  excludedPids: number[];
  /** Addresses of AI hosts resolved at start (see seed.ts), learned before the first packet. */
  seeds: { host: string; ip: string }[];
  tlsPorts: number[];
  localPorts: number[];
  /** Whether a socket worker runs (else the owner lookup does not wait for it). */
  socketLayer: boolean;
  owners: SharedArrayBuffer;
  queueLength: number;
  queueSize: number;
  queueTimeMs: number;
  priority: number;
  limits?: Partial<TableLimits>;
}

/** What the proxy needs to know about a diverted connection: the table entry's identity fields. Plain data. */
export type DivertedInfo = Pick<DivertedConn, "key" | "clientIp" | "clientPort" | "serverIp" | "serverPort" | "host" | "pid">;

export type WorkerMessage =
  | { type: "ready"; role: WorkerInit["role"]; handle: string }
  /** Connections diverted and forgotten, in the order they happened (a key can be closed and reused). */
  | { type: "conns"; events: ({ open: DivertedInfo } | { close: string })[] }
  | { type: "stats"; stats: EngineStats & { batches: number; sendErrors: number; badBatches: number } }
  | { type: "log"; level: "debug" | "info" | "warn" | "error"; msg: string }
  | { type: "error"; role: WorkerInit["role"]; message: string; code?: number }
  | { type: "stopped"; role: WorkerInit["role"] };

// Owner table: for each local TCP port, [pid, hash of the remote endpoint]; the last slot is a
// generation counter bumped (and notified) on every write so a reader can Atomics.wait for news.
export const OWNER_SLOTS = 65536 * 2 + 1;
export const OWNER_GEN = 65536 * 2;

export function newOwnerTable(): SharedArrayBuffer {
  return new SharedArrayBuffer(OWNER_SLOTS * 4);
}

/** FNV-1a of "ip|port", never 0 (0 marks an empty slot). */
export function remoteHash(ip: string, port: number): number {
  let h = 0x811c9dc5;
  const s = `${ip}|${port}`;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 1;
}

export function recordOwner(t: Int32Array, localPort: number, remoteIp: string, remotePort: number, pid: number): void {
  Atomics.store(t, localPort * 2, pid);
  Atomics.store(t, localPort * 2 + 1, remoteHash(remoteIp, remotePort));
  Atomics.add(t, OWNER_GEN, 1);
  Atomics.notify(t, OWNER_GEN);
}

export function clearOwner(t: Int32Array, localPort: number, remoteIp: string, remotePort: number): void {
  if (Atomics.load(t, localPort * 2 + 1) !== remoteHash(remoteIp, remotePort)) return;
  Atomics.store(t, localPort * 2 + 1, 0);
  Atomics.store(t, localPort * 2, 0);
}

/**
 * PID recorded for a connect from `localPort` to remote, waiting up to `waitMs` for the socket worker
 * (its CONNECT event and the SYN travel through different queues).
 */
export function ownerOf(t: Int32Array, localPort: number, remoteIp: string, remotePort: number, waitMs: number): number | undefined {
  const want = remoteHash(remoteIp, remotePort);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const gen = Atomics.load(t, OWNER_GEN);
    if (Atomics.load(t, localPort * 2 + 1) === want) {
      const pid = Atomics.load(t, localPort * 2);
      if (pid > 0) return pid;
    }
    const left = deadline - Date.now();
    if (left <= 0) return undefined;
    Atomics.wait(t, OWNER_GEN, gen, left);
  }
}
