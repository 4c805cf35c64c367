// `oisp tray` (Windows): the notification-area icon. Started by the Start Menu entry "OISP", by a
// double-click on oisp.exe, and at logon when "Start with Windows" is on.
import { dataDir as defaultDataDir } from "../config/paths.ts";
import { readSettingsFile } from "../config/settings.ts";
import { parseFlags } from "../util/args.ts";
import { roleLogFile } from "../util/log-file.ts";
import { createLogger } from "../util/log.ts";

export const trayHelp = `Usage: oisp tray [-v]

Windows: an icon in the notification area showing whether capture works (green capturing, amber
paused, grey not capturing, orange CA not trusted, red sensor not running) with today's call count,
and a menu: Start Capture (UAC prompt), Stop Capture, Pause / Resume Recording, Install / Remove CA
Certificate, Open Dashboard, View Logs, Settings, Start with Windows, Quit. Starts the sensor (with
its dashboard) if none runs. One tray per user. Logs to <data dir>\\logs\\tray.log.

  --at-logon     started by the Run key (the sensor it starts honours AutoStartCapture)
  -v, --verbose  log menu geometry and every action
  -h, --help     this help`;

export async function trayCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { "at-logon": { type: "boolean" }, verbose: { type: "boolean", short: "v" }, help: { type: "boolean", short: "h" } }, "tray");
  if (values.help) {
    console.log(trayHelp);
    return 0;
  }
  if (process.platform !== "win32") {
    console.error("oisp tray: the notification-area icon is for Windows; here use `oisp status`, `oisp pause` / `oisp resume` and the dashboard (`oisp sensor --web`)");
    return 2;
  }
  const dir = defaultDataDir();
  // From the Start Menu or the Run key, Windows opened a console just for us: hide it (stderr still works).
  await import("../../ffi/tray-win32.ts").then((w) => w.ownsConsoleAlone() && w.hideConsoleWindow()).catch(() => {});
  let verbose = values.verbose ?? false;
  try {
    verbose ||= readSettingsFile(dir).VerboseLogging ?? false;
  } catch {
    // settings.json is the sensor's to report; the tray still starts
  }
  const log = createLogger({ verbose, file: roleLogFile(dir, "tray") });
  const { runTray } = await import("../tray/run.ts");
  return runTray({ dataDir: dir, log, atLogon: values["at-logon"] ?? false });
}

/**
 * A double-click on oisp.exe in Explorer (or the ZIP's folder) runs it with no arguments on a console of
 * its own: that is a request for the tray, not for the usage text in a window that closes at once.
 */
export async function startedByDoubleClick(argv: string[]): Promise<boolean> {
  if (process.platform !== "win32" || argv.length > 0) return false;
  try {
    const win = await import("../../ffi/tray-win32.ts");
    if (!win.ownsConsoleAlone()) return false;
    win.hideConsoleWindow();
    return true;
  } catch {
    return false;
  }
}
