// Start / stop capture: the one implementation behind the dashboard's Control page and the tray menu.
// Starting on Windows means an elevated `oisp redirect --tls-mitm` (UAC); how the elevation is asked for is
// the caller's launcher (the dashboard runs PowerShell in a child so the sensor never blocks on the prompt,
// the tray calls ShellExecuteExW "runas" itself). Stopping: SIGINT on POSIX, a request file on Windows.
import { readRoleStatus } from "./role-status.ts";
import { requestStop } from "./stop-request.ts";
import { statusFilePath } from "../sensor/status-file.ts";
import type { ControlResult } from "./pause.ts";

/**
 * Arguments of the elevated `oisp redirect`. The data directory is on the command line: a process started
 * through UAC gets a fresh environment, not this process's OISP_HOME.
 */
export function elevatedRedirectArgs(dataDir: string, scriptArgs: string[] = []): string[] {
  return [...scriptArgs, "--data-dir", dataDir, "redirect", "--tls-mitm"];
}

/** A compiled oisp.exe has no script argument; `bun src/cli.ts` has one. */
export function selfCommand(): { exe: string; scriptArgs: string[] } {
  const script = process.argv[1] && /\.(ts|js)$/.test(process.argv[1]) ? [process.argv[1]] : [];
  return { exe: process.execPath, scriptArgs: script };
}

/** Runs `exe args` elevated; resolves once Windows has accepted (or the user declined) the request. */
export type ElevatedLauncher = (exe: string, args: string[]) => Promise<ControlResult>;

export const PROXY_MODE_HINT =
  "On this OS capture runs in proxy mode: start `oisp up` (or `oisp redirect --mode proxy`) and export the HTTPS_PROXY and CA variables it prints in the shell of the AI tool.";

export async function startCapture(dataDir: string, launch: ElevatedLauncher, platform: NodeJS.Platform = process.platform): Promise<ControlResult> {
  if (platform !== "win32") return { ok: false, message: PROXY_MODE_HINT };
  const running = readRoleStatus(statusFilePath(dataDir, "redirect"));
  if (running.running) return { ok: false, message: `oisp redirect is already running (pid ${running.snapshot?.pid})` };
  const self = selfCommand();
  try {
    return await launch(self.exe, elevatedRedirectArgs(dataDir, self.scriptArgs));
  } catch (err) {
    return { ok: false, message: `could not start oisp redirect: ${(err as Error).message}` };
  }
}

/** The running `oisp redirect`'s pid, or why there is none. */
export function runningRedirector(dataDir: string): { pid?: number; running: boolean; reason?: string } {
  const s = readRoleStatus(statusFilePath(dataDir, "redirect"));
  return { running: s.running && s.snapshot?.pid !== undefined, pid: s.snapshot?.pid, reason: s.reason };
}

export function stopCapture(
  dataDir: string,
  platform: NodeJS.Platform = process.platform,
  signal: (pid: number, sig: "SIGINT") => void = (pid, sig) => process.kill(pid, sig),
): ControlResult & { pid?: number } {
  const r = runningRedirector(dataDir);
  const pid = r.pid;
  if (!r.running || pid === undefined) return { ok: false, message: `oisp redirect is not running (${r.reason ?? "no status"})` };
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
  return { ok: true, pid, message: `Asked oisp redirect (pid ${pid}) to stop; this updates once it has.` };
}
