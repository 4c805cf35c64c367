// The /control page's handles on the machine: the local CA (src/ca) and starting capture.
// Kept apart from app.ts so the routes stay testable without touching a real trust store.
import { spawn } from "node:child_process";
import { caTrustStatus, installCa, uninstallCa } from "../ca/index.ts";
import { runningRedirector, startCapture, stopCapture, type ElevatedLauncher } from "../control/capture.ts";
import { currentPauseState, pauseCapture, resumeCapture } from "../control/pause.ts";
import type { CaControl, CaptureControl, RedirectorState } from "./app.ts";
import type { ActionResult } from "./views/control.tsx";

export function caControlFor(dataDir: string): CaControl {
  return {
    status: () => caTrustStatus(dataDir),
    install: () => installCa(dataDir),
    uninstall: () => uninstallCa(dataDir),
  };
}

/** PowerShell single-quoted string: only ' needs doubling. */
export function psQuote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/**
 * The PowerShell command that starts `exe args` elevated (the UAC prompt); the arguments name the data
 * directory (see elevatedRedirectArgs), since the elevated process does not inherit OISP_HOME.
 */
export function elevatedRedirectCommand(exe: string, args: string[]): string {
  // Start-Process joins ArgumentList with spaces and no quoting: an argument with spaces needs its own quotes.
  const list = args.map((a) => psQuote(/\s/.test(a) ? `"${a}"` : a)).join(",");
  return `Start-Process -FilePath ${psQuote(exe)} -ArgumentList ${list} -Verb RunAs -WindowStyle Minimized`;
}

/** The dashboard's launcher: PowerShell in a child process, so the sensor's event loop never waits on UAC. */
export const powershellLauncher: ElevatedLauncher = (exe, args) =>
  new Promise((resolve) => {
    const child = spawn("powershell.exe", ["-NoProfile", "-NonInteractive", "-Command", elevatedRedirectCommand(exe, args)], { stdio: "ignore", windowsHide: true });
    child.on("error", (err) => resolve({ ok: false, message: `could not run PowerShell: ${err.message}` }));
    child.on("exit", (code) =>
      resolve(
        code === 0
          ? { ok: true, message: "Asked Windows to start `oisp redirect` as administrator: accept the UAC prompt. Status updates once it connects." }
          : { ok: false, message: `the elevated start was cancelled or failed (PowerShell exit ${code})` },
      ),
    );
  });

export function captureControlFor(
  dataDir: string,
  platform: NodeJS.Platform = process.platform,
  signal: (pid: number, sig: "SIGINT") => void = (pid, sig) => process.kill(pid, sig),
): CaptureControl {
  // The pid we asked to stop: shown as "stopping…" until its status file says stopped (or it is gone).
  let stopping: number | undefined;
  return {
    redirector(): RedirectorState {
      const r = runningRedirector(dataDir);
      const pid = r.pid;
      if (!r.running || pid === undefined) {
        stopping = undefined;
        return { state: "stopped", pid, detail: r.reason ?? "not running" };
      }
      if (stopping === pid) return { state: "stopping", pid, detail: `stopping… (asked pid ${pid} to stop)` };
      return { state: "running", pid, detail: `running, pid ${pid}` };
    },

    pause: () => pauseCapture(dataDir, "dashboard"),
    resume: () => resumeCapture(dataDir, "dashboard"),
    pauseState: () => currentPauseState(dataDir),

    stop(): ActionResult {
      const r = stopCapture(dataDir, platform, signal);
      if (r.ok) stopping = r.pid;
      return { ok: r.ok, message: r.message };
    },

    start: () => startCapture(dataDir, powershellLauncher, platform),
  };
}
