// `oisp.exe tray` for real under Wine on a virtual X display (Xvfb): the notification icon appears in
// Wine's system tray window, a right-click there (xdotool, through the X server like a mouse) opens the
// Win32 popup menu, whose screenshot is kept in test-output/, and clicking its items runs the actions:
// Pause Recording (the shared src/control function), Start with Windows (HKCU Run key, checked with
// reg.exe), Open Dashboard (the sensor the tray started answers over HTTP; the URL reaches the browser
// Wine hands it to), Start Capture (elevated `oisp redirect`, the CA-not-trusted balloon), Stop Capture, a killed redirector
// (the "capture stopped" balloon), View Logs,
// then Quit ends the process with exit 0. A second tray of the same user exits at once. Last, oisp.exe
// started with no arguments on a console of its own (a double-click) starts the tray.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "../support/oisp-process.ts";
import { repoRoot, skipWine, WINE, wineBuild, wineMissing, wineRun, wineStart, winPath, type WineBuild, type WineProcess } from "./wine-env.ts";

/** Program → Debian package. */
const X_TOOLS: Record<string, string> = { Xvfb: "xvfb", xdotool: "xdotool", xwininfo: "x11-utils", import: "imagemagick" };
const xMissing = Object.keys(X_TOOLS).find((t) => !Bun.which(t));
const missing = wineMissing ?? (xMissing && `${xMissing} (apt-get install ${X_TOOLS[xMissing]})`);
const SHOTS = path.join(repoRoot, "test-output");

if (skipWine || (missing && process.env.OISP_SKIP_WINE === "1")) {
  test.skip(`oisp.exe tray under Wine: SKIPPED (OISP_SKIP_WINE=1), ${missing} is not installed`, () => {});
} else {
  // Its own prefix and wineserver: the other Wine tests end theirs with `wineserver -k`.
  const prefix = path.join(os.tmpdir(), "oisp-wineprefix-tray");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-tray-"));
  const home = path.join(tmp, "home");
  const urls = path.join(tmp, "opened-urls.txt");
  let xvfb: ReturnType<typeof Bun.spawn> | undefined;
  let display = "";
  let w: WineBuild;
  let env: Record<string, string> = {};
  let tray: WineProcess | undefined;

  const x = (args: string[]) => {
    const r = Bun.spawnSync(args, { env: { ...process.env, DISPLAY: display }, stdout: "pipe", stderr: "pipe", timeout: 15_000 });
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  /** Mapped top-level X windows with their position and size. */
  const visibleWindows = () =>
    x(["xdotool", "search", "--onlyvisible", "--name", ""]).out.trim().split("\n").filter(Boolean).map((id) => {
      const info = x(["xwininfo", "-id", id]).out;
      const num = (label: string) => Number(new RegExp(`${label}:\\s+(-?\\d+)`).exec(info)?.[1]);
      return { id, name: x(["xdotool", "getwindowname", id]).out.trim(), x: num("Absolute upper-left X"), y: num("Absolute upper-left Y"), w: num("Width"), h: num("Height") };
    });

  beforeAll(async () => {
    if (missing) throw new Error(`the tray test needs ${missing} (or set OISP_SKIP_WINE=1 to skip it)`);
    // A free display number: the X server's socket is the lock.
    let n = 90;
    while (fs.existsSync(`/tmp/.X11-unix/X${n}`) || fs.existsSync(`/tmp/.X${n}-lock`)) n++;
    display = `:${n}`;
    xvfb = Bun.spawn(["Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"], { stdout: "ignore", stderr: "ignore" });
    fs.mkdirSync(home, { recursive: true });
    // The dashboard on a free port (7777 may be taken on a shared machine).
    // The dashboard and the divert port on free ports (7777 and 8443 may be taken on a shared machine).
    fs.writeFileSync(path.join(home, "settings.json"), JSON.stringify({ WebPort: await freePort(), ProxyPort: await freePort() }));
    fs.mkdirSync(path.join(tmp, "stub"));
    // Wine hands URLs to a Linux browser found on PATH (winebrowser): this one only writes them down.
    const bin = path.join(tmp, "bin");
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, "oisp-test-browser"), `#!/bin/sh\necho "$@" >> ${JSON.stringify(urls)}\n`, { mode: 0o755 });
    w = await wineBuild();
    // The elevated redirector inherits these under Wine: the stand-in WinDivert.dll (+ dummy driver file).
    env = {
      DISPLAY: display,
      WINEPREFIX: prefix,
      PATH: `${bin}:${process.env.PATH}`,
      OISP_WINDIVERT_DIR: winPath(w.windivertDir),
      WINDIVERT_STUB_DIR: winPath(path.join(tmp, "stub")),
      WINDIVERT_STUB_MAX_WAIT_MS: "120000",
    };
    await wineRun("reg", ["add", "HKCU\\Software\\Wine\\WineBrowser", "/v", "Browsers", "/d", "oisp-test-browser", "/f"], env);
    // The prefix outlives runs: start with "Start with Windows" off.
    await wineRun("reg", ["delete", "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run", "/v", "OISP", "/f"], env);
  }, 300_000);

  afterAll(() => {
    tray?.kill();
    // Ends the sensor the tray started and everything else in this prefix.
    Bun.spawnSync(["/usr/lib/wine/wineserver", "-k"], { env: { ...process.env, WINEPREFIX: prefix }, timeout: 10_000 });
    xvfb?.kill();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Right-clicks the icon in Wine's tray window; returns the menu's X window and the items' rectangles. */
  async function openMenu(t: WineProcess) {
    const before = t.output().split("menu shown: ").length;
    const trayWin = visibleWindows().find((v) => v.name === "Wine System Tray");
    expect(trayWin, "Wine's system tray window").toBeDefined();
    expect(x(["xdotool", "mousemove", "--window", trayWin!.id, "10", "10", "click", "3"]).code).toBe(0);
    await t.waitFor(new RegExp(`(?:[^]*?menu shown: ){${before}}(\\[.*\\])`), 15_000);
    const rects = JSON.parse(t.output().split("menu shown: ")[before]!.split("\n")[0]!) as Array<{ id?: number; label: string; x: number; y: number; w: number; h: number }>;
    const menu = visibleWindows().find((v) => v.name !== "Wine System Tray" && v.w < 1024 && v.h > 100);
    expect(menu, "the popup menu's window").toBeDefined();
    return { menu: menu!, rects };
  }

  /** Clicks the item whose label (without access-key &) is `label`, by its place inside the menu window. */
  function clickItem(m: Awaited<ReturnType<typeof openMenu>>, label: string) {
    const top = Math.min(...m.rects.map((r) => r.y));
    const left = Math.min(...m.rects.map((r) => r.x));
    const item = m.rects.find((r) => r.label.replace("&", "") === label);
    expect(item, label).toBeDefined();
    // The items' rectangles are in Windows coordinates; the menu's border (its window minus its items) is 3 px.
    const border = (m.menu.w - item!.w) / 2;
    const cx = m.menu.x + border + (item!.x - left) + Math.floor(item!.w / 2);
    const cy = m.menu.y + border + (item!.y - top) + Math.floor(item!.h / 2);
    expect(x(["xdotool", "mousemove", String(cx), String(cy), "click", "1"]).code).toBe(0);
  }

  test("the real oisp.exe tray: icon in Wine's tray, menu by right-click, Pause, Start with Windows, Open Dashboard, Start/Stop Capture, Quit, double-click", async () => {
    const started = Date.now();
    tray = wineStart(w.oisp, ["--data-dir", winPath(home), "tray", "-v"], env, 180_000);
    const hwnd = (await tray.waitFor(/icon added \(window (0x[0-9a-f]+)\)/, 90_000))[1];
    expect(hwnd).toBeDefined();
    // One tray per user: a second one finds the named mutex held and leaves.
    const second = await wineRun(w.oisp, ["--data-dir", winPath(home), "tray"], env, 60_000);
    expect(second.code).toBe(0);
    expect(second.err).toContain("oisp tray is already running for this user");

    // The icon's window in the X server, as a user would see it (mapped by Wine's explorer.exe).
    const trayWin = await waitForValue("Wine's system tray window", () => visibleWindows().find((v) => v.name === "Wine System Tray" && v.w >= 16));
    expect(trayWin.h).toBeGreaterThanOrEqual(16);

    // Menu: items and their state for "sensor running, not capturing".
    let m = await openMenu(tray);
    expect(m.rects.map((r) => r.label)).toEqual([
      expect.stringMatching(/^OISP: (not capturing|sensor not running) · 0 calls today$/),
      "&Start Capture",
      "S&top Capture",
      "&Pause Recording",
      "Install &CA Certificate",
      "Open &Dashboard",
      "View &Logs",
      "S&ettings…",
      "Start with &Windows",
      "&Quit",
    ]);
    fs.mkdirSync(SHOTS, { recursive: true });
    const shot = path.join(SHOTS, "wine-tray-menu.png");
    expect(x(["import", "-window", "root", shot]).code).toBe(0);
    expect(fs.statSync(shot).size).toBeGreaterThan(1000);
    clickItem(m, "Pause Recording");
    await tray.waitFor(/tray: Pause: Capture paused\./, 20_000);
    expect(JSON.parse(fs.readFileSync(path.join(home, "capture-state.json"), "utf8"))).toMatchObject({ paused: true, by: "tray" });

    // Start with Windows: the per-user Run key, read back with reg.exe.
    m = await openMenu(tray);
    expect(m.rects.map((r) => r.label)).toContain("&Resume Recording");
    clickItem(m, "Start with Windows");
    await tray.waitFor(/Start with Windows on/, 20_000);
    const run = await wineRun("reg", ["query", "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run", "/v", "OISP"], env);
    // Quoted only where a path has spaces (runKeyCommand's quoting is unit-tested).
    expect(run.out).toContain(`REG_SZ    ${winPath(w.oisp)} --data-dir ${winPath(home)} tray --at-logon\r\n`);

    // Open Dashboard: the sensor the tray started serves it; the URL went to the (recording) browser.
    m = await openMenu(tray);
    clickItem(m, "Open Dashboard");
    const opened = await waitForFile(urls, 30_000);
    const url = opened.trim().split("\n").pop()!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("OISP");
    const status = JSON.parse(fs.readFileSync(path.join(home, "run", "status.json"), "utf8"));
    expect(status).toMatchObject({ state: "running", roles: ["sensor"] });
    expect(new URL(status.web.url).href).toBe(url);
    expect(fs.readFileSync(path.join(home, "logs", "tray.log"), "utf8")).toContain("tray: open-dashboard");

    // Start Capture: ShellExecuteExW "runas" starts `oisp redirect --tls-mitm` with --data-dir (Wine grants
    // elevation without a prompt); it runs WinDivert mode on the stand-in DLL and creates the CA, which is
    // not in Wine's trust store: the tray says so in a balloon. Stop Capture: the stop-request file.
    m = await openMenu(tray);
    clickItem(m, "Start Capture");
    await tray.waitFor(/tray: Start Capture: oisp redirect started as administrator/, 30_000);
    const redirectStatus = path.join(home, "run", "redirect-status.json");
    const rd = await waitForValue("the redirector's status file", () => {
      const v = fs.existsSync(redirectStatus) ? JSON.parse(fs.readFileSync(redirectStatus, "utf8")) : undefined;
      return v?.state === "running" ? v : undefined;
    }, 60_000);
    expect(rd).toMatchObject({ roles: ["redirect"], data_dir: winPath(home), proxy: { tls_mitm: true }, capture: { paused: true } });
    await tray.waitFor(/tray: OISP CA not trusted: /, 20_000);
    // Wine draws the balloon as a window under the icon: screenshot it, then click it away (it covers part
    // of the icon). Wine sends no NIN_BALLOONUSERCLICK for that click, so it opens nothing here.
    const others = () => visibleWindows().filter((v) => v.name !== "Wine System Tray" && !(v.x === 0 && v.y === 0 && v.w === 1024));
    const balloon = await waitForValue("the balloon window", () => others()[0], 10_000);
    expect(x(["import", "-window", "root", path.join(SHOTS, "wine-tray-balloon.png")]).code).toBe(0);
    expect(x(["xdotool", "mousemove", String(balloon.x + balloon.w - 20), String(balloon.y + balloon.h - 10), "click", "1"]).code).toBe(0);
    await waitForValue("the balloon to go", () => (others().length ? undefined : true), 10_000);
    m = await openMenu(tray);
    expect(m.rects[0]!.label).toBe("OISP: CA not trusted · paused · 0 calls today");
    clickItem(m, "Stop Capture");
    await tray.waitFor(/tray: Stop Capture: Asked oisp redirect \(pid \d+\) to stop/, 20_000);
    await waitForValue("the redirector to stop", () => (JSON.parse(fs.readFileSync(redirectStatus, "utf8")).state === "stopped" ? true : undefined), 30_000);
    // Asked for, so no "stopped unexpectedly" balloon.
    await Bun.sleep(2500);
    expect(tray.output()).not.toContain("OISP capture stopped");

    // Capture that ends without being asked to (killed here) is a balloon.
    m = await openMenu(tray);
    clickItem(m, "Start Capture");
    const again = await waitForValue("the second redirector", () => {
      const v = JSON.parse(fs.readFileSync(redirectStatus, "utf8"));
      return v.state === "running" && v.pid !== rd.pid ? v : undefined;
    }, 60_000);
    // Once the tray has seen it running (it reads the state every 2 s):
    await tray.waitFor(new RegExp(`tray: capture running \\(pid ${again.pid}\\)`), 15_000);
    const kill = await wineRun("taskkill", ["/F", "/PID", String(again.pid)], env, 30_000);
    expect(kill.code, kill.out + kill.err).toBe(0);
    await tray.waitFor(/tray: OISP capture stopped: Capture stopped unexpectedly/, 30_000);
    await waitForValue("that balloon to show", () => others()[0], 10_000);
    const b2 = others()[0]!;
    x(["xdotool", "mousemove", String(b2.x + b2.w - 20), String(b2.y + b2.h - 10), "click", "1"]);
    await waitForValue("it to go", () => (others().length ? undefined : true), 10_000);

    // View Logs: the newest log file goes to its default program, else the log folder to Explorer (Wine has
    // no program for .log: its file manager opens the folder, a window named after it).
    m = await openMenu(tray);
    clickItem(m, "View Logs");
    const viewer = await waitForValue("a window showing the logs", () => visibleWindows().find((v) => /\.log\b|logs/i.test(v.name)), 30_000);
    console.log(`wine-tray: View Logs opened "${viewer.name}"`);
    x(["xdotool", "windowkill", viewer.id]);
    await waitForValue("the viewer to close", () => (visibleWindows().some((v) => v.id === viewer.id) ? undefined : true), 10_000);

    // Quit: the icon goes, the process exits 0.
    m = await openMenu(tray);
    clickItem(m, "Quit");
    const code = await Promise.race([tray.exited, Bun.sleep(20_000).then(() => "timeout")]);
    expect(code, tray.output()).toBe(0);
    expect(tray.output()).toContain("oisp tray: quit");
    // With its only icon removed (NIM_DELETE), Wine's tray window is unmapped.
    await waitForValue("the tray window to go", () => (visibleWindows().some((v) => v.name === "Wine System Tray") ? undefined : true), 10_000);
    // A double-click on oisp.exe: Explorer starts it through ShellExecuteEx on a console of its own, as
    // `start` does. With no arguments and alone on its console, oisp.exe starts the tray.
    const logFile = path.join(home, "logs", "tray.log");
    const added = () => fs.readFileSync(logFile, "utf8").split("icon added").length;
    const addedBefore = added();
    // Output not piped: the started tray would hold the pipes open.
    const start = Bun.spawn([WINE!, "start", "/unix", w.oisp], { env: { ...process.env, WINEDEBUG: "-all", ...env, OISP_HOME: winPath(home) }, stdio: ["ignore", "ignore", "ignore"] });
    expect(await Promise.race([start.exited, Bun.sleep(30_000).then(() => "timeout")])).toBe(0);
    await waitForValue("the double-clicked oisp.exe's tray", () => (added() > addedBefore ? true : undefined), 60_000);
    await waitForValue("its icon", () => visibleWindows().find((v) => v.name === "Wine System Tray"), 15_000);

    console.log(`wine-tray: ${((Date.now() - started) / 1000).toFixed(1)} s after the build; screenshot ${path.relative(repoRoot, shot)}`);
  }, 300_000);
}

async function waitForValue<T>(what: string, probe: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(200);
  }
}

async function waitForFile(file: string, timeoutMs: number): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (fs.existsSync(file)) {
      const text = fs.readFileSync(file, "utf8");
      if (text.trim()) return text;
    }
    if (Date.now() > end) throw new Error(`nothing written to ${file} within ${timeoutMs} ms`);
    await Bun.sleep(100);
  }
}


