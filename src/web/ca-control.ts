// The /control page's handles on the machine: the local CA (src/ca) and starting capture.
// Kept apart from app.ts so the routes stay testable without touching a real trust store.
import { spawn } from "node:child_process";
import { caTrustStatus, installCa, uninstallCa } from "../ca/index.ts";
import type { CaControl, CaptureControl } from "./app.ts";
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

export function captureControlFor(dataDir: string, platform: NodeJS.Platform = process.platform): CaptureControl {
  return {
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
