// Where a Worker's module is, from source or inside a compiled binary (one rule for every Worker).

/** Whether this is a `bun build --compile` binary (its modules live in Bun's embedded file system). */
function isCompiledBinary(): boolean {
  return Bun.main.includes("$bunfs") || Bun.main.includes("~BUN");
}

/**
 * URLs to try, in order, for the Worker module at `pathUnderSrc` (e.g. "sensor/sensor-worker.ts"). From
 * source: that file. In a compiled binary each Worker is its own entry point (build.ts), named relative to
 * the common root of all entry points: src/ for oisp, the repository root for test programs; both are tried.
 */
export function workerCandidates(pathUnderSrc: string): string[] {
  if (!isCompiledBinary()) return [new URL(`../${pathUnderSrc}`, import.meta.url).href];
  return [`./${pathUnderSrc}`, `./src/${pathUnderSrc}`];
}

/**
 * Starts the Worker at `pathUnderSrc` from the first candidate that loads: the module must post
 * `{ t: "ready" }` once loaded. A missing module fails asynchronously (onerror), so each candidate is waited
 * for. Afterwards messages go to `onMessage` and errors to `onError`. Throws with the last failure.
 */
export async function startReadyWorker<M extends { t: string }>(
  pathUnderSrc: string,
  name: string,
  onMessage: (m: M) => void,
  onError: (message: string) => void,
): Promise<Worker> {
  let lastError = "";
  for (const url of workerCandidates(pathUnderSrc)) {
    const w = await new Promise<Worker | undefined>((resolve) => {
      let w: Worker;
      try {
        w = new Worker(url, { name });
      } catch (err) {
        lastError = (err as Error).message;
        return resolve(undefined);
      }
      w.onmessage = (e: MessageEvent<M>) => {
        if (e.data.t !== "ready") return;
        w.onmessage = (ev: MessageEvent<M>) => onMessage(ev.data);
        w.onerror = (ev) => onError(ev.message);
        resolve(w);
      };
      w.onerror = (e) => {
        e.preventDefault?.();
        lastError = e.message;
        w.terminate();
        resolve(undefined);
      };
    });
    if (w) return w;
  }
  throw new Error(`cannot start the ${name} worker: ${lastError}`);
}
