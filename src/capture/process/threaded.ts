// The Linux process lookup, run in a Worker (lookup-worker.ts) so its /proc scan stays off the relay's
// thread. The Worker starts with the first lookup and ends after `idleMs` without one: it is a second JS
// heap, which an idle sensor should not keep. Lookups made while it loads (10-30 ms) run in this thread:
// a short-lived client (curl to a fast server) may be gone by then, and the scan must start while its
// socket surely exists. If the Worker cannot start or dies, lookups run in this thread from then on.
import { workerCandidates } from "../../util/worker-module.ts";
import type { Endpoint, ProcessInfo } from "../../tap/types.ts";
import type { ProcessLookup } from "./index.ts";
import { createLinuxProcessLookup } from "./linux.ts";

/** Relay → Worker. */
export interface LookupRequest {
  id: number;
  client: Endpoint;
  proxy: Endpoint;
}

/** Worker → relay: the answer to request `id`; id 0 (sent once) says the module has loaded. */
export interface LookupAnswer {
  id: number;
  info: ProcessInfo | undefined;
}

/** The lookup Worker's thread name. */
export const LOOKUP_THREAD_NAME = "oisp-lookup";

export interface ThreadedLookupOptions {
  /** The Worker module (tests); default: lookup-worker.ts, from source or inside the compiled binary. */
  workerUrl?: string;
  /** The Worker is ended after this long without lookups (default 30 s). */
  idleMs?: number;
  /** Lookups waiting for the Worker; past it new ones resolve undefined at once (default 10,000). */
  maxPending?: number;
}

export interface ThreadedLookupStats {
  /** A Worker is up now. */
  running: boolean;
  /** ...and has loaded: lookups go to it. */
  ready: boolean;
  /** Workers started (one per idle period that ended with a lookup). */
  starts: number;
  /** Workers ended for being idle. */
  idleStops: number;
  /** Workers that could not start or died; after the first, lookups run in this thread. */
  failures: number;
  /** Lookups answered by the Worker. */
  workerLookups: number;
  /** Lookups run in this thread while the Worker was loading. */
  coldLookups: number;
  /** Lookups run in this thread because the Worker failed. */
  fallbackLookups: number;
  /** Lookups resolved undefined at once because `maxPending` were waiting. */
  overflow: number;
}

export type ThreadedLookup = ProcessLookup & {
  stats(): ThreadedLookupStats;
  /** Ends the Worker now; waiting lookups resolve undefined. A later lookup starts it again. */
  close(): void;
};

export function createThreadedLinuxLookup(opts: ThreadedLookupOptions = {}): ThreadedLookup {
  const candidates = opts.workerUrl ? [opts.workerUrl] : workerCandidates("capture/process/lookup-worker.ts");
  const idleMs = opts.idleMs ?? 30_000;
  const maxPending = opts.maxPending ?? 10_000;
  const pending = new Map<number, (info: ProcessInfo | undefined) => void>(); // request id → its resolve
  const counts = { starts: 0, idleStops: 0, failures: 0, workerLookups: 0, coldLookups: 0, fallbackLookups: 0, overflow: 0 };
  let nextId = 1;
  let worker: Worker | undefined;
  let loaded = false;
  /** Created on first need; kept, as it is small and remembers recent clients. */
  let inThread: ProcessLookup | undefined;
  let lastUse = 0;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;

  function start(candidate: number): void {
    let w: Worker;
    try {
      // Unreferenced: a lookup in flight must never keep the process alive. The name is the thread's
      // (top -H, /proc/<pid>/task/*/comm), to tell it from the sensor's Worker.
      w = new Worker(candidates[candidate]!, { ref: false, name: LOOKUP_THREAD_NAME });
    } catch (e) {
      return lost(undefined, candidate, (e as Error).message);
    }
    worker = w;
    loaded = false;
    counts.starts++;
    w.onmessage = (e: MessageEvent<LookupAnswer>) => {
      if (worker !== w) return;
      const { id, info } = e.data;
      if (id === 0) {
        // Loading is not idleness: a Worker that took longer than idleMs to load (a loaded machine) would
        // otherwise be stopped the moment it could answer. Its idle period starts now.
        loaded = true;
        lastUse = performance.now();
        return;
      }
      const resolve = pending.get(id);
      if (!resolve) return;
      pending.delete(id);
      lastUse = performance.now();
      counts.workerLookups++;
      resolve(info);
    };
    w.onerror = (e) => {
      e.preventDefault?.();
      if (worker === w) lost(w, candidate, e.message);
    };
    w.addEventListener("close", () => {
      if (worker === w) lost(w, candidate, "exited");
    });
    armIdleTimer(idleMs);
  }

  /** The Worker could not start (the next candidate module may) or died: lookups run in this thread from now on. */
  function lost(w: Worker | undefined, candidate: number, message: string): void {
    worker = undefined;
    w?.terminate();
    if (!loaded && candidate + 1 < candidates.length && /ModuleNotFound|Cannot find module/i.test(message)) return start(candidate + 1);
    counts.failures++;
    // Only a loaded Worker was sent lookups; it may have been midway through them.
    dropPending();
  }

  function dropPending(): void {
    const waiting = [...pending.values()];
    pending.clear();
    for (const resolve of waiting) resolve(undefined);
  }

  function runInThread(client: Endpoint, proxy: Endpoint): Promise<ProcessInfo | undefined> {
    inThread ??= createLinuxProcessLookup();
    return inThread(client, proxy).catch(() => undefined);
  }

  /** One timer per idle period, re-armed for what is left rather than reset on every lookup. */
  function armIdleTimer(ms: number): void {
    if (idleTimer) return;
    idleTimer = setTimeout(onIdleTimer, ms);
    idleTimer.unref();
  }

  function onIdleTimer(): void {
    idleTimer = undefined;
    if (!worker) return;
    const quiet = performance.now() - lastUse;
    if (pending.size > 0 || !loaded) return armIdleTimer(idleMs);
    if (quiet < idleMs) return armIdleTimer(idleMs - quiet);
    stopWorker();
    counts.idleStops++;
  }

  function stopWorker(): void {
    const w = worker;
    worker = undefined;
    w?.terminate();
  }

  const lookup = (client: Endpoint, proxy: Endpoint): Promise<ProcessInfo | undefined> => {
    lastUse = performance.now();
    if (!worker && counts.failures === 0) start(0);
    // One failure is final (a start that fails at once counts too): from then on lookups run in this thread.
    if (counts.failures > 0) {
      counts.fallbackLookups++;
      return runInThread(client, proxy);
    }
    if (!loaded) {
      counts.coldLookups++;
      return runInThread(client, proxy);
    }
    if (pending.size >= maxPending) {
      counts.overflow++;
      return Promise.resolve(undefined);
    }
    const w = worker!;
    return new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      w.postMessage({ id, client: { ip: client.ip, port: client.port }, proxy: { ip: proxy.ip, port: proxy.port } } satisfies LookupRequest);
    });
  };

  return Object.assign(lookup, {
    stats: (): ThreadedLookupStats => ({ running: worker !== undefined, ready: worker !== undefined && loaded, ...counts }),
    close(): void {
      stopWorker();
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = undefined;
      dropPending();
    },
  });
}
