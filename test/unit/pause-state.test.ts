// The capture-state file behind pause/resume: what a missing, valid and malformed file mean to the
// watcher the capture processes run.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pauseStatePath, readPauseState, watchPauseState, writePauseState, type PauseState } from "../../src/config/pause.ts";
import type { LogLevel } from "../../src/util/log.ts";
import { captureProcesses, setCapturePaused } from "../../src/control/pause.ts";
import { statusFilePath, writeJsonAtomic } from "../../src/sensor/status-file.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-pause-"));
  dirs.push(d);
  return d;
};

async function until(what: string, ok: () => boolean) {
  const end = Date.now() + 3000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await Bun.sleep(10);
  }
}

test("no file: capturing; written state is read back owner-only", () => {
  const dir = tmp();
  expect(readPauseState(dir)).toEqual({ paused: false });
  writePauseState(dir, { paused: true, since: "2026-12-04T21:00:00.000Z", by: "tray" });
  expect(readPauseState(dir)).toEqual({ paused: true, since: "2026-12-04T21:00:00.000Z", by: "tray" });
  if (process.platform !== "win32") expect(fs.statSync(pauseStatePath(dir)).mode & 0o777).toBe(0o600);
  fs.writeFileSync(pauseStatePath(dir), '{"paused":"yes"}');
  expect(() => readPauseState(dir)).toThrow('expected {"paused": true|false}');
});

test("the watcher starts from the file, reports flips once, and keeps its state over a malformed file", async () => {
  const dir = tmp();
  writePauseState(dir, { paused: true, by: "cli" });
  const logs: Array<[LogLevel, string]> = [];
  const changes: PauseState[] = [];
  const w = watchPauseState(dir, { log: (l, m) => logs.push([l, m]), intervalMs: 20, onChange: (s) => changes.push(s) });
  try {
    // Read synchronously at start: a restarted capture process is paused before its first connection.
    // Starting paused is reported (and logged) like a flip: the log says why nothing is recorded.
    expect(w.paused()).toBe(true);
    expect(changes).toEqual([{ paused: true, by: "cli" }]);
    expect(logs).toEqual([["info", "capture paused (cli): connections are relayed, nothing is recorded"]]);
    writePauseState(dir, { paused: false, by: "dashboard" });
    await until("resume seen", () => !w.paused());
    expect(changes.at(-1)).toEqual({ paused: false, by: "dashboard" });
    fs.writeFileSync(pauseStatePath(dir), "{not json");
    await until("warning", () => logs.some(([l]) => l === "warn"));
    expect(w.paused()).toBe(false);
    fs.writeFileSync(pauseStatePath(dir), '{"paused": true}');
    await until("pause seen", () => w.paused());
    expect(changes.map((c) => c.paused)).toEqual([true, false, true]);
    expect(logs.filter(([l]) => l === "warn")).toHaveLength(1);
  } finally {
    w.stop();
  }
});

test("capture processes: a redirector, and `oisp up` with the proxy or eBPF inside; a plain sensor is none", async () => {
  const dir = tmp();
  const at = new Date().toISOString();
  const snap = (roles: string[], paused?: boolean) => ({
    format: 1, state: "running", pid: process.pid, roles, version: "t", data_dir: dir, started_at: at, updated_at: at,
    ...(paused !== undefined && { capture: { paused } }),
  });
  writeJsonAtomic(statusFilePath(dir, "sensor"), snap(["sensor"]));
  expect(captureProcesses(dir)).toEqual([]);
  // Nobody to confirm: the state is written and the next capture process starts with it.
  expect((await setCapturePaused(dir, true, "cli", { confirmMs: 0 })).message).toBe("Capture paused. No capture process is running; the next one starts paused.");
  writeJsonAtomic(statusFilePath(dir, "sensor"), snap(["sensor", "ebpf"], false));
  expect(captureProcesses(dir)).toEqual([{ pid: process.pid, role: "oisp up", paused: false }]);
  // A process that never reports the new state is named, not waited on forever.
  const r = await setCapturePaused(dir, true, "cli", { confirmMs: 150 });
  expect(r).toEqual({ ok: false, message: `Capture paused in the state file, but oisp up pid ${process.pid} has not confirmed it yet (an older oisp version?).` });
  writeJsonAtomic(statusFilePath(dir, "redirect"), snap(["redirect", "ebpf"], true));
  writeJsonAtomic(statusFilePath(dir, "sensor"), snap(["sensor", "proxy"], true));
  expect(captureProcesses(dir).map((p) => p.role)).toEqual(["oisp redirect", "oisp up"]);
  expect((await setCapturePaused(dir, true, "cli", { confirmMs: 150 })).ok).toBe(true);
});
