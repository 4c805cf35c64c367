// Each role must be listening for a stop before it writes its status file: the dashboard offers "Stop
// capture" the moment it reads the redirector's, and `oisp status` and systemd (READY=1) act on the sensor's.
// For `oisp redirect`: The request-file listener shows when it starts: it sweeps
// a stale request away first. The watched directory's events come in the order the redirector made them,
// whatever the machine's load, so the order is checked exactly, not raced.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { stopRequestPath } from "../../src/control/stop-request.ts";
import { settingsPath } from "../../src/config/paths.ts";
import { statusFilePath } from "../../src/sensor/status-file.ts";
import { freePort, runOisp, tempHome, waitFor } from "../support/oisp-process.ts";

const cleanups: Array<() => void> = [];
afterAll(() => cleanups.forEach((f) => f()));

test("the stale stop request is swept before the redirect status file appears, then SIGINT stops it cleanly", async () => {
  const home = tempHome("oisp-stop-order-");
  cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
  const statusFile = statusFilePath(home, "redirect");
  const requestFile = stopRequestPath(home);
  fs.mkdirSync(path.dirname(statusFile), { recursive: true, mode: 0o700 });
  fs.writeFileSync(requestFile, JSON.stringify({ pid: 1 }), { mode: 0o600 }); // left by an earlier run
  const seen: string[] = [];
  const watcher = fs.watch(path.dirname(statusFile), (_event, name) => {
    if (name === path.basename(statusFile) && !seen.includes("status written")) seen.push("status written");
    if (name === path.basename(requestFile) && !seen.includes("request swept")) seen.push("request swept");
  });
  cleanups.push(() => watcher.close());
  const p = runOisp(["redirect", "--mode", "proxy", "--listen", `127.0.0.1:${await freePort()}`], { home });
  cleanups.push(() => p.proc.kill());
  await waitFor("redirect status file and sweep", () => {
    if (p.proc.exitCode !== null) throw new Error(`oisp redirect exited early:\n${p.output()}`);
    return seen.length === 2 ? true : undefined;
  });
  expect(seen).toEqual(["request swept", "status written"]);
  expect(fs.existsSync(requestFile)).toBe(false);
  p.proc.kill("SIGINT");
  expect(await p.proc.exited, p.output()).toBe(0);
  expect(JSON.parse(fs.readFileSync(statusFile, "utf8")).state).toBe("stopped");
}, 20_000);

// The sensor has no file to sweep: the test sends SIGINT as soon as its status file exists (a 1 ms poll).
// With AutoStartCapture the old code awaited module loads between the file and its SIGINT listener, so
// that stop killed it (exit 130) every time; the new one listens before it writes the file.
test("oisp sensor: a SIGINT the moment its status file appears shuts it down cleanly", async () => {
  const home = tempHome("oisp-stop-sensor-");
  cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
  fs.writeFileSync(settingsPath(home), JSON.stringify({ AutoStartCapture: true })); // off Windows: logs only
  const statusFile = statusFilePath(home, "sensor");
  const p = runOisp(["sensor"], { home });
  cleanups.push(() => p.proc.kill());
  while (!fs.existsSync(statusFile)) {
    if (p.proc.exitCode !== null) throw new Error(`oisp sensor exited early:\n${p.output()}`);
    await Bun.sleep(1);
  }
  p.proc.kill("SIGINT");
  expect(await p.proc.exited, p.output()).toBe(0);
  expect(JSON.parse(fs.readFileSync(statusFile, "utf8")).state).toBe("stopped");
}, 20_000);
