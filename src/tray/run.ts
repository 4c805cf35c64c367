// `oisp tray` at run time (Windows): the notification icon, its menu and balloons, driven by the facts
// read every couple of seconds. Win32 through ffi/tray-win32.ts; what to show comes from ./model.ts; each
// menu action calls the same function as the dashboard's Control page (src/control, src/ca).
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { initCa, installCa, uninstallCa } from "../ca/index.ts";
import { selfCommand, startCapture, stopCapture, type ElevatedLauncher } from "../control/capture.ts";
import { pauseCapture, resumeCapture, type ControlResult } from "../control/pause.ts";
import { readRoleStatus } from "../control/role-status.ts";
import { statusFilePath } from "../sensor/status-file.ts";
import { logDir } from "../util/log-file.ts";
import type { Logger } from "../util/log.ts";
import { collectTrayFacts } from "./facts.ts";
import { actionForId, balloonsFor, ICON_SIZE, iconPixels, quoteWindowsArgs, runKeyCommand, tooltip, trayMenu, trayState, type TrayAction, type TrayFacts, type TrayState } from "./model.ts";

type Win = typeof import("../../ffi/tray-win32.ts");

export interface TrayOptions {
  dataDir: string;
  log: Logger;
  /** Started from the Run key at logon (the sensor it starts honours AutoStartCapture). */
  atLogon: boolean;
  /** How often the facts are re-read. */
  refreshMs?: number;
  /** How often queued window messages are dispatched. */
  pumpMs?: number;
}

export const RUN_VALUE = "OISP";

export async function runTray(opts: TrayOptions): Promise<number> {
  const win: Win = await import("../../ffi/tray-win32.ts");
  const { dataDir, log } = opts;
  // Local\ is per session; the user name makes it per user too (fast user switching shares no session).
  if (!win.acquireSingleInstance(`Local\\OISP-Tray-${os.userInfo().username}`)) {
    log("info", "oisp tray is already running for this user");
    return 0;
  }
  const icons = new Map<TrayState, { handle: bigint }>();
  for (const s of ["capturing", "paused", "not-capturing", "ca-not-trusted", "sensor-not-running"] as const) {
    const px = iconPixels(s);
    icons.set(s, win.createIcon(ICON_SIZE, px.bgra, px.andMask));
  }

  let menuWanted = false;
  let dashboardWanted = false;
  let quit: (() => void) | undefined;
  const done = new Promise<void>((resolve) => (quit = resolve));
  const window = new win.TrayWindow("OISPTrayWindow", "OISP", {
    onIcon(m) {
      if (m === win.WM_RBUTTONUP || m === win.WM_CONTEXTMENU) menuWanted = true;
      else if (m === win.WM_LBUTTONDBLCLK || m === win.NIN_BALLOONUSERCLICK) dashboardWanted = true;
    },
    onTaskbarCreated: () => void refresh(true),
    onClose: () => quit?.(),
  });

  let facts: TrayFacts | undefined;
  /** The redirector pid the tray asked to stop: its end is expected, not a balloon. */
  let stopping: number | undefined;
  let busy = false;
  let iconShown = true; // set from the first setIcon
  const autostart = (): boolean => {
    try {
      return win.readRunValue(RUN_VALUE) !== undefined;
    } catch {
      return false;
    }
  };

  const refresh = async (force = false) => {
    let next: TrayFacts;
    try {
      next = await collectTrayFacts(dataDir, { startWithWindows: autostart(), stopping });
    } catch (err) {
      log("warn", `tray: reading the state failed: ${(err as Error).message}`);
      return;
    }
    if ((facts?.capture.running ?? false) !== next.capture.running || (next.capture.running && facts?.capture.pid !== next.capture.pid)) {
      log("info", next.capture.running ? `tray: capture running (pid ${next.capture.pid})` : "tray: capture not running");
    }
    const expectedStop = stopping !== undefined && !next.capture.running;
    for (const b of balloonsFor(facts, next, expectedStop)) {
      log("info", `tray: ${b.title}: ${b.text}`);
      window.balloon(b.title, b.text, b.kind);
    }
    if (expectedStop) stopping = undefined;
    const changed = force || !iconShown || !facts || tooltip(facts) !== tooltip(next) || trayState(facts) !== trayState(next);
    facts = next;
    if (!changed) return;
    const shown = window.setIcon(icons.get(trayState(next))!, tooltip(next));
    // At logon the notification area may not exist yet: keep trying at every tick until it does.
    if (!shown && iconShown) log("warn", "tray: Shell_NotifyIconW failed (no notification area yet?); retrying");
    iconShown = shown;
  };

  const notify = (r: ControlResult, title: string) => {
    log(r.ok ? "info" : "warn", `tray: ${title}: ${r.message}`);
    if (!r.ok) window.balloon(title, r.message, "warning");
  };

  const self = selfCommand();
  /** Starts `oisp sensor --web` for this data dir unless a sensor runs; it outlives the tray. */
  const ensureSensor = (): boolean => {
    if (readRoleStatus(statusFilePath(dataDir, "sensor")).running) return false;
    const args = [...self.scriptArgs, "--data-dir", dataDir, "sensor", "--web"];
    log("info", `tray: starting ${path.basename(self.exe)} ${args.join(" ")}`);
    const child = spawn(self.exe, args, { detached: true, stdio: "ignore", windowsHide: true });
    child.on("error", (err) => log("error", `tray: could not start the sensor: ${err.message}`));
    child.unref();
    return true;
  };

  const dashboardUrl = async (): Promise<string | undefined> => {
    ensureSensor();
    const end = Date.now() + 30_000;
    while (Date.now() < end) {
      const s = readRoleStatus(statusFilePath(dataDir, "sensor"));
      if (s.running) {
        if (s.snapshot?.web?.url) return s.snapshot.web.url;
        window.balloon("No dashboard", "The running sensor was started without --web: stop it, then choose Open Dashboard again.", "warning");
        return undefined;
      }
      await Bun.sleep(250);
    }
    window.balloon("OISP sensor did not start", `See View Logs (${logDir(dataDir)}).`, "error");
    return undefined;
  };

  const launcher: ElevatedLauncher = async (exe, args) => {
    // Hidden: the redirector is controlled from here and logs to redirect.log; a console would cover the desktop.
    const r = win.shellExecute("runas", exe, quoteWindowsArgs(args), "hidden");
    if (r.ok) return { ok: true, message: "oisp redirect started as administrator; the icon turns green once it captures." };
    return { ok: false, message: r.cancelled ? "Start Capture was cancelled at the UAC prompt." : `Windows could not start oisp redirect (error ${r.error}).` };
  };

  const openPath = (target: string): boolean => {
    const r = win.shellExecute("open", target);
    if (!r.ok) log("warn", `tray: could not open ${target}: error ${r.error}`);
    return r.ok;
  };

  const run = async (action: TrayAction) => {
    log("info", `tray: ${action}`);
    switch (action) {
      case "start-capture":
        ensureSensor();
        return notify(await startCapture(dataDir, launcher), "Start Capture");
      case "stop-capture": {
        const r = stopCapture(dataDir);
        if (r.ok) stopping = r.pid;
        return notify(r, "Stop Capture");
      }
      case "pause":
        return notify(await pauseCapture(dataDir, "tray"), "Pause");
      case "resume":
        return notify(await resumeCapture(dataDir, "tray"), "Resume");
      case "install-ca":
        await initCa(dataDir);
        return notify(await installCa(dataDir), "Install CA Certificate");
      case "remove-ca":
        return notify(await uninstallCa(dataDir), "Remove CA Certificate");
      case "open-dashboard":
      case "settings": {
        const url = await dashboardUrl();
        if (url) openPath(action === "settings" ? new URL("/control", url).href : url);
        return;
      }
      case "view-logs": {
        const file = newestLog(dataDir);
        // No program registered for .log (some Windows setups, Wine): show the folder in Explorer instead.
        if (!openPath(file) && file !== logDir(dataDir)) openPath(logDir(dataDir));
        return;
      }
      case "toggle-autostart": {
        const on = autostart();
        win.writeRunValue(RUN_VALUE, on ? undefined : runKeyCommand(self.exe, self.scriptArgs, dataDir));
        log("info", `tray: Start with Windows ${on ? "off" : "on"}`);
        return;
      }
      case "quit":
        return quit?.();
    }
  };

  const perform = (action: TrayAction) => {
    busy = true;
    run(action)
      .catch((err) => {
        log("error", `tray: ${action}: ${(err as Error).message}`);
        window.balloon("OISP", `${action}: ${(err as Error).message}`, "error");
      })
      .finally(() => {
        busy = false;
        void refresh();
      });
  };

  const showMenu = () => {
    if (!facts) return;
    const entries = trayMenu(facts);
    const id = window.popupMenu(entries, (rects) => log("debug", `tray: menu shown: ${JSON.stringify(rects.filter((r) => r.label))}`));
    const action = actionForId(id);
    log("debug", `tray: menu closed: ${action ?? "dismissed"}`);
    if (action) perform(action);
  };

  const pump = setInterval(() => {
    window.pump();
    if (busy) return;
    if (menuWanted) {
      menuWanted = false;
      showMenu();
    } else if (dashboardWanted) {
      dashboardWanted = false;
      perform("open-dashboard");
    }
  }, opts.pumpMs ?? 50);
  const ticker = setInterval(() => void refresh(), opts.refreshMs ?? 2000);
  const onSignal = () => quit?.();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    ensureSensor();
    await refresh(true);
    log("info", `oisp tray: ${iconShown ? "icon added" : "waiting for the notification area"} (window 0x${window.hwnd.toString(16)}), data dir ${dataDir}`);
    // At logon the sensor started above honours AutoStartCapture itself (src/commands/auto-start.ts).
    if (opts.atLogon) log("info", "oisp tray: started at logon");
    await done;
  } finally {
    clearInterval(pump);
    clearInterval(ticker);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    window.destroy();
    for (const i of icons.values()) win.destroyIcon(i);
    log("info", "oisp tray: quit");
  }
  return 0;
}

/** The most recently written log file, else the log folder (opened in Explorer). */
function newestLog(dataDir: string): string {
  const dir = logDir(dataDir);
  try {
    const files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(".log"))
      .map((f) => ({ f: path.join(dir, f), t: fs.statSync(path.join(dir, f)).mtimeMs }))
      .sort((a, b) => b.t - a.t);
    if (files[0]) return files[0].f;
  } catch {
    fs.mkdirSync(dir, { recursive: true });
  }
  return dir;
}


