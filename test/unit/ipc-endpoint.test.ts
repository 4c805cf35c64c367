import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRunToken, defaultPipePath, readRunToken, resolvePipePath, tokenPath, tokensEqual } from "../../src/ipc/endpoint.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe("pipe paths", () => {
  test("default: a per-user named pipe on Windows, <dataDir>/run/oisp.sock elsewhere", () => {
    expect(defaultPipePath("/home/u/.local/share/oisp", "linux")).toBe("/home/u/.local/share/oisp/run/oisp.sock");
    expect(defaultPipePath("/Users/u/oisp", "darwin")).toBe("/Users/u/oisp/run/oisp.sock");
    expect(defaultPipePath("C:\\Users\\u\\AppData\\Local\\OISP", "win32")).toMatch(/^\\\\\.\\pipe\\oisp-sensor-[A-Za-z0-9._-]+$/);
  });

  test("--pipe: a bare name maps to the pipe namespace or the run dir; a path is used as is", () => {
    expect(resolvePipePath("test1", "/data", "linux")).toBe("/data/run/test1.sock");
    expect(resolvePipePath("x.sock", "/data", "linux")).toBe("/data/run/x.sock");
    expect(resolvePipePath("test1", "C:\\data", "win32")).toBe("\\\\.\\pipe\\test1");
    expect(resolvePipePath("\\\\.\\pipe\\custom", "/data", "linux")).toBe("\\\\.\\pipe\\custom");
    expect(resolvePipePath("/tmp/s.sock", "/data", "linux")).toBe("/tmp/s.sock");
    expect(resolvePipePath("./rel/s.sock", "/data", "linux")).toBe(path.resolve("rel/s.sock"));
  });
});

describe("run token", () => {
  test("written 0600 in a 0700 run dir, read back, fresh on every run", () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-token-"));
    dirs.push(dataDir);
    expect(readRunToken(tokenPath(dataDir))).toBeUndefined();
    const a = createRunToken(dataDir);
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(readRunToken(tokenPath(dataDir))).toBe(a);
    if (process.platform !== "win32") {
      expect(fs.statSync(tokenPath(dataDir)).mode & 0o777).toBe(0o600);
      expect(fs.statSync(path.dirname(tokenPath(dataDir))).mode & 0o777).toBe(0o700);
    }
    const b = createRunToken(dataDir);
    expect(b).not.toBe(a);
    expect(readRunToken(tokenPath(dataDir))).toBe(b);
    expect(fs.readdirSync(path.dirname(tokenPath(dataDir)))).toEqual(["ipc.token"]); // no temp file left
  });

  test("tokensEqual compares whole strings", () => {
    expect(tokensEqual("abc", "abc")).toBe(true);
    expect(tokensEqual("abc", "abd")).toBe(false);
    expect(tokensEqual("abc", "abcd")).toBe(false);
    expect(tokensEqual("", "")).toBe(true);
  });
});
