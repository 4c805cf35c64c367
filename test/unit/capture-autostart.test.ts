// settings.json's AutoStartCapture: `oisp sensor` starts the elevated `oisp redirect` (--tls-mitm and the data
// directory on its command line, as the dashboard's Start capture does), and those arguments really start a
// redirector in that directory. UAC itself is Windows-only: the launcher is the one part replaced here,
// recording what it was asked to run.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { autoStartCapture } from "../../src/commands/auto-start.ts";
import { settingsPath } from "../../src/config/paths.ts";
import { statusFilePath } from "../../src/sensor/status-file.ts";
import { elevatedRedirectArgs, type ElevatedLauncher } from "../../src/control/capture.ts";
import { runOisp, tempHome, waitFor } from "../support/oisp-process.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function home(settings?: object): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp autostart "));
  dirs.push(dir);
  if (settings) fs.writeFileSync(settingsPath(dir), JSON.stringify(settings));
  return dir;
}
const logs: string[] = [];
const log = (_level: string, msg: string) => void logs.push(msg);

function windowsLauncher() {
  const commands: string[][] = [];
  const launch: ElevatedLauncher = async (exe, args) => (commands.push([exe, ...args]), { ok: true, message: "UAC accepted" });
  return { launch, commands };
}

test("AutoStartCapture true: oisp sensor starts the elevated redirector with --tls-mitm and the data dir", async () => {
  const dir = home({ AutoStartCapture: true, ProcessFilter: "" });
  const { launch, commands } = windowsLauncher();
  expect(await autoStartCapture(dir, launch, log, "win32")).toBe("started");
  expect(commands).toHaveLength(1);
  expect(commands[0]!.slice(-4)).toEqual(["--data-dir", dir, "redirect", "--tls-mitm"]);
});

test("AutoStartCapture false or absent: nothing is started", async () => {
  for (const settings of [{ AutoStartCapture: false }, undefined]) {
    const dir = home(settings);
    const { launch, commands } = windowsLauncher();
    expect(await autoStartCapture(dir, launch, log, "win32")).toBe("off");
    expect(commands).toEqual([]);
  }
});

test("AutoStartCapture outside Windows says how to capture instead of failing silently", async () => {
  const dir = home({ AutoStartCapture: true });
  logs.length = 0;
  expect(await autoStartCapture(dir, windowsLauncher().launch, log, "linux")).toBe("failed");
  expect(logs.join("\n")).toContain("AutoStartCapture: On this OS capture runs in proxy mode: start `oisp up`");
});

test("the elevated arguments start a redirector that uses the given data dir, whatever OISP_HOME says", async () => {
  const dir = home();
  // Proxy mode on a free port stands in for WinDivert here; --data-dir, redirect and --tls-mitm are the real arguments.
  const p = runOisp([...elevatedRedirectArgs(dir), "--mode", "proxy", "--listen", "127.0.0.1:0"], { home: tempHome("oisp-wrong-home-") });
  try {
    await waitFor("the redirector's status file in --data-dir", () => (fs.existsSync(statusFilePath(dir, "redirect")) ? true : undefined));
    expect(fs.existsSync(path.join(dir, "ca"))).toBe(true); // the CA for --tls-mitm was made there too
  } finally {
    await p.stop();
  }
});
