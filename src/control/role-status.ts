// Whether a role (sensor, redirector) is running, read from the snapshot it leaves in <data dir>/run/
// (src/sensor/status-file.ts). Shared by `oisp status` and the dashboard's /control page, so it lives
// outside src/commands: the dashboard must not import a command.
import fs from "node:fs";
import { pidAlive } from "../capture/process/alive.ts";
import { STATUS_STALE_MS, type StatusSnapshot } from "../sensor/status-file.ts";

/**
 * The envelope we rely on; the counters inside are shown as found (a newer sensor may add some). Checked
 * by hand, not with zod: the file is our own status-file.ts's, its one error line names no field, and zod
 * kept ~4.5 MB in `oisp up`'s relay thread (which reads this for the pause and capture controls).
 */
function isSnapshot(v: unknown): v is StatusSnapshot {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const s = v as Record<string, unknown>;
  return (
    (s.state === "running" || s.state === "stopped") &&
    Number.isSafeInteger(s.pid) &&
    (s.pid as number) > 0 &&
    Array.isArray(s.roles) &&
    s.roles.every((r) => typeof r === "string") &&
    typeof s.version === "string" &&
    typeof s.started_at === "string" &&
    typeof s.updated_at === "string"
  );
}

export interface RoleStatus {
  running: boolean;
  /** Why it is not running: never started, stopped, gone, not updated. */
  reason?: string;
  snapshot?: StatusSnapshot;
}

/** Reads one snapshot and decides whether it describes a live process. */
export function readRoleStatus(file: string, now = Date.now(), alive: (pid: number) => boolean = pidAlive): RoleStatus {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { running: false, reason: code === "ENOENT" ? "never started with this data directory" : `cannot read ${file}: ${code}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { running: false, reason: `${file} is not valid JSON` };
  }
  if (!isSnapshot(json)) return { running: false, reason: `${file} is not a status snapshot` };
  const snapshot = json;
  const updated = Date.parse(snapshot.updated_at);
  const lastSeen = `last seen ${snapshot.updated_at}, ${ago(now - updated)}`;
  if (snapshot.state === "stopped") return { running: false, reason: `${lastSeen}; stopped cleanly`, snapshot };
  if (!alive(snapshot.pid)) return { running: false, reason: `${lastSeen}; pid ${snapshot.pid} ended without a clean stop`, snapshot };
  if (!(now - updated <= STATUS_STALE_MS)) return { running: false, reason: `${lastSeen}; pid ${snapshot.pid} stopped reporting`, snapshot };
  return { running: true, snapshot };
}

/** "42 s ago", "3 min ago", "2 h ago" (suffix "" for durations). */
export function ago(ms: number, suffix = " ago"): string {
  if (!Number.isFinite(ms)) return "unknown time";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s${suffix}`;
  if (s < 7200) return `${Math.round(s / 60)} min${suffix}`;
  if (s < 172800) return `${Math.round(s / 3600)} h${suffix}`;
  return `${Math.round(s / 86400)} days${suffix}`;
}
