// The /control page's handles on the machine: the local CA (src/ca) and starting capture.
// Kept apart from app.ts so the routes stay testable without touching a real trust store.
import { spawn } from "node:child_process";
import { caTrustStatus, installCa, uninstallCa } from "../ca/index.ts";
import { readRoleStatus } from "../control/role-status.ts";
import { requestStop } from "../control/stop-request.ts";
import { currentPauseState, pauseCapture, resumeCapture } from "../control/pause.ts";
import { statusFilePath } from "../sensor/status-file.ts";
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
 * The PowerShell command that starts `oisp redirect` elevated (the UAC prompt). The exe is the running
 * binary; under `bun src/cli.ts` it is bun plus the script.
 */
export function elevatedRedirectCommand(execPath: string, scriptArgs: string[], dataDir: string): string {
  // Start-Process joins ArgumentList with spaces and no quoting: an argument with spaces needs its own quotes.
  const args = [...scriptArgs, "redirect"].map((a) => psQuote(/\s/.test(a) ? `"${a}"` : a)).join(",");
  // OISP_HOME is inherited, so the elevated redirector finds the same CA and pipe as this sensor.
  return `$env:OISP_HOME=${psQuote(dataDir)}; Start-Process -FilePath ${psQuote(execPath)} -ArgumentList ${args} -Verb RunAs -WindowStyle Minimized`;
}

export function captureControlFor(
  dataDir: string,
  platform: NodeJS.Platform = process.platform,
  signal: (pid: number, sig: "SIGINT") => void = (pid, sig) => process.kill(pid, sig),
): CaptureControl {
  const statusFile = statusFilePath(dataDir, "redirect");
  // The pid we asked to stop: shown as "stopping…" until its status file says stopped (or it is gone).
  let stopping: number | undefined;
  return {
    redirector(): RedirectorState {
      const s = readRoleStatus(statusFile);
      const pid = s.snapshot?.pid;
      if (!s.running || pid === undefined) {
        stopping = undefined;
        return { state: "stopped", pid, detail: s.reason ?? "not running" };
      }
      if (stopping === pid) return { state: "stopping", pid, detail: `stopping… (asked pid ${pid} to stop)` };
      return { state: "running", pid, detail: `running, pid ${pid}` };
    },

    pause: () => pauseCapture(dataDir, "dashboard"),
    resume: () => resumeCapture(dataDir, "dashboard"),
    pauseState: () => currentPauseState(dataDir),

    stop(): ActionResult {
      const s = readRoleStatus(statusFile);
      const pid = s.snapshot?.pid;
      if (!s.running || pid === undefined) return { ok: false, message: `oisp redirect is not running (${s.reason ?? "no status"})` };
      if (pid === process.pid) return { ok: false, message: "capture runs inside this process: stop it with Ctrl+C where it was started" };
      if (platform === "win32") {
        // An elevated redirector cannot be signalled by this (normal) user: it polls for this file.
        try {
          requestStop(dataDir, pid);
        } catch (err) {
          return { ok: false, message: `could not write the stop request: ${(err as Error).message}` };
        }
      } else {
        try {
          signal(pid, "SIGINT");
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          return {
            ok: false,
            message:
              code === "EPERM"
                ? `pid ${pid} belongs to another user (started with sudo?): stop it with Ctrl+C where it runs`
                : `could not signal pid ${pid}: ${code ?? (err as Error).message}`,
          };
        }
      }
      stopping = pid;
      return { ok: true, message: `Asked oisp redirect (pid ${pid}) to stop; this updates once it has.` };
    },


    start(): Promise<ActionResult> {
      if (platform !== "win32") {
        return Promise.resolve({
          ok: false,
          message:
            "On this OS capture runs in proxy mode: start `oisp up` (or `oisp redirect --mode proxy`) and export the HTTPS_PROXY and CA variables it prints in the shell of the AI tool.",
        });
      }
      // A compiled oisp.exe has no script argument; `bun src/cli.ts` has one.
      const script = process.argv[1] && /\.(ts|js)$/.test(process.argv[1]) ? [process.argv[1]] : [];
      const command = elevatedRedirectCommand(process.execPath, script, dataDir);
      return new Promise((resolve) => {
        const child = spawn("powershell.exe", ["-NoProfile", "-NonInteractive", "-Command", command], { stdio: "ignore", windowsHide: true });
        child.on("error", (err) => resolve({ ok: false, message: `could not run PowerShell: ${err.message}` }));
        child.on("exit", (code) =>
          resolve(
            code === 0
              ? { ok: true, message: "Asked Windows to start `oisp redirect` as administrator: accept the UAC prompt. Status updates once it connects." }
              : { ok: false, message: `the elevated start was cancelled or failed (PowerShell exit ${code})` },
          ),
        );
      });
    },
  };
}
