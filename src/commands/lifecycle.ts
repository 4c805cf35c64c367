import { watchStopRequests } from "../control/stop-request.ts";
import type { Logger } from "../util/log.ts";

/** Resolves on the first Ctrl+C / SIGTERM so the caller can close handles and flush data before exiting. */
export function waitForShutdown(log: Logger): Promise<void> {
  return waitForStopOrReload<never>(log).then(() => undefined);
}

/**
 * How a redirector learns it must stop: Ctrl+C / SIGTERM, or the dashboard's stop request (Windows: an
 * elevated process cannot be signalled). Call it BEFORE writing the status file: the dashboard offers
 * "Stop capture" as soon as it reads that file, and a stop that arrives before these listeners is lost:
 * a SIGINT kills the process uncleanly (exit 130, the status file left "running"), and a request file
 * is swept away as stale by watchStopRequests, so the redirector never stops.
 */
export function listenForStop(dataDir: string, log: Logger): { stopped: Promise<void>; cancel(): void } {
  const stopRequest = watchStopRequests(dataDir, log);
  return { stopped: Promise.race([waitForShutdown(log), stopRequest.requested]), cancel: stopRequest.cancel };
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
