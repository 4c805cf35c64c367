import type { Logger } from "../util/log.ts";

/** Resolves on the first Ctrl+C / SIGTERM so the caller can close handles and flush data before exiting. */
export function waitForShutdown(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      log("info", `${signal}: shutting down`);
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolve();
    };
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}
