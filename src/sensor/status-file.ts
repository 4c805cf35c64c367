// The status snapshot a running role leaves in <data dir>/run/ for `oisp status`: rewritten every ~2 s
// (temp file + rename, so a reader never sees half a file; 0600, it names paths and counters of this
// user's traffic) and marked "stopped" on shutdown. A crash leaves the last snapshot behind: readers tell
// it apart by the pid being gone or updated_at being old.
import fs from "node:fs";
import path from "node:path";
import type { ExporterStats } from "../sinks/queue.ts";
import type { Logger } from "../util/log.ts";
import { everySlowTick } from "../util/slow-tick.ts";
import { VERSION } from "../version.ts";
import type { PipelineStats } from "./pipeline.ts";

export const STATUS_FORMAT = 1;
export const STATUS_INTERVAL_MS = 2000;
/** A snapshot older than this (or whose pid is gone) no longer describes a running process. */
export const STATUS_STALE_MS = 10_000;

export type StatusRole = "sensor" | "proxy" | "redirect" | "ebpf";

/** What a command reports beyond the envelope: counters of the parts it runs. */
export interface StatusSections {
  db_path?: string;
  /** Proxy (`up`, `redirect`): where clients point HTTPS_PROXY, and its counters. */
  proxy?: { address: string; tls_mitm: boolean; stats: object; pinned_hosts: string[] };
  /** eBPF capture (`up --capture ebpf`, `redirect --mode ebpf`): probed files and loss counters. */
  ebpf?: { attached: Array<{ path: string; kind: string; functions: string[] }>; failed: Array<{ path: string; error: string }>; records_per_sec: number; ring_drops: number; lost_bytes: number; [k: string]: unknown };
  /** Sensor's IPC server: the endpoint and its peers (redirectors). */
  ipc?: { path: string; stats: object };
  /** Redirector's link to the sensor: connected, queued/spooled bytes, dropped frames. */
  tap?: { path: string; stats: object };
  pipeline?: PipelineStats;
  store?: { written: number; dropped: number; pending: number; lastError?: string };
  exporters?: ExporterStats[];
  web?: { url: string };
  /** Capture roles: paused or capturing (src/config/pause.ts), as this process last read it. */
  capture?: { paused: boolean; since?: string; by?: string };
}

export interface StatusSnapshot extends StatusSections {
  format: number;
  state: "running" | "stopped";
  pid: number;
  roles: StatusRole[];
  version: string;
  data_dir: string;
  started_at: string;
  updated_at: string;
  stopped_at?: string;
}

/** <data dir>/run/status.json for the sensor (alone or in `up`), run/redirect-status.json for `oisp redirect`. */
export function statusFilePath(dataDir: string, who: "sensor" | "redirect"): string {
  return path.join(dataDir, "run", who === "sensor" ? "status.json" : "redirect-status.json");
}

/** Pinned-host lists can hold thousands; the snapshot keeps the first few and `oisp status` prints the count. */
const MAX_PINNED_LISTED = 50;

export function pinnedHostsForStatus(hosts: string[]): string[] {
  return hosts.slice(0, MAX_PINNED_LISTED);
}

/** The sensor's own sections: pipeline, store output and exporters (RunningSensor has all three). */
export function sensorSections(sensor: {
  pipeline: { stats(): PipelineStats };
  storeOutput: { stats(): { written: number; dropped: number; pending: number; lastError?: string } };
  exporters: Array<{ stats(): ExporterStats }>;
}): StatusSections {
  return { pipeline: sensor.pipeline.stats(), store: sensor.storeOutput.stats(), exporters: sensor.exporters.map((e) => e.stats()) };
}

/** Writes `value` as JSON to `file` atomically, owner-only. Throws on failure (the writer below catches). */
export function writeJsonAtomic(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  // A temp left by a crash may carry another mode; writeFileSync's mode applies only to new files.
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n", { mode: 0o600 });
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

export interface StatusFileWriter {
  /** Writes a fresh snapshot now (the timer also does, every intervalMs). */
  update(): void;
  /** Stops the timer and writes the final snapshot, state "stopped", with the last counters. */
  stop(): void;
}

export interface StatusFileOptions {
  file: string;
  dataDir: string;
  roles: StatusRole[];
  /** Called at each write; must be cheap (counters only). */
  sections: () => StatusSections;
  log: Logger;
  intervalMs?: number;
  now?: () => Date;
}

/**
 * Starts writing snapshots. A failed write (full disk, read-only dir) is logged once per distinct error
 * and retried at the next tick; status reporting never takes the sensor down.
 */
export function startStatusFile(opts: StatusFileOptions): StatusFileWriter {
  const now = opts.now ?? (() => new Date());
  const startedAt = now().toISOString();
  let lastError: string | undefined;
  let stopped = false;

  const write = (state: StatusSnapshot["state"]) => {
    let sections: StatusSections;
    try {
      sections = opts.sections();
    } catch (err) {
      sections = {};
      opts.log("debug", `status: collecting counters failed: ${(err as Error).message}`);
    }
    const at = now().toISOString();
    const snapshot: StatusSnapshot = {
      format: STATUS_FORMAT,
      state,
      pid: process.pid,
      roles: opts.roles,
      version: VERSION,
      data_dir: opts.dataDir,
      started_at: startedAt,
      updated_at: at,
      ...(state === "stopped" && { stopped_at: at }),
      ...sections,
    };
    try {
      writeJsonAtomic(opts.file, snapshot);
      lastError = undefined;
    } catch (err) {
      const message = (err as Error).message;
      if (message !== lastError) opts.log("warn", `status: cannot write ${opts.file}: ${message}`);
      lastError = message;
    }
  };

  write("running");
  const stopTimer = everySlowTick(opts.intervalMs ?? STATUS_INTERVAL_MS, () => write("running"));
  return {
    update: () => {
      if (!stopped) write("running");
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      stopTimer();
      write("stopped");
    },
  };
}
