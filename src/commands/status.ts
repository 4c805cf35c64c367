// `oisp status [--json]`: does capture work right now? Reads the snapshots the running roles leave in
// <data dir>/run/ (src/sensor/status-file.ts), the CA's trust state and the database, and prints a short
// summary (or JSON). Exit code 0 when a sensor is running, 3 when not, so scripts can test it.
import fs from "node:fs";
import path from "node:path";
import { caTrustStatus } from "../ca/index.ts";
import { ago, readRoleStatus, type RoleStatus } from "../control/role-status.ts";
import { dataDir as defaultDataDir, defaultDbPath } from "../config/paths.ts";
import { readPauseState, type PauseState } from "../config/pause.ts";
import { readSettingsFile } from "../config/settings.ts";
import { statusFilePath } from "../sensor/status-file.ts";
import { NEW_PAGE_SIZE, openStore } from "../store/index.ts";
import { bytes, exporterLine } from "../sinks/exporter-line.ts";
import { parseFlags, type FlagSpec } from "../util/args.ts";
import { logDir } from "../util/log-file.ts";

export const EXIT_NOT_RUNNING = 3;

const statusFlagSpec = {
  json: { type: "boolean" },
  db: { type: "string" },
  help: { type: "boolean", short: "h" },
} satisfies FlagSpec;

export const statusHelp = `Usage: oisp status [--json] [--db FILE]

Is capture working? Shows the running sensor (or \`oisp up\`) and redirector with their counters,
exporters, the local CA and the database. Exit code 0 when a sensor is running, ${EXIT_NOT_RUNNING} when not.

  --json                  machine-readable output
  --db FILE               database to report on (default: the running sensor's, else settings/default)
  -h, --help              this help`;

export interface DatabaseStatus {
  path: string;
  exists: boolean;
  /** The file plus its write-ahead log. */
  size_bytes?: number;
  events?: number;
  /** Bytes per page: below a new database's 8 KiB, `oisp db vacuum` rewrites it. */
  page_size?: number;
  error?: string;
}

export function databaseStatus(dbPath: string): DatabaseStatus {
  if (!fs.existsSync(dbPath)) return { path: dbPath, exists: false };
  const size = [dbPath, `${dbPath}-wal`].reduce((n, f) => n + (fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0);
  try {
    // Read-only and short-waiting: status must answer even while the sensor writes or the file is locked.
    const store = openStore(dbPath, { readonly: true, busyTimeoutMs: 1000 });
    try {
      return { path: dbPath, exists: true, size_bytes: size, events: store.count(), page_size: store.pageSize() };
    } finally {
      store.close();
    }
  } catch (err) {
    return { path: dbPath, exists: true, size_bytes: size, error: (err as Error).message };
  }
}

export interface StatusReport {
  running: boolean;
  data_dir: string;
  sensor: RoleStatus;
  redirector: RoleStatus;
  ca: Record<string, unknown>;
  database: DatabaseStatus;
  /** Paused capture (`oisp pause`): the state file's content; running capture processes report theirs in their snapshots. */
  capture: PauseState & { error?: string };
  /** Where the roles write their log files. */
  logs: string;
  /** Things the user should act on (store errors, drops, an exporter failing, no redirector). */
  problems: string[];
}

export async function collectStatus(dir: string, opts: { db?: string } = {}): Promise<StatusReport> {
  const sensor = readRoleStatus(statusFilePath(dir, "sensor"));
  const redirector = readRoleStatus(statusFilePath(dir, "redirect"));
  const dbPath = path.resolve(opts.db ?? sensor.snapshot?.db_path ?? configuredDbPath(dir));
  const report: StatusReport = {
    running: sensor.running,
    data_dir: dir,
    sensor,
    redirector,
    ca: await caTrustStatus(dir),
    database: databaseStatus(dbPath),
    capture: pauseStateOf(dir),
    logs: logDir(dir),
    problems: [],
  };
  report.problems = problemsOf(report);
  return report;
}

function pauseStateOf(dir: string): PauseState & { error?: string } {
  try {
    return readPauseState(dir);
  } catch (err) {
    return { paused: false, error: (err as Error).message };
  }
}

export function configuredDbPath(dir: string): string {
  try {
    return readSettingsFile(dir).DatabasePath ?? defaultDbPath(dir);
  } catch {
    return defaultDbPath(dir); // a broken settings.json is the sensor's to report; status still answers
  }
}

export function problemsOf(r: StatusReport): string[] {
  const out: string[] = [];
  const s = r.sensor.running ? r.sensor.snapshot : undefined;
  if (s) {
    if (s.store?.lastError) out.push(`store: ${s.store.lastError} (${s.store.pending} events waiting in memory)`);
    if (s.store?.dropped) out.push(`store: ${s.store.dropped} events dropped (database unavailable for too long)`);
    for (const e of s.exporters ?? []) {
      if (e.state === "retrying") out.push(`export ${e.name}: backend failing, retrying${e.lastError ? `: ${e.lastError}` : ""}`);
      if (e.dropped) out.push(`export ${e.name}: ${e.dropped} events dropped`);
    }
    if (s.pipeline?.internalErrors) out.push(`sensor: ${s.pipeline.internalErrors} internal decoding errors (see its log)`);
    const tlsToProxy = (s.proxy?.stats as { tlsToProxyPort?: number } | undefined)?.tlsToProxyPort;
    if (tlsToProxy) out.push(`proxy: ${tlsToProxy} clients spoke TLS to the proxy port; set their proxy URL to http://, not https://`);
    const redirectors = (s.ipc?.stats as { redirectors?: number } | undefined)?.redirectors;
    if (!s.roles.includes("proxy") && !s.roles.includes("ebpf") && redirectors === 0) out.push("no redirector connected: nothing is being captured (start `oisp redirect`)");
  }
  const rd = r.redirector.running ? r.redirector.snapshot : undefined;
  for (const e of [s?.ebpf, rd?.ebpf]) {
    if (e?.ring_drops) out.push(`ebpf: ${e.ring_drops} records dropped, ${bytes(e.lost_bytes)} of TLS plaintext lost (ring buffer full; affected connections are marked incomplete)`);
    for (const f of e?.failed.slice(-3) ?? []) out.push(`ebpf: not attached to ${f.path}: ${f.error}`);
    for (const p of (e?.metadata_only as MetadataOnlyRow[] | undefined)?.slice(0, 5) ?? []) {
      out.push(`ebpf: ${p.name ?? "?"} (pid ${p.pid}${p.exe ? `, ${p.exe}` : ""}) called ${p.hosts.join(", ")} with a TLS stack eBPF cannot read: metadata only; run it through \`oisp up\` (proxy mode) to capture its calls`);
    }
  }
  const tap = rd?.tap?.stats as { connected?: boolean; spooledBytes?: number; dropped?: number } | undefined;
  if (tap && !tap.connected) out.push(`redirector: not connected to the sensor; spooling to disk (${bytes(tap.spooledBytes ?? 0)})`);
  if (tap?.dropped) out.push(`redirector: ${tap.dropped} captured frames lost (spool full or disk error)`);
  if (r.database.error) out.push(`database: ${r.database.error}`);
  if (r.capture.error) out.push(`capture state: ${r.capture.error}`);
  return out;
}

export function formatStatus(r: StatusReport, now = Date.now()): string {
  const lines: string[] = [];
  const row = (label: string, text: string) => lines.push(`${label.padEnd(11)} ${text}`);
  const sub = (label: string, text: string) => lines.push(`  ${label.padEnd(9)} ${text}`);
  const s = r.sensor.snapshot;
  row("Data dir", r.data_dir);
  if (r.sensor.running && s) {
    row("Sensor", `running · pid ${s.pid} · ${s.roles.join("+")} · oisp ${s.version} · up ${ago(now - Date.parse(s.started_at), "")}`);
    if (s.proxy) {
      const p = s.proxy.stats as Record<string, number>;
      sub("Proxy", proxyLine(s.proxy.address, s.proxy.tls_mitm, p));
      if (s.proxy.pinned_hosts.length) sub("Pinned", `${p.pinnedHosts ?? s.proxy.pinned_hosts.length} clients passed through for a host (they refused our CA): ${s.proxy.pinned_hosts.join(", ")} (\`oisp unpin HOST\` intercepts them again)`);
    }
    if (s.ebpf) sub("eBPF", ebpfLine(s.ebpf));
    if (s.ipc) {
      const i = s.ipc.stats as Record<string, number>;
      sub("IPC", `${s.ipc.path} · ${i.redirectors ?? i.peers} redirector(s) connected · ${i.connsSeen} connections received`);
    }
    if (s.pipeline) {
      const p = s.pipeline;
      sub("Pipeline", `${p.events} events · ${p.aiRequests} requests · ${p.aiResponses} responses · ${p.connections} connections (${p.activeConnections} open) · ${p.protocolErrors} undecodable`);
    }
    if (s.store) sub("Store", `${s.store.written} written · ${s.store.pending} pending · ${s.store.dropped} dropped${s.store.lastError ? ` · error: ${s.store.lastError}` : ""}`);
    for (const e of s.exporters ?? []) sub(`Export`, `${e.name}: ${exporterLine(e)}`);
    if (!s.exporters?.length) sub("Export", "none (--export or --config to add)");
    if (s.web) sub("Dashboard", s.web.url);
  } else {
    row("Sensor", `not running (${r.sensor.reason})`);
  }
  const rd = r.redirector.snapshot;
  if (r.redirector.running && rd) {
    row("Redirector", `running · pid ${rd.pid} · oisp ${rd.version} · up ${ago(now - Date.parse(rd.started_at), "")}`);
    if (rd.ebpf) sub("eBPF", ebpfLine(rd.ebpf));
    if (rd.proxy) sub("Proxy", proxyLine(rd.proxy.address, rd.proxy.tls_mitm, rd.proxy.stats as Record<string, number>));
    const t = rd.tap?.stats as Record<string, number | boolean> | undefined;
    if (rd.tap && t) {
      sub("Sensor", `${t.connected ? "connected" : "NOT connected"} (${rd.tap.path}) · ${t.sent} frames sent · queued ${bytes(Number(t.queuedBytes))} · spooled ${bytes(Number(t.spooledBytes))} · dropped ${t.dropped}`);
    }
  } else if (rd || !(s?.roles.includes("proxy") || s?.roles.includes("ebpf"))) {
    // In `oisp up` the proxy runs inside the sensor: no separate redirector to report unless one ran before.
    row("Redirector", `not running (${r.redirector.reason})`);
  }
  if (r.capture.paused) {
    const c = r.capture;
    row("Capture", `PAUSED${c.since ? ` since ${c.since}` : ""}${c.by ? ` (${c.by})` : ""}: connections are relayed, nothing is recorded · \`oisp resume\` records again`);
  } else {
    row("Capture", "recording");
  }
  const ca = r.ca;
  if (ca.exists) {
    const trusted = ca.trusted_by_os === true ? "trusted by this OS" : ca.trusted_by_os === false ? "not in the OS trust store (clients need NODE_EXTRA_CA_CERTS etc.)" : "OS trust unknown";
    row("CA", `${ca.path} · ${trusted}${ca.not_after ? ` · expires ${String(ca.not_after).slice(0, 10)}` : ""}${ca.error ? ` · error: ${ca.error}` : ""}`);
  } else {
    row("CA", `not created yet (\`oisp up\` or \`oisp ca init\` creates it)`);
  }
  const d = r.database;
  if (!d.exists) row("Database", `${d.path} · not created yet`);
  else row("Database", `${d.path} · ${bytes(d.size_bytes ?? 0)} · ${d.events !== undefined ? `${d.events} events` : `unreadable: ${d.error}`}${oldPages(d)}`);
  row("Logs", r.logs);
  for (const p of r.problems) lines.push(`! ${p}`);
  return lines.join("\n");
}

/** A database made before new ones got 8 KiB pages: say how to convert it (not a problem: it works as it is). */
function oldPages(d: DatabaseStatus): string {
  if (d.page_size === undefined || d.page_size >= NEW_PAGE_SIZE) return "";
  return ` · ${d.page_size / 1024} KiB pages: \`oisp db vacuum\` with oisp stopped makes it ~20 % smaller and cheaper to write`;
}

interface MetadataOnlyRow {
  pid: number;
  name?: string;
  exe?: string;
  hosts: string[];
}

function ebpfLine(e: NonNullable<StatusReport["sensor"]["snapshot"]>["ebpf"] & object): string {
  const files = e.attached.map((a) => a.path).join(", ") || "no TLS library attached yet";
  const p = e.processes as { execs: number; file_writes: number; watched: number } | undefined;
  const procs = p ? ` · ${p.execs} process.exec, ${p.file_writes} file.write (${p.watched} processes watched)` : "";
  return `TLS probes on ${files} · ${e.records_per_sec} records/s · ${e.ring_drops} ring-buffer drops · ${bytes(e.lost_bytes)} lost${procs}`;
}

function proxyLine(address: string, tlsMitm: boolean, p: Record<string, number>): string {
  return `${address} · TLS interception ${tlsMitm ? "on" : "off"} · ${p.connectionsTotal} connections (${p.connectionsActive} open) · ${p.intercepted} intercepted · ${p.passthrough} passed through${p.paused ? ` (${p.paused} while paused)` : ""} · ${p.upstreamErrors} upstream errors`;
}

export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, statusFlagSpec, "status");
  if (values.help) {
    console.log(statusHelp);
    return 0;
  }
  const report = await collectStatus(defaultDataDir(), { db: values.db });
  console.log(values.json ? JSON.stringify(report, null, 2) : formatStatus(report));
  return report.running ? 0 : EXIT_NOT_RUNNING;
}
