// The role log files: size-bounded rotation, the lines a logger writes, and a file that cannot be written.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { logFilePath, roleLogFile, RotatingLogFile } from "../../src/util/log-file.ts";
import { createLogger } from "../../src/util/log.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-logs-"));
  dirs.push(d);
  return d;
};

test("rotation keeps at most keep+1 files of at most maxBytes each, newest lines last, oldest dropped", () => {
  const dir = tmp();
  const file = path.join(dir, "logs", "sensor.log");
  const log = new RotatingLogFile(file, { maxBytes: 1000, keep: 2 });
  const line = (i: number) => `line ${String(i).padStart(5, "0")} ${"x".repeat(40)}`; // 52 bytes with \n
  for (let i = 0; i < 500; i++) log.write(line(i));
  log.close();
  const names = fs.readdirSync(path.dirname(file)).sort();
  expect(names).toEqual(["sensor.1.log", "sensor.2.log", "sensor.log"]);
  const sizes = names.map((n) => fs.statSync(path.join(dir, "logs", n)).size);
  for (const s of sizes) expect(s).toBeLessThanOrEqual(1000);
  // 500 lines x 52 bytes = 26 KB written; on disk at most 3 KB.
  expect(sizes.reduce((a, b) => a + b)).toBeLessThanOrEqual(3000);
  const current = fs.readFileSync(file, "utf8").trimEnd().split("\n");
  expect(current.at(-1)).toBe(line(499));
  // The files are contiguous: .2 then .1 then the current one, with nothing lost between them.
  const all = ["sensor.2.log", "sensor.1.log", "sensor.log"].flatMap((n) => fs.readFileSync(path.join(dir, "logs", n), "utf8").trimEnd().split("\n"));
  const first = Number(all[0]!.slice(5, 10));
  expect(all).toEqual(Array.from({ length: 500 - first }, (_, k) => line(first + k)));
  expect(first).toBeGreaterThan(400);
  if (process.platform !== "win32") expect(fs.statSync(file).mode & 0o777).toBe(0o600);
});

test("appends across restarts and rotates at the size the earlier run left", () => {
  const dir = tmp();
  const file = path.join(dir, "r.log");
  const a = new RotatingLogFile(file, { maxBytes: 100, keep: 1 });
  a.write("a".repeat(59)); // 60 bytes
  a.close();
  const b = new RotatingLogFile(file, { maxBytes: 100, keep: 1 });
  b.write("b".repeat(59)); // would make 120: rotates first
  b.close();
  expect(fs.readFileSync(file, "utf8")).toBe(`${"b".repeat(59)}\n`);
  expect(fs.readFileSync(path.join(dir, "r.1.log"), "utf8")).toBe(`${"a".repeat(59)}\n`);
});

test("a logger writes time and level to the file and the same line to stderr", () => {
  const dir = tmp();
  const lines: string[] = [];
  const log = createLogger({ verbose: false, file: { write: (l) => lines.push(l) } });
  log("debug", "hidden");
  log("warn", "spool full");
  log("info", "started");
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn  spool full$/);
  expect(lines[1]).toMatch(/Z info  started$/);
  // One writer per file per process, so a config reload does not open it twice.
  expect(roleLogFile(dir, "up")).toBe(roleLogFile(dir, "up"));
  expect(roleLogFile(dir, "up").file).toBe(logFilePath(dir, "up"));
});

test("a file that cannot be written is reported once and counted, never thrown", () => {
  const dir = tmp();
  fs.writeFileSync(path.join(dir, "logs"), "a file where the directory should be");
  const log = new RotatingLogFile(path.join(dir, "logs", "x.log"));
  const orig = process.stderr.write.bind(process.stderr);
  const err: string[] = [];
  process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
  try {
    log.write("one");
    log.write("two");
  } finally {
    process.stderr.write = orig;
  }
  expect(log.lost).toBe(2);
  expect(err).toHaveLength(1);
  expect(err[0]).toContain("cannot write the log file");
});
