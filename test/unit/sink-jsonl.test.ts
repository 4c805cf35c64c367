import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { JsonlSink } from "../../src/sinks/jsonl.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0).reverse()) {
    if (fs.existsSync(d)) fs.chmodSync(d, 0o700);
    fs.rmSync(d, { recursive: true, force: true });
  }
});
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-jsonl-"));
  dirs.push(d);
  return d;
}
const readLines = (file: string) => fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));

describe("JsonlSink", () => {
  test("one JSON object per line, buffered until flush, file is 0600", () => {
    const file = path.join(tempDir(), "events.jsonl");
    const sink = new JsonlSink(file);
    sink.write({ event_id: "a", n: 1 });
    sink.write({ event_id: "b", text: "line\nbreak ünï" });
    expect(fs.existsSync(file)).toBe(false); // buffered, not yet written
    sink.flush();
    expect(readLines(file)).toEqual([{ event_id: "a", n: 1 }, { event_id: "b", text: "line\nbreak ünï" }]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    sink.close();
    expect(sink.stats()).toMatchObject({ written: 2, dropped: 0, errors: 0 });
  });

  test("appends to an existing file", () => {
    const file = path.join(tempDir(), "events.jsonl");
    fs.writeFileSync(file, '{"old":true}\n');
    const sink = new JsonlSink(file);
    sink.write({ new: true });
    sink.close();
    expect(readLines(file)).toEqual([{ old: true }, { new: true }]);
  });

  test("a large buffer is written without waiting for flush()", () => {
    const file = path.join(tempDir(), "events.jsonl");
    const sink = new JsonlSink(file, { flushBytes: 100 });
    sink.write({ pad: "x".repeat(200) });
    expect(readLines(file)).toHaveLength(1);
    sink.close();
  });

  test("rotates by size: path, path.1 (newest old) … path.keep; no file over the limit; no line lost or split", () => {
    const file = path.join(tempDir(), "events.jsonl");
    const sink = new JsonlSink(file, { maxBytes: 100, keep: 2 });
    // Each line is exactly 30 bytes: three fit in 100.
    const line = (i: number) => ({ i: String(i).padStart(4, "0"), pad: "x".repeat(8) });
    expect(JSON.stringify(line(0)).length + 1).toBe(30);
    for (let i = 0; i < 12; i++) sink.write(line(i));
    sink.close();
    const ids = (f: string) => readLines(f).map((o) => Number(o.i));
    expect(ids(file)).toEqual([9, 10, 11]);
    expect(ids(`${file}.1`)).toEqual([6, 7, 8]);
    expect(ids(`${file}.2`)).toEqual([3, 4, 5]);
    expect(fs.existsSync(`${file}.3`)).toBe(false); // [0,1,2] rotated out (keep: 2)
    for (const f of [file, `${file}.1`, `${file}.2`]) expect(fs.statSync(f).size).toBeLessThanOrEqual(100);
    expect(sink.stats()).toMatchObject({ written: 12, rotations: 3, dropped: 0 });
  });

  test("a line bigger than maxBytes still gets written, alone in its file", () => {
    const file = path.join(tempDir(), "events.jsonl");
    const sink = new JsonlSink(file, { maxBytes: 50 });
    sink.write({ a: 1 });
    sink.write({ big: "y".repeat(100) });
    sink.write({ b: 2 });
    sink.close();
    expect(readLines(`${file}.2`)).toEqual([{ a: 1 }]);
    expect(readLines(`${file}.1`)).toEqual([{ big: "y".repeat(100) }]);
    expect(readLines(file)).toEqual([{ b: 2 }]);
  });

  test("a path in a read-only directory: error counted, reported once, never thrown", () => {
    const dir = tempDir();
    const readonlyDir = path.join(dir, "ro");
    fs.mkdirSync(readonlyDir, { mode: 0o500 });
    dirs.push(readonlyDir);
    // As root, mode bits do not stop writes; a path under a regular file fails for everyone (ENOTDIR).
    const file = process.getuid?.() === 0 ? path.join(dir, "plain-file", "events.jsonl") : path.join(readonlyDir, "events.jsonl");
    if (process.getuid?.() === 0) fs.writeFileSync(path.join(dir, "plain-file"), "");
    const reported: Error[] = [];
    const sink = new JsonlSink(file, { onError: (e) => reported.push(e) });
    expect(() => {
      sink.write({ a: 1 });
      sink.flush();
      sink.write({ b: 2 });
      sink.flush();
      sink.close();
    }).not.toThrow();
    expect(reported).toHaveLength(1);
    expect(reported[0]!.message).toMatch(/EACCES|ENOTDIR/);
    expect(sink.stats()).toMatchObject({ written: 0, dropped: 2, errors: 2 });
  });

  test("an event that cannot be serialised is dropped and reported, the others are written", () => {
    const file = path.join(tempDir(), "events.jsonl");
    const reported: Error[] = [];
    const sink = new JsonlSink(file, { onError: (e) => reported.push(e) });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    sink.write({ ok: 1 });
    sink.write(cyclic);
    sink.write({ ok: 2 });
    sink.close();
    expect(readLines(file)).toEqual([{ ok: 1 }, { ok: 2 }]);
    expect(reported[0]!.message).toMatch(/^jsonl: event not serialisable/);
    expect(sink.stats()).toMatchObject({ written: 2, dropped: 1 });
  });

  test("writes after close are dropped and counted", () => {
    const file = path.join(tempDir(), "events.jsonl");
    const sink = new JsonlSink(file);
    sink.close();
    sink.write({ late: true });
    expect(sink.stats().dropped).toBe(1);
    expect(fs.existsSync(file)).toBe(false);
  });
});
