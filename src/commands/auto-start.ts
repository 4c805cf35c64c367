// settings.json's AutoStartCapture (the Windows seed's setting): `oisp sensor` starts capture when it starts,
// the way the dashboard's Start capture does (src/control/capture.ts: on Windows an elevated
// `oisp --data-dir DIR redirect --tls-mitm`, one UAC prompt). Elsewhere capture is `oisp up` in proxy mode,
// which the sensor cannot start for the user: it says so in its log.
import { readSettingsFile } from "../config/settings.ts";
import { runningRedirector, startCapture, type ElevatedLauncher } from "../control/capture.ts";
import type { Logger } from "../util/log.ts";

/** Starts capture when settings.json asks for it and no redirector runs; returns what was done. */
export async function autoStartCapture(
  dataDir: string,
  launch: ElevatedLauncher,
  log: Logger,
  platform: NodeJS.Platform = process.platform,
): Promise<"off" | "running" | "started" | "failed"> {
  if (readSettingsFile(dataDir).AutoStartCapture !== true) return "off";
  const r = runningRedirector(dataDir);
  if (r.running) {
    log("info", `AutoStartCapture: oisp redirect already runs (pid ${r.pid})`);
    return "running";
  }
  const result = await startCapture(dataDir, launch, platform);
  log(result.ok ? "info" : "warn", `AutoStartCapture: ${result.message}`);
  return result.ok ? "started" : "failed";
}
