// Whether a role (sensor, redirector) is running, read from the snapshot it leaves in <data dir>/run/
// (src/sensor/status-file.ts). Shared by `oisp status` and the dashboard's /control page, so it lives
// outside src/commands: the dashboard must not import a command.
import fs from "node:fs";
import { z } from "zod";
import { pidAlive } from "../capture/process/alive.ts";
import { STATUS_STALE_MS, type StatusSnapshot } from "../sensor/status-file.ts";

/** The envelope we rely on; the counters inside are shown as found (a newer sensor may add some). */
const SnapshotSchema = z.looseObject({
  state: z.enum(["running", "stopped"]),
  pid: z.number().int().positive(),
  roles: z.array(z.string()),
  version: z.string(),
  started_at: z.string(),
  updated_at: z.string(),
});

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
  let parsed;
  try {
    parsed = SnapshotSchema.safeParse(JSON.parse(text));
  } catch {
    return { running: false, reason: `${file} is not valid JSON` };
  }
  if (!parsed.success) return { running: false, reason: `${file} is not a status snapshot` };
  const snapshot = parsed.data as unknown as StatusSnapshot;
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
