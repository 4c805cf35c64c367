// Paused capture: the capture processes keep running and keep relaying every byte, but tap nothing (no
// decryption, no events) until resumed. The state is one small file in the data directory, so it is set by
// any of the user's processes (`oisp pause`, the dashboard, the tray) without signalling the capture
// process (on Windows it runs elevated), and it survives restarts of the sensor, the redirector and the tray.
// A shared leaf: the capture layer reads it, src/control writes it.
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "../util/log.ts";
import { everySlowTick, SLOW_TICK_MS } from "../util/slow-tick.ts";

export interface PauseState {
  paused: boolean;
  /** ISO time the state was set. */
  since?: string;
  /** Who set it: "cli", "dashboard", "tray". */
  by?: string;
}

/** In the data dir itself, not run/: it is a setting that outlives runs, like settings.json. */
export function pauseStatePath(dataDir: string): string {
  return path.join(dataDir, "capture-state.json");
}

/** Missing file: not paused. Throws on an unreadable or malformed file (the watcher keeps its last state). */
export function readPauseState(dataDir: string): PauseState {
  let text: string;
  try {
    text = fs.readFileSync(pauseStatePath(dataDir), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { paused: false };
    throw err;
  }
  const v = JSON.parse(text) as Partial<PauseState>;
  if (typeof v !== "object" || v === null || typeof v.paused !== "boolean") throw new Error(`${pauseStatePath(dataDir)}: expected {"paused": true|false}`);
  return { paused: v.paused, ...(typeof v.since === "string" && { since: v.since }), ...(typeof v.by === "string" && { by: v.by }) };
}

/** Temp file + rename: a polling reader never sees half a file. */
export function writePauseState(dataDir: string, state: PauseState): void {
  const file = pauseStatePath(dataDir);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state) + "\n", { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export interface PauseWatcher {
  /** Read on every new connection: a field read, no I/O. */
  paused(): boolean;
  state(): PauseState;
  stop(): void;
}

/**
 * Polls the state file (one stat per tick; the file is read only when its mtime, size or inode changed) and
 * calls onChange when the state flips. A malformed file keeps the last state and is logged once.
 */
export function watchPauseState(dataDir: string, opts: { log: Logger; intervalMs?: number; onChange?: (s: PauseState) => void }): PauseWatcher {
  const file = pauseStatePath(dataDir);
  let current: PauseState = { paused: false };
  let seen = "";
  let lastError = "";
  const poll = () => {
    const st = fs.statSync(file, { throwIfNoEntry: false });
    const key = st ? `${st.mtimeMs}:${st.size}:${st.ino}` : "none";
    if (key === seen) return;
    seen = key;
    let next: PauseState;
    try {
      next = readPauseState(dataDir);
      lastError = "";
    } catch (err) {
      const message = (err as Error).message;
      if (message !== lastError) opts.log("warn", `capture state: ${message}; keeping ${current.paused ? "paused" : "capturing"}`);
      lastError = message;
      return;
    }
    const changed = next.paused !== current.paused;
    current = next;
    if (changed) {
      opts.log("info", next.paused ? `capture paused${next.by ? ` (${next.by})` : ""}: connections are relayed, nothing is recorded` : `capture resumed${next.by ? ` (${next.by})` : ""}`);
      opts.onChange?.(next);
    }
  };
  poll();
  // Once a second, on the thread's shared tick: `oisp pause` waits up to 3 s for the status snapshot to confirm.
  const stop = everySlowTick(opts.intervalMs ?? SLOW_TICK_MS, poll);
  return { paused: () => current.paused, state: () => current, stop };
}
