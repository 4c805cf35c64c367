// Main-thread side of the WinDivert capture: starts the packet workers, keeps the directory of diverted
// connections the proxy consults, and stops everything (WinDivertShutdown from this thread, which makes
// the workers' blocking receive return). Fail open: a worker error closes its handle, which stops all
// diversion; it is reported through `onError`, never thrown into the user's traffic.
import { loadWinDivert } from "../../../ffi/windivert.ts";
import { QUEUE_LENGTH_MAX, QUEUE_SIZE_MAX } from "../../../ffi/windivert.ts";
import type { Logger } from "../../util/log.ts";
import { workerCandidates } from "../../util/worker-module.ts";
import type { Endpoint } from "../../tap/types.ts";
import type { EngineStats } from "./engine.ts";
import { newOwnerTable, type DivertedInfo, type WorkerInit, type WorkerMessage } from "./protocol.ts";
import type { TableLimits } from "./table.ts";

export interface WinDivertCaptureOptions {
  dllPath: string;
  /** Port of the proxy's transparent listener (reflected connections arrive there). */
  proxyPort: number;
  allTraffic: boolean;
  extraAiHosts?: string[];
  useSpec?: boolean;
  /** Also open the SOCKET layer for PIDs (default true). */
  socketLayer?: boolean;
  /** AI host addresses resolved at start (seed.ts). */
  seeds?: { host: string; ip: string }[];
  /** Never divert these PIDs' connections; this process is always excluded. */
  excludedPids?: number[];
  selfPid?: number;
  tlsPorts?: number[];
  localPorts?: number[];
  limits?: Partial<TableLimits>;
  log: Logger;
  /** A worker failed and closed its handle (diversion has stopped: traffic flows normally). */
  onError?: (message: string, code?: number) => void;
  /** Where the worker module is; defaults to ./worker.ts next to this file (a compile entry point). */
  workerUrl?: URL | string;
}

/** The answer to the proxy's question "where was this accepted connection really going?". */
export interface OriginalDestination {
  /** The real server the client connected to (S:sp). */
  server: Endpoint;
  /** The client's own address (C:cp): use it for ConnMeta.client and process lookup. */
  client: Endpoint;
  /** AI hostname learned from DNS for the server address, if any; the SNI is authoritative. */
  host?: string;
  pid?: number;
}

export type WinDivertStats = EngineStats & { batches: number; sendErrors: number; badBatches: number; directory: number };

export interface WinDivertCapture {
  /**
   * Looks up a connection accepted on the transparent listener by its peer address (which, with
   * reflection, is the original server address and the client's port). Waits up to `waitMs` for the
   * worker's announcement; undefined if it is not a diverted connection.
   */
  originalDestination(peer: Endpoint, waitMs?: number): Promise<OriginalDestination | undefined>;
  stats(): WinDivertStats;
  stop(): Promise<void>;
}

const MAX_DIRECTORY = 32768;

/** "::ffff:1.2.3.4" (dual-stack sockets) → "1.2.3.4", the form the packet engine uses. */
export function normalizePeerIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip.toLowerCase();
}

export async function startWinDivert(opts: WinDivertCaptureOptions): Promise<WinDivertCapture> {
  const lib = loadWinDivert(opts.dllPath); // fails fast, in this thread, if the DLL cannot be loaded
  const owners = newOwnerTable();
  const socketLayer = opts.socketLayer ?? true;
  const base: Omit<WorkerInit, "role"> = {
    type: "init",
    dllPath: opts.dllPath,
    proxyPort: opts.proxyPort,
    allTraffic: opts.allTraffic,
    extraAiHosts: opts.extraAiHosts ?? [],
    useSpec: opts.useSpec ?? true,
    selfPid: opts.selfPid ?? process.pid,
    excludedPids: opts.excludedPids ?? [],
    seeds: opts.seeds ?? [],
    tlsPorts: opts.tlsPorts ?? [443],
    localPorts: opts.localPorts ?? [11434, 1234],
    socketLayer,
    owners,
    queueLength: QUEUE_LENGTH_MAX,
    queueSize: QUEUE_SIZE_MAX,
    queueTimeMs: 8000,
    priority: 0,
    limits: opts.limits,
  };
  const directory = new Map<string, DivertedInfo>();
  const waiters = new Map<string, Set<(d: DivertedInfo) => void>>();
  let stats: WinDivertStats = {
    packets: 0, rewritten: 0, passed: 0, dropped: 0, diverted: 0, closed: 0, selfExcluded: 0, tableFull: 0,
    dnsLearned: 0, quicBlocked: 0, malformed: 0, batches: 0, sendErrors: 0, badBatches: 0, directory: 0,
  };
  /**
   * The handles the workers announced ("ready"). Only this thread shuts them down and closes them: a worker
   * closing its own while stop() shuts it down would hand WinDivertShutdown a closed (maybe reused) handle.
   */
  const handles = new Map<string, bigint>();
  const closeHandle = (role: string) => {
    const h = handles.get(role);
    if (h === undefined) return;
    handles.delete(role);
    try {
      lib.close(h);
    } catch (e) {
      opts.log("warn", `WinDivertClose: ${(e as Error).message}`);
    }
  };
  const stopped = new Map<string, () => void>();
  const workers: { role: WorkerInit["role"]; worker: Worker; done: Promise<void> }[] = [];
  let stopping = false;

  const onMessage = (m: WorkerMessage) => {
    switch (m.type) {
      case "conns":
        for (const ev of m.events) {
          if ("close" in ev) {
            directory.delete(ev.close);
            continue;
          }
          const c = ev.open;
          if (directory.size >= MAX_DIRECTORY) directory.delete(directory.keys().next().value as string);
          directory.set(c.key, c);
          const w = waiters.get(c.key);
          if (w) for (const f of w) f(c);
        }
        break;
      case "stats":
        stats = { ...m.stats, directory: directory.size };
        break;
      case "log":
        opts.log(m.level, `windivert: ${m.msg}`);
        break;
      case "error":
        if (!stopping) {
          opts.log("error", `windivert ${m.role}: ${m.message}; diversion stopped, traffic flows normally`);
          opts.onError?.(m.message, m.code);
        }
        break;
      case "ready":
      case "stopped":
        break;
    }
  };

  const candidates = opts.workerUrl ? [opts.workerUrl] : workerCandidates("capture/windivert/worker.ts");
  const start = (role: WorkerInit["role"], candidate = 0): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const worker = new Worker(candidates[candidate]!);
      let settled = false;
      const done = new Promise<void>((res) => stopped.set(role, res));
      worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
        const m = e.data;
        if (m.type === "ready") {
          handles.set(role, BigInt(m.handle));
          settled = true;
          resolve();
        } else if (m.type === "error" && !settled) {
          settled = true;
          reject(Object.assign(new Error(m.message), { code: m.code }));
        } else if (m.type === "stopped") {
          closeHandle(role);
          stopped.get(role)?.();
        }
        onMessage(m);
      };
      worker.onerror = (e) => {
        const msg = `worker crashed: ${e.message}`;
        if (!settled && /ModuleNotFound/.test(e.message) && candidate + 1 < candidates.length) {
          settled = true;
          workers.splice(workers.findIndex((w) => w.worker === worker), 1);
          worker.terminate();
          start(role, candidate + 1).then(resolve, reject);
          return;
        }
        if (!settled) {
          settled = true;
          reject(new Error(msg));
        } else onMessage({ type: "error", role, message: msg });
        // Its loop is gone with it: close the handle so the driver stops diverting (fail open).
        closeHandle(role);
        stopped.get(role)?.();
      };
      workers.push({ role, worker, done });
      worker.postMessage({ ...base, role } satisfies WorkerInit);
    });

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    for (const h of handles.values()) {
      try {
        lib.shutdown(h);
      } catch (e) {
        opts.log("warn", `WinDivertShutdown: ${(e as Error).message}`);
      }
    }
    await Promise.race([Promise.all(workers.map((w) => w.done)), Bun.sleep(3000)]);
    for (const w of workers) w.worker.terminate();
    // A worker that never said "stopped" (crashed, or stuck): its handle still diverts until closed.
    for (const role of [...handles.keys()]) closeHandle(role);
  };

  try {
    // The socket worker first, so the owner table is filling before anything is diverted.
    if (socketLayer) await start("socket");
    await start("network");
  } catch (e) {
    await stop();
    throw e;
  }

  return {
    async originalDestination(peer, waitMs = 1000) {
      const key = `${normalizePeerIp(peer.ip)}|${peer.port}`;
      let d = directory.get(key);
      if (!d && waitMs > 0) {
        d = await new Promise<DivertedInfo | undefined>((resolve) => {
          const set = waiters.get(key) ?? new Set();
          const done = (v: DivertedInfo | undefined) => {
            clearTimeout(timer);
            set.delete(done);
            if (set.size === 0) waiters.delete(key);
            resolve(v);
          };
          const timer = setTimeout(() => done(undefined), waitMs);
          set.add(done);
          waiters.set(key, set);
        });
      }
      if (!d) return undefined;
      return {
        server: { ip: d.serverIp, port: d.serverPort },
        client: { ip: d.clientIp, port: d.clientPort },
        host: d.host,
        pid: d.pid,
      };
    },
    stats: () => ({ ...stats, directory: directory.size }),
    stop,
  };
}
