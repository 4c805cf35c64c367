// `oisp sensor`: receive captured traffic, decode it into OISP events, store and export them.
import path from "node:path";
import { dataDir as defaultDataDir, defaultDbPath } from "../config/paths.ts";
import { readSettingsFile, REDACTION_MODES, type RedactionMode } from "../config/settings.ts";
import { defaultPipePath, resolvePipePath } from "../ipc/endpoint.ts";
import type { ExporterStats } from "../sinks/queue.ts";
import { exporterLine } from "../sinks/exporter-line.ts";
import { exportFlagSpec, exportFlagsHelp, type ExportFlagValues } from "../sinks/flags.ts";
import { durableAfter } from "../sensor/outputs.ts";
import { sensorSections, startStatusFile, statusFilePath } from "../sensor/status-file.ts";
import { parseFlags, UsageError, type FlagSpec } from "../util/args.ts";
import { createLogger } from "../util/log.ts";
import { roleLogFile } from "../util/log-file.ts";
import { sdNotify } from "../util/sd-notify.ts";
import { VERSION } from "../version.ts";
import { viewFlagSpec, viewFlagsHelp } from "../web/flags.ts";
import { startSensorViews } from "./sensor-views.ts";
import { withConfigFile } from "./config-file.ts";
import { type StopOrReload, waitForStopOrReload } from "./lifecycle.ts";

export const sensorFlagSpec = {
  pipe: { type: "string" },
  db: { type: "string" },
  output: { type: "string" },
  redaction: { type: "string" },
  // The seed's spelling of --redaction.
  "redaction-mode": { type: "string" },
  "process-filter": { type: "string", multiple: true },
  config: { type: "string" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
  ...viewFlagSpec,
  ...exportFlagSpec,
} satisfies FlagSpec;

export const sensorFlagsHelp = `  --db FILE               SQLite database (default: <data dir>/oisp.db)
  --output FILE.jsonl     also append every event to this JSONL file
  --redaction MODE        safe (default): content replaced by hash + length, keys by prefix + fingerprint
                          (also spelt --redaction-mode, as the seed did)
                          full: content kept, secrets masked; minimal: metadata only
  --process-filter NAME   only record connections of this process name (repeatable)
  --config FILE           TOML file with any of these settings (docs/config.md); flags given here win
                          over it, and SIGHUP re-reads it
${viewFlagsHelp}
${exportFlagsHelp}`;

export const sensorHelp = `Usage: oisp sensor [flags]

Receive traffic captured by \`oisp redirect\`, turn it into OISP events and store them.

  --port PORT             same as --web-port
  --pipe NAME|PATH        IPC endpoint (default: ${process.platform === "win32" ? "\\\\.\\pipe\\oisp-sensor-<user>" : "<data dir>/run/oisp.sock"})
${sensorFlagsHelp}
  -v, --verbose           log every connection
  -h, --help              this help`;

// Types only: the core (pipeline, store, exporters, prices) is loaded when `oisp sensor` runs, so `oisp up`,
// whose sensor runs in a Worker, does not load a second copy on its relay thread.
import type { RunningSensor, SensorConfig } from "../sensor/core.ts";

export type { RunningSensor, SensorConfig };

type SensorValues = ExportFlagValues & { config?: string; db?: string; output?: string; redaction?: string; "redaction-mode"?: string; "process-filter"?: string[]; verbose?: boolean };

/** Flags > --config file > settings.json > defaults. Shared with `oisp up`. */
/** `logName`: the log file under <data dir>/logs/ (`oisp up` writes both roles to up.log). */
export function sensorConfigFrom(flags: SensorValues, dir = defaultDataDir(), logName = "sensor"): SensorConfig {
  const values = withConfigFile(flags);
  const settings = readSettingsFile(dir);
  const redaction = values.redaction ?? values["redaction-mode"] ?? settings.Redaction ?? "safe";
  if (!(REDACTION_MODES as readonly string[]).includes(redaction)) throw new UsageError(`--redaction: expected safe, full or minimal, got "${redaction}"`);
  const verbose = values.verbose ?? settings.VerboseLogging ?? false;
  return {
    dataDir: dir,
    dbPath: path.resolve(values.db ?? settings.DatabasePath ?? defaultDbPath(dir)),
    outputPath: values.output ?? settings.OutputPath,
    redaction: redaction as RedactionMode,
    processFilter: values["process-filter"] ?? settings.ProcessFilter ?? [],
    verbose,
    log: createLogger({ verbose, file: roleLogFile(dir, logName) }),
    exportValues: values,
  };
}

/** Rows for the dashboard's Control page beyond the raw counters: store health and one line per exporter. */
export function sensorControlRows(sensor: {
  storeOutput: { stats(): { dropped: number; lastError?: string } };
  exporters: ReadonlyArray<{ name: string; stats(): ExporterStats }>;
}): Record<string, string> {
  const store = sensor.storeOutput.stats();
  const exporters = sensor.exporters.map((e) => [`export.${e.name}`, exporterLine(e.stats())]);
  return {
    "store health": store.lastError ? `failing: ${store.lastError}` : store.dropped ? `ok now; ${store.dropped} events dropped earlier` : "ok",
    ...(exporters.length ? Object.fromEntries(exporters) : { export: "none configured (--export or --config)" }),
  };
}

export async function sensorCommand(argv: string[]): Promise<number> {
  const { values: flags } = parseFlags(argv, { ...sensorFlagSpec, port: { type: "string" } }, "sensor");
  if (flags.help) {
    console.log(sensorHelp);
    return 0;
  }
  // SIGHUP re-reads --config and settings.json and, when they are valid, restarts the sensor with them.
  const load = () => {
    const values = withConfigFile(flags);
    return { values, cfg: sensorConfigFrom(values) };
  };
  let current = load();
  for (;;) {
    const next = await runSensor(current.values, current.cfg, load);
    if ("stop" in next) return 0;
    current = next.reload;
  }
}

type SensorRun = { values: ReturnType<typeof withConfigFile<SensorCommandValues>>; cfg: SensorConfig };
type SensorCommandValues = SensorValues & { pipe?: string; port?: string; web?: boolean; "web-port"?: string; "web-host"?: string; "web-token"?: string; tui?: boolean };

async function runSensor(values: SensorRun["values"], cfg: SensorConfig, reload: () => SensorRun): Promise<StopOrReload<SensorRun>> {
  // Loaded here, not at the top: `oisp up` imports this file for its flags and config only.
  const [{ startSensorCore }, { startIpcServer }] = await Promise.all([import("../sensor/core.ts"), import("../ipc/server.ts")]);
  const sensor = startSensorCore(cfg);
  const pipePath = values.pipe ? resolvePipePath(values.pipe, cfg.dataDir) : defaultPipePath(cfg.dataDir);
  // Redirectors drop a connection's frames only once its events are committed (and in the JSONL file): a killed sensor loses nothing.
  const ipc = await startIpcServer({ path: pipePath, dataDir: cfg.dataDir, sink: sensor.pipeline, log: cfg.log, whenDurable: durableAfter(sensor.storeOutput, sensor.jsonl ? [sensor.jsonl] : []) });
  cfg.log("info", `oisp sensor ${VERSION}: listening on ${ipc.path}, database ${cfg.dbPath}, redaction ${cfg.redaction}`);
  const views = await startSensorViews({
    flags: values,
    dataDir: cfg.dataDir,
    dbPath: cfg.dbPath,
    sensor,
    log: cfg.log,
    status: () => ({ ipc: ipc.path, ...ipc.stats(), ...sensorControlRows(sensor) }),
  });
  // Listening before the status file exists: `oisp status`, the dashboard and systemd (READY=1) act on it.
  const stopOrReload = waitForStopOrReload(cfg.log, reload);
  const status = startStatusFile({
    file: statusFilePath(cfg.dataDir, "sensor"),
    dataDir: cfg.dataDir,
    roles: ["sensor"],
    log: cfg.log,
    sections: () => ({ db_path: cfg.dbPath, ipc: { path: ipc.path, stats: ipc.stats() }, ...sensorSections(sensor), ...(views.web && { web: { url: views.web.url } }) }),
  });
  sdNotify(`READY=1\nSTATUS=listening on ${ipc.path}`);
  // settings.json AutoStartCapture: start the capture role as the dashboard's Start capture does (the
  // modules load only then: the CA code behind the launcher would otherwise weigh on every sensor).
  if (readSettingsFile(cfg.dataDir).AutoStartCapture === true) {
    const [{ autoStartCapture }, { powershellLauncher }] = await Promise.all([import("./auto-start.ts"), import("../web/ca-control.ts")]);
    await autoStartCapture(cfg.dataDir, powershellLauncher, cfg.log).catch((err: Error) => cfg.log("warn", `AutoStartCapture: ${err.message}`));
  }
  const next = await stopOrReload;
  sdNotify("stop" in next ? "STOPPING=1" : "RELOADING=1");
  try {
    await views.close();
    await ipc.close();
    await sensor.close();
  } finally {
    status.stop();
  }
  return next;
}
