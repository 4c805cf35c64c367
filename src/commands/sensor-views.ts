// What `oisp sensor` and `oisp up` call to add the dashboard (--web) and the terminal view (--tui) to a
// running sensor: one function, so the commands only parse flags and call it. It composes web and tui, so it
// sits above both (web and tui never import each other).
import { settingsPath } from "../config/paths.ts";
import { readSettingsFile } from "../config/settings.ts";
import { UsageError } from "../util/args.ts";
import type { Logger } from "../util/log.ts";
import type { LiveSource } from "../view/live.ts";
import { DEFAULT_WEB_PORT, type ViewFlags } from "../web/flags.ts";
import type { RunningWebServer } from "../web/server.ts";

/** The parts of RunningSensor (src/commands/sensor.ts) the views read. */
export interface SensorHandles {
  live: LiveSource;
  pipeline: { stats(): object };
  storeOutput: { stats(): object };
}

export interface SensorViewsOptions {
  flags: ViewFlags;
  dataDir: string;
  dbPath: string;
  sensor: SensorHandles;
  /** More capture status for /control (proxy address, IPC peers...), merged over the sensor's counters. */
  status?: () => Record<string, unknown>;
  log: Logger;
  /** Called when the user quits the terminal view (q). Default: shut down as on Ctrl+C. */
  onQuit?: () => void;
}

/** What /control shows under Capture: events/s since the last look, pipeline and store counters. */
export function sensorStatus(sensor: SensorHandles, extra?: () => Record<string, unknown>): () => Record<string, unknown> {
  let last: { at: number; events: number } | undefined;
  return () => {
    const pipeline = sensor.pipeline.stats() as Record<string, unknown>;
    const store = sensor.storeOutput.stats() as Record<string, unknown>;
    const now = Date.now();
    const events = typeof pipeline.events === "number" ? pipeline.events : 0;
    const rate = last && now > last.at ? ((events - last.events) * 1000) / (now - last.at) : undefined;
    last = { at: now, events };
    return {
      ...(extra?.() ?? {}),
      ...(rate !== undefined ? { "events/s (since last view)": Number(rate.toFixed(2)) } : {}),
      ...Object.fromEntries(Object.entries(pipeline).map(([k, v]) => [`pipeline.${k}`, v])),
      ...Object.fromEntries(Object.entries(store).map(([k, v]) => [`store.${k}`, v])),
    };
  };
}

export interface SensorViews {
  web?: RunningWebServer;
  close(): Promise<void>;
}

function portOf(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d{1,5}$/.test(value) || n > 65535) throw new UsageError(`${flag}: expected a port number 0-65535, got "${value}"`);
  return n;
}

export async function startSensorViews(o: SensorViewsOptions): Promise<SensorViews> {
  const f = o.flags;
  const port = portOf(f["web-port"], "--web-port") ?? portOf(f.port, "--port");
  const wantWeb = f.web || port !== undefined || f["web-host"] !== undefined || f["web-token"] !== undefined;
  let web: RunningWebServer | undefined;
  if (wantWeb) {
    let settingsPort: number | undefined;
    try {
      settingsPort = readSettingsFile(o.dataDir).WebPort;
    } catch (err) {
      o.log("warn", `web: ignoring ${settingsPath(o.dataDir)}: ${(err as Error).message}`);
    }
    const { startWebServer } = await import("../web/server.ts");
    const { captureControlFor, caControlFor } = await import("../web/ca-control.ts");
    web = await startWebServer({
      host: f["web-host"],
      port: port ?? settingsPort ?? DEFAULT_WEB_PORT,
      dbPath: o.dbPath,
      live: o.sensor.live,
      dataDir: o.dataDir,
      token: f["web-token"] ?? process.env.OISP_WEB_TOKEN,
      status: sensorStatus(o.sensor, o.status),
      ca: caControlFor(o.dataDir),
      capture: captureControlFor(o.dataDir),
    });
    o.log("info", `dashboard: ${web.loginUrl}`);
  }
  let tui: { close(): void } | undefined;
  if (f.tui) {
    const { startTui } = await import("../tui/index.ts");
    // Quitting the view stops the command the way Ctrl+C does (waitForShutdown listens for SIGINT).
    const quit = o.onQuit ?? (() => process.emit("SIGINT", "SIGINT"));
    tui = startTui({ dbPath: o.dbPath, live: o.sensor.live, onQuit: quit });
  }
  return {
    web,
    async close() {
      tui?.close();
      await web?.close();
    },
  };
}
