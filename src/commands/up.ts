// `oisp up`: both roles in one process, no elevation, TLS interception on by default.
// The quick start's main job: start it, export the printed variables, run your AI tool.
import fs from "node:fs";
import path from "node:path";
import tls from "node:tls";
import { caFiles } from "../ca/index.ts";
import { dataDir as defaultDataDir } from "../config/paths.ts";
import { parseFlags, UsageError, type FlagSpec } from "../util/args.ts";
import { sdNotify } from "../util/sd-notify.ts";
import { VERSION } from "../version.ts";
import { pinnedHostsForStatus, sensorSections, startStatusFile, statusFilePath } from "../sensor/status-file.ts";
import { startSensorWorker } from "../sensor/worker-tap.ts";
import { startSensorViews } from "./sensor-views.ts";
import { withConfigFile } from "./config-file.ts";
import { type StopOrReload, waitForStopOrReload } from "./lifecycle.ts";
import { ebpfFlagSpec, ebpfFlagsHelp, parsePids } from "./ebpf.ts";
import { redirectConfigFrom, redirectFlagsHelp, redirectFlagSpec, startRedirectCore } from "./redirect.ts";
import { runUpEbpf } from "./up-ebpf.ts";
import { sensorConfigFrom, sensorControlRows, sensorFlagSpec, sensorFlagsHelp } from "./sensor.ts";

const { pipe: _pipe, mode: _mode, port: _port, "windivert-dir": _windivertDir, ...proxyFlags } = redirectFlagSpec;
export const upFlagSpec = { ...sensorFlagSpec, ...proxyFlags, ...ebpfFlagSpec } satisfies FlagSpec;

export const upHelp = `Usage: oisp up [flags]

Run the proxy and the sensor in one process (no elevation needed). Creates the local CA on first
run, then prints the environment variables that send your tools through it.

  --no-tls-mitm           record connection metadata only, never decrypt
${ebpfFlagsHelp}
${redirectFlagsHelp}
${sensorFlagsHelp}
  -v, --verbose           log every connection
  -h, --help              this help`;

export async function upCommand(argv: string[]): Promise<number> {
  const { values: flags } = parseFlags(argv, upFlagSpec, "up");
  if (flags.help) {
    console.log(upHelp);
    return 0;
  }
  const dir = defaultDataDir();
  // SIGHUP (`systemctl reload`) re-reads --config and settings.json; a valid result restarts every part
  // with it, in this process (docs/config.md says what a reload keeps and what it interrupts).
  let cfg = upConfigFrom(flags, dir);
  for (;;) {
    const next = await runUp(cfg, () => upConfigFrom(flags, dir));
    if ("stop" in next) return 0;
    cfg = next.reload;
  }
}

interface UpConfig {
  values: ReturnType<typeof withConfigFile<UpValues>>;
  dir: string;
  sensorCfg: ReturnType<typeof sensorConfigFrom>;
  redirectCfg: ReturnType<typeof redirectConfigFrom>;
}
type UpValues = ReturnType<typeof parseFlags<typeof upFlagSpec>>["values"];

/** Flags over --config over settings.json, checked in full: a reload with a broken file changes nothing. */
function upConfigFrom(flags: UpValues, dir: string): UpConfig {
  const values = withConfigFile(flags);
  if (values.capture !== undefined && values.capture !== "proxy" && values.capture !== "ebpf") throw new UsageError(`--capture ${values.capture}: expected proxy or ebpf`);
  if (values.pid?.length && values.capture !== "ebpf") throw new UsageError("--pid needs --capture ebpf");
  return { values, dir, sensorCfg: sensorConfigFrom(values, dir, "up"), redirectCfg: redirectConfigFrom(values, { tlsMitm: true }, dir, "up") };
}

async function runUp({ values, dir, sensorCfg, redirectCfg }: UpConfig, reload: () => UpConfig): Promise<StopOrReload<UpConfig>> {
  if (values.capture === "ebpf") return runUpEbpf({ values, dir, sensorCfg, pids: parsePids(values.pid), allTraffic: redirectCfg.allTraffic }, reload);
  // The sensor (decoding, redaction, SQLite, exporters) runs on its own thread: the relay's event loop only
  // queues a copy of each chunk, after forwarding it, and posts the queue to the worker every few ms.
  const sensor = await startSensorWorker(sensorCfg);
  const tap = sensor.tap;
  let proxy, pause, onPauseChange;
  try {
    ({ proxy, pause, onPauseChange } = await startRedirectCore(redirectCfg, tap));
  } catch (err) {
    await sensor.close();
    throw err;
  }
  const proxyUrl = `http://${formatHost(proxy.address.host)}:${proxy.address.port}`;
  console.log(`oisp ${VERSION} is capturing. Database: ${sensorCfg.dbPath}, redaction: ${sensorCfg.redaction}.`);
  console.log(envLines(proxyUrl, redirectCfg.tlsMitm ? writeTrustBundle(dir) : undefined));
  if (process.platform === "linux" && process.getuid?.() === 0 && !values.listen) {
    console.log("As root on Linux, `oisp up --capture ebpf` captures OpenSSL clients (curl, Python, Node) with no proxy and no CA.");
  }
  const controlStatus = () => ({ proxy: proxyUrl, ...prefixed("proxy.", proxy.stats()), ...prefixed("sensor queue.", tap.stats()), ...sensorControlRows(sensor) });
  const views = await startSensorViews({ flags: values, dataDir: dir, dbPath: sensorCfg.dbPath, sensor, log: sensorCfg.log, status: controlStatus });
  // Listening before the status file exists: `oisp status`, the dashboard and systemd (READY=1) act on it.
  const stopOrReload = waitForStopOrReload(sensorCfg.log, reload);
  const status = startStatusFile({
    file: statusFilePath(dir, "sensor"),
    dataDir: dir,
    roles: ["sensor", "proxy"],
    log: sensorCfg.log,
    sections: () => ({
      db_path: sensorCfg.dbPath,
      proxy: { address: proxyUrl, tls_mitm: redirectCfg.tlsMitm, stats: proxy.stats(), pinned_hosts: pinnedHostsForStatus(proxy.pinnedHosts()) },
      ...sensorSections(sensor),
      tap: { path: "sensor worker", stats: tap.stats() },
      capture: pause.state(),
      ...(views.web && { web: { url: views.web.url } }),
    }),
  });
  onPauseChange(() => status.update());
  sdNotify(`READY=1\nSTATUS=capturing through the proxy at ${proxyUrl}`);
  const next = await stopOrReload;
  sdNotify("stop" in next ? "STOPPING=1" : "RELOADING=1");
  try {
    pause.stop();
    await views.close();
    await proxy.close();
    await sensor.close(); // sends what is queued first
  } finally {
    status.stop();
  }
  return next;
}

/**
 * SSL_CERT_FILE and REQUESTS_CA_BUNDLE replace a client's whole trust store, so they must point at a bundle
 * holding the public roots AND our CA, or every host we do not intercept would fail verification.
 */
function writeTrustBundle(dir: string): { caPath: string; bundlePath: string } {
  const { certPath } = caFiles(dir);
  const bundlePath = path.join(path.dirname(certPath), "ca-bundle.pem");
  const roots = tls.rootCertificates.join("\n");
  fs.writeFileSync(bundlePath, `${roots}\n${fs.readFileSync(certPath, "utf8")}`, { mode: 0o644 });
  return { caPath: certPath, bundlePath };
}

function envLines(proxyUrl: string, trust?: { caPath: string; bundlePath: string }): string {
  const vars: Array<[string, string]> = [["HTTPS_PROXY", proxyUrl]];
  if (trust) {
    vars.push(["NODE_EXTRA_CA_CERTS", trust.caPath], ["SSL_CERT_FILE", trust.bundlePath], ["REQUESTS_CA_BUNDLE", trust.bundlePath]);
  }
  const lines =
    process.platform === "win32"
      ? vars.map(([k, v]) => `$env:${k}="${v}"`)
      : vars.map(([k, v]) => `export ${k}=${v}`);
  const where = process.platform === "win32" ? "In PowerShell, run:" : "In the shell that runs your AI tool:";
  const plain = `For plain-HTTP local models (Ollama, LM Studio) also set HTTP_PROXY=${proxyUrl}.`;
  return `\n${where}\n  ${lines.join("\n  ")}\n\n${plain}\nPress Ctrl+C to stop.`;
}

function prefixed(prefix: string, o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${prefix}${k}`, v]));
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
