// What the tray shows, read each tick from the same places `oisp status` reads: the roles' status
// snapshots, the capture-state file, the CA's trust state and the database (read-only). No FFI: the
// autostart flag comes from the caller, which owns the registry.
import { Database } from "bun:sqlite";
import fs from "node:fs";
import { caTrustStatus } from "../ca/index.ts";
import { readPauseState } from "../config/pause.ts";
import { defaultDbPath } from "../config/paths.ts";
import { readRoleStatus } from "../control/role-status.ts";
import { statusFilePath } from "../sensor/status-file.ts";
import type { TrayFacts } from "./model.ts";

/** AI calls since local midnight and the provider of the latest, from the events table. */
export function callsToday(dbPath: string, now = new Date()): { count: number; lastProvider?: string } {
  if (!fs.existsSync(dbPath)) return { count: 0 };
  const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  let db: Database | undefined;
  try {
    db = new Database(dbPath, { readonly: true });
    db.exec("PRAGMA busy_timeout = 500");
    const count = (db.query("select count(*) as n from events where event_type = 'ai.request' and ts_ms >= ?").get(midnight) as { n: number }).n;
    const last = db.query("select provider from events where event_type = 'ai.request' and provider is not null order by ts_ms desc limit 1").get() as { provider: string } | null;
    return { count, lastProvider: last?.provider };
  } catch {
    return { count: 0 }; // locked or not created yet: the next tick tries again
  } finally {
    db?.close();
  }
}

export async function collectTrayFacts(dataDir: string, opts: { startWithWindows: boolean; stopping?: number }): Promise<TrayFacts> {
  const sensor = readRoleStatus(statusFilePath(dataDir, "sensor"));
  const redirect = readRoleStatus(statusFilePath(dataDir, "redirect"));
  const s = sensor.running ? sensor.snapshot : undefined;
  // `oisp up` captures inside the sensor (its proxy, or eBPF with --capture ebpf).
  const inSensor = !!s && (s.roles.includes("proxy") || s.roles.includes("ebpf"));
  const capturing = redirect.running ? redirect.snapshot : inSensor ? s : undefined;
  const proxyStats = capturing?.proxy?.stats as { clientRejected?: number } | undefined;
  let paused = false;
  try {
    paused = readPauseState(dataDir).paused;
  } catch {
    // a malformed file: the capture processes keep their last state; `oisp status` reports it
  }
  const ca = await caTrustStatus(dataDir).catch(() => ({ exists: false, trusted_by_os: undefined }) as Record<string, unknown>);
  const calls = callsToday(s?.db_path ?? defaultDbPath(dataDir));
  return {
    sensor: { running: sensor.running, pid: s?.pid, dashboardUrl: s?.web?.url },
    capture: {
      running: !!capturing,
      pid: capturing?.pid,
      inSensor: !redirect.running && inSensor,
      stopping: opts.stopping !== undefined && redirect.running && redirect.snapshot?.pid === opts.stopping,
      clientRejected: proxyStats?.clientRejected ?? 0,
      pinnedHosts: capturing?.proxy?.pinned_hosts ?? [],
    },
    paused,
    ca: { exists: ca.exists === true, trusted: ca.trusted_by_os === true ? true : ca.trusted_by_os === false ? false : undefined },
    callsToday: calls.count,
    lastProvider: calls.lastProvider,
    startWithWindows: opts.startWithWindows,
  };
}
