// Stopping a running `oisp redirect` from another process. POSIX: SIGINT. Windows: the redirector runs
// elevated and a normal user's process cannot signal it, so (like `oisp unpin`) the dashboard leaves a
// request file in the private run directory and the redirector polls for it.
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "../util/log.ts";
import { everySlowTick } from "../util/slow-tick.ts";

export function stopRequestPath(dataDir: string): string {
  return path.join(dataDir, "run", "stop-request.json");
}

/** Asks the redirector with this pid to stop; a request naming another pid is left alone by it. */
export function requestStop(dataDir: string, pid: number): void {
  const file = stopRequestPath(dataDir);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, JSON.stringify({ pid }), { mode: 0o600 });
}

/**
 * Polls for a stop request aimed at this process. A request left from an earlier run is removed first, so
 * it cannot stop a redirector started later. `requested` resolves when one arrives.
 */
export function watchStopRequests(dataDir: string, log: Logger, intervalMs = 1000): { requested: Promise<void>; cancel(): void } {
  const file = stopRequestPath(dataDir);
  fs.rmSync(file, { force: true });
  let stop = () => {};
  const requested = new Promise<void>((resolve) => {
    stop = everySlowTick(intervalMs, () => {
      let text: string;
      try {
        text = fs.readFileSync(file, "utf8");
      } catch {
        return; // no request: the common case
      }
      let pid: unknown;
      try {
        pid = (JSON.parse(text) as { pid?: unknown }).pid;
      } catch {
        pid = undefined;
      }
      if (pid !== process.pid) {
        // Aimed at another (earlier) redirector, or malformed: drop it so it cannot linger.
        fs.rmSync(file, { force: true });
        log("warn", `stop request in ${file} is not for this process (pid ${process.pid}): ignored`);
        return;
      }
      fs.rmSync(file, { force: true });
      log("info", "stop requested from the dashboard: shutting down");
      stop();
      resolve();
    });
  });
  return { requested, cancel: () => stop() };
}
