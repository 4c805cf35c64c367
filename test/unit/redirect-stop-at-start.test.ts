// `oisp redirect` must be listening for a stop before it writes its status file: the dashboard offers
// "Stop capture" the moment it reads that file. The request-file listener shows when it starts: it sweeps
// a stale request away first. The watched directory's events come in the order the redirector made them,
// whatever the machine's load, so the order is checked exactly, not raced.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { stopRequestPath } from "../../src/control/stop-request.ts";
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
