// `oisp redirect --mode proxy`: the capture role. Listens as an explicit HTTP proxy, intercepts TLS to
// AI hosts with the local CA, relays every byte unchanged and taps a copy to the sensor.
import fs from "node:fs";
import path from "node:path";
import { initCa, loadCa } from "../ca/index.ts";
import { processLookupForPlatform } from "../capture/process/index.ts";
import { startProxy } from "../capture/proxy/server.ts";
import type { TapSink } from "../tap/types.ts";
import type { WindowsRedirect } from "../capture/windivert/index.ts";
import { dataDir as defaultDataDir } from "../config/paths.ts";
import { watchPauseState } from "../config/pause.ts";
import { readSettingsFile } from "../config/settings.ts";
import { defaultPipePath, resolvePipePath } from "../ipc/endpoint.ts";
import { pinnedHostsForStatus, startStatusFile, statusFilePath } from "../sensor/status-file.ts";
import { isAiHost } from "../spec/endpoints.ts";
import { asList, parseFlags, parseListen, parseResolve, UsageError, type FlagSpec } from "../util/args.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { roleLogFile } from "../util/log-file.ts";
import { VERSION } from "../version.ts";
import { listenForStop } from "./lifecycle.ts";
import { parsePids, redirectEbpf } from "./ebpf.ts";
import { watchUnpinRequests } from "./unpin.ts";

export const redirectFlagSpec = {
  mode: { type: "string" },
  listen: { type: "string" },
  port: { type: "string" },
  "tls-mitm": { type: "boolean" },
  "no-tls-mitm": { type: "boolean" },
  "all-traffic": { type: "boolean" },
  "upstream-ca": { type: "string", multiple: true },
  resolve: { type: "string", multiple: true },
  pipe: { type: "string" },
  "windivert-dir": { type: "string" },
  pid: { type: "string", multiple: true },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
} satisfies FlagSpec;

export const redirectFlagsHelp = `  --listen HOST:PORT      proxy address (default 127.0.0.1:8080)
  --all-traffic           intercept every TLS host, not only known AI endpoints
  --upstream-ca FILE      extra trusted root(s) for upstream TLS, PEM (repeatable; corporate proxies, tests)
  --resolve HOST:PORT:ADDR[:PORT]
                          connect to ADDR for HOST:PORT, keeping SNI and Host (like curl; repeatable)`;

export const redirectHelp = `Usage: oisp redirect --mode proxy [flags]

Capture role: an explicit HTTP proxy (CONNECT for HTTPS, absolute-form for plain HTTP such as
Ollama on localhost:11434). Captured traffic goes to \`oisp sensor\` over a local socket.

  --mode proxy|windivert|ebpf
                          proxy: explicit HTTP proxy (default except on Windows); windivert: divert
                          every app's AI connections with WinDivert (Windows default, needs Administrator)
                          ebpf (Linux, root): TLS plaintext from OpenSSL's SSL_read/SSL_write through eBPF
                          uprobes, no proxy; to reach your user's sensor run it as
                          sudo OISP_HOME=$HOME/.oisp oisp redirect --mode ebpf
  --port PORT             windivert: port diverted connections arrive on (default 8443);
                          proxy: the proxy's port (--listen 127.0.0.1:PORT)
  --windivert-dir DIR     windivert: where WinDivert.dll and WinDivert64.sys are (default: next to oisp.exe,
                          then the data directory)
  --pid PID               ebpf: capture only this process and its descendants (repeatable)
  --tls-mitm              decrypt TLS to AI hosts with the local CA (otherwise metadata only)
${redirectFlagsHelp}
  --pipe NAME|PATH        sensor endpoint (default: the sensor's default)
  -v, --verbose           log every connection
  -h, --help              this help`;

export interface RedirectConfig {
  dataDir: string;
  listen: { host: string; port: number };
  tlsMitm: boolean;
  allTraffic: boolean;
  upstreamCa: string[];
  resolve: Map<string, string>;
  log: Logger;
}

type RedirectValues = {
  listen?: string;
  port?: string;
  "tls-mitm"?: boolean;
  "no-tls-mitm"?: boolean;
  "all-traffic"?: boolean;
  "upstream-ca"?: string[];
  resolve?: string[];
  verbose?: boolean;
};

export function redirectConfigFrom(values: RedirectValues, defaults: { tlsMitm: boolean }, dir = defaultDataDir(), logName = "redirect"): RedirectConfig {
  const settings = readSettingsFile(dir);
  let listen = { host: "127.0.0.1", port: settings.ProxyPort ?? 8080 };
  if (values.listen) listen = parseListen(values.listen, "--listen");
  if (values.port) listen = { ...listen, port: parseListen(values.port, "--port").port };
  const upstreamCa = asList(values["upstream-ca"]).map((file) => {
    try {
      return fs.readFileSync(file, "utf8");
    } catch (err) {
      throw new UsageError(`--upstream-ca: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  });
  const tlsMitm = values["no-tls-mitm"] ? false : (values["tls-mitm"] ?? settings.EnableTlsMitm ?? defaults.tlsMitm);
  const verbose = values.verbose ?? settings.VerboseLogging ?? false;
  return {
    dataDir: dir,
    listen,
    tlsMitm,
    allTraffic: values["all-traffic"] ?? settings.AiEndpointFilterEnabled === false,
    upstreamCa,
    resolve: new Map(asList(values.resolve).map(parseResolve)),
    log: createLogger({ verbose, file: roleLogFile(dir, logName) }),
  };
}

/** Starts the proxy with the given tap. The CA is created on first use so capture works on a fresh machine. */
export async function startRedirectCore(cfg: RedirectConfig, tap: TapSink) {
  let ca;
  if (cfg.tlsMitm) {
    const { created, files } = await initCa(cfg.dataDir);
    if (created) cfg.log("info", `created local CA ${files.certPath}`);
    ca = await loadCa(cfg.dataDir);
  }
  const lookupProcess = processLookupForPlatform();
  // Paused capture survives restarts: the state file is read before the first connection is accepted.
  // `onPauseChange` lets the caller rewrite its status snapshot at once, so `oisp pause` sees it confirmed.
  const pauseListeners: Array<() => void> = [];
  const pause = watchPauseState(cfg.dataDir, { log: cfg.log, onChange: () => pauseListeners.forEach((fn) => fn()) });
  const proxy = await startProxy({
    listen: cfg.listen,
    tlsMitm: cfg.tlsMitm,
    allTraffic: cfg.allTraffic,
    issuer: ca,
    isAiHost,
    upstreamCa: cfg.upstreamCa,
    resolve: cfg.resolve,
    tap,
    lookupProcess,
    log: cfg.log,
    paused: pause.paused,
  }).catch((err) => {
    pause.stop();
    throw err;
  });
  // `oisp unpin` talks to this proxy through the run directory; the (unref'd) poll ends with the process.
  watchUnpinRequests(cfg.dataDir, proxy, cfg.log);
  return { proxy, ca, lookupProcess, pause, onPauseChange: (fn: () => void) => pauseListeners.push(fn) };
}

export async function redirectCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, redirectFlagSpec, "redirect");
  if (values.help) {
    console.log(redirectHelp);
    return 0;
  }
  // Windows diverts every app's traffic with WinDivert; elsewhere apps opt in through HTTPS_PROXY.
  const mode = values.mode ?? (process.platform === "win32" ? "windivert" : "proxy");
  if (mode !== "proxy" && mode !== "windivert" && mode !== "ebpf") throw new UsageError(`--mode ${mode}: expected proxy, windivert or ebpf`);
  if (values.pid?.length && mode !== "ebpf") throw new UsageError("--pid needs --mode ebpf");
  const cfg = redirectConfigFrom(values, { tlsMitm: false });
  // In windivert mode --port is where diverted connections arrive; the proxy itself stays internal.
  const divertPort = mode === "windivert" ? parseListen(values.port ?? String(readSettingsFile(cfg.dataDir).ProxyPort ?? 8443), "--port").port : undefined;
  if (divertPort !== undefined && !values.listen) cfg.listen = { host: "127.0.0.1", port: 0 };
  const pipePath = values.pipe ? resolvePipePath(values.pipe, cfg.dataDir) : defaultPipePath(cfg.dataDir);
  // Loaded here: `oisp up` shares this file but taps into its Worker, never over IPC.
  const { IpcTapClient } = await import("../ipc/client.ts");
  const tap = new IpcTapClient({ path: pipePath, dataDir: cfg.dataDir, spoolDir: path.join(cfg.dataDir, "spool"), log: cfg.log });
  if (mode === "ebpf") return redirectEbpf({ dataDir: cfg.dataDir, log: cfg.log, allTraffic: cfg.allTraffic, tap, pipePath, pids: parsePids(values.pid) });
  const { proxy, lookupProcess, pause, onPauseChange } = await startRedirectCore(cfg, tap);
  let windivert: WindowsRedirect | undefined;
  if (divertPort !== undefined) {
    try {
      // Loaded only in this mode: proxy mode never touches the FFI layer.
      const { startWindowsRedirect } = await import("../capture/windivert/index.ts");
      windivert = await startWindowsRedirect({
        divertPort,
        proxy,
        lookupProcess,
        resolve: cfg.resolve,
        allTraffic: cfg.allTraffic,
        dataDir: cfg.dataDir,
        windivertDir: values["windivert-dir"],
        log: cfg.log,
      });
    } catch (err) {
      await proxy.close();
      await tap.close();
      throw err;
    }
  }
  cfg.log(
    "info",
    `oisp redirect ${VERSION}: ${windivert ? `WinDivert diverting AI connections to port ${divertPort}` : `proxy on ${proxy.address.host}:${proxy.address.port}`}, TLS interception ${cfg.tlsMitm ? "on" : "off (metadata only)"}, sensor at ${pipePath}`,
  );
  const { host, port } = proxy.address;
  // Listening before the status file exists: that file is what makes the dashboard offer "Stop capture".
  const stop = listenForStop(cfg.dataDir, cfg.log);
  const status = startStatusFile({
    file: statusFilePath(cfg.dataDir, "redirect"),
    dataDir: cfg.dataDir,
    roles: ["redirect"],
    log: cfg.log,
    sections: () => ({
      proxy: { address: `http://${host.includes(":") ? `[${host}]` : host}:${port}`, tls_mitm: cfg.tlsMitm, stats: proxy.stats(), pinned_hosts: pinnedHostsForStatus(proxy.pinnedHosts()) },
      tap: { path: pipePath, stats: tap.stats() },
      capture: pause.state(),
      ...(windivert && { windivert: windivert.stats() }),
    }),
  });
  onPauseChange(() => status.update());
  await stop.stopped;
  stop.cancel();
  try {
    await windivert?.stop(); // stop diverting first: traffic flows normally again before the proxy goes
    await proxy.close();
    await tap.close();
  } finally {
    pause.stop();
    status.stop();
  }
  return 0;
}
