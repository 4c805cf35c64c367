// `oisp up --capture ebpf`: eBPF capture and the sensor in one process (root). The capture's records are
// turned into tap connections on this thread and decoded in the sensor worker, as the proxy's are.
import path from "node:path";
import { watchPauseState } from "../config/pause.ts";
import { sensorSections, startStatusFile, statusFilePath } from "../sensor/status-file.ts";
import { startSensorWorker } from "../sensor/worker-tap.ts";
import { sdNotify } from "../util/sd-notify.ts";
import { VERSION } from "../version.ts";
import { ebpfBanner, ebpfStatus, startEbpf } from "./ebpf.ts";
import { type StopOrReload, waitForStopOrReload } from "./lifecycle.ts";
import { sensorControlRows, type SensorConfig } from "./sensor.ts";
import { startSensorViews } from "./sensor-views.ts";

export async function runUpEbpf<C>(
  o: { values: Parameters<typeof startSensorViews>[0]["flags"]; dir: string; sensorCfg: SensorConfig; pids?: number[]; allTraffic: boolean },
  reload: () => C,
): Promise<StopOrReload<C>> {
  const { sensorCfg, dir } = o;
  const sensor = await startSensorWorker(sensorCfg);
  const tap = sensor.tap;
  const pause = watchPauseState(dir, { log: sensorCfg.log });
  let capture;
  try {
    capture = await startEbpf({ tap, log: sensorCfg.log, pids: o.pids, paused: () => pause.paused(), libDir: path.join(dir, "lib"), allTraffic: o.allTraffic });
  } catch (err) {
    pause.stop();
    await sensor.close();
    throw err;
  }
  console.log(`oisp ${VERSION} is capturing. Database: ${sensorCfg.dbPath}, redaction: ${sensorCfg.redaction}.`);
  console.log(ebpfBanner(capture.stats(), o.pids));
  const controlStatus = () => {
    const s = capture.stats();
    return {
      capture: "ebpf",
      "ebpf.attached": s.attached.map((a) => a.path).join(", "),
      "ebpf.records/s": s.recordsPerSec,
      "ebpf.ring drops": s.ringDrops,
      "ebpf.lost bytes": s.lostBytes,
      ...sensorControlRows(sensor),
    };
  };
  const views = await startSensorViews({ flags: o.values, dataDir: dir, dbPath: sensorCfg.dbPath, sensor, log: sensorCfg.log, status: controlStatus });
  // Listening before the status file exists: `oisp status`, the dashboard and systemd (READY=1) act on it.
  const stopOrReload = waitForStopOrReload(sensorCfg.log, reload);
  const status = startStatusFile({
    file: statusFilePath(dir, "sensor"),
    dataDir: dir,
    roles: ["sensor", "ebpf"],
    log: sensorCfg.log,
    sections: () => ({
      db_path: sensorCfg.dbPath,
      ebpf: ebpfStatus(capture.stats()),
      ...sensorSections(sensor),
      tap: { path: "sensor worker", stats: tap.stats() },
      capture: pause.state(),
      ...(views.web && { web: { url: views.web.url } }),
    }),
  });
  sdNotify("READY=1\nSTATUS=capturing TLS with eBPF");
  const next = await stopOrReload;
  sdNotify("stop" in next ? "STOPPING=1" : "RELOADING=1");
  try {
    pause.stop();
    await views.close();
    await capture.stop();
    await sensor.close();
  } finally {
    status.stop();
  }
  return next;
}
