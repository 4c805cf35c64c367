import type { Logger } from "../util/log.ts";

/** Resolves on the first Ctrl+C / SIGTERM so the caller can close handles and flush data before exiting. */
export function waitForShutdown(log: Logger): Promise<void> {
  return waitForStopOrReload<never>(log).then(() => undefined);
}

export type StopOrReload<T> = { stop: true } | { reload: T };

/**
 * Like waitForShutdown, and SIGHUP (`systemctl reload`) too: `load` re-reads the settings first; when it
 * throws, the running settings stay and the error is logged (a typo in the file must not stop capture);
 * when it succeeds, the caller restarts its parts with what it returned. Without `load`, SIGHUP keeps its
 * default meaning.
 */
export function waitForStopOrReload<T>(log: Logger, load?: () => T): Promise<StopOrReload<T>> {
  return new Promise((resolve) => {
    const done = (r: StopOrReload<T>) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      if (load) process.off("SIGHUP", onHup);
      resolve(r);
    };
    const stop = (signal: string) => {
      log("info", `${signal}: shutting down`);
      done({ stop: true });
    };
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    const onHup = () => {
      let next: T;
      try {
        next = load!();
      } catch (err) {
        log("error", `SIGHUP: configuration not reloaded, the running one stays: ${(err as Error).message}`);
        return;
      }
      log("info", "SIGHUP: configuration re-read; restarting capture, sensor, exporters and views with it");
      done({ reload: next });
    };
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
    if (load) process.on("SIGHUP", onHup);
  });
}
