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
