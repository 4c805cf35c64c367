// Which files get TLS probes at start: the system's libssl, and the host's seen through PID 1's root (a
// container sharing the host's PID namespace has no host libssl in its own root).
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { TargetFinder } from "../../src/capture/ebpf/targets.ts";

const LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
const fakeProc = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-targets-"));
afterAll(() => fs.rmSync(fakeProc, { recursive: true, force: true }));

test("a libssl at a system path under PID 1's root is a start-up target, shown by its path in that root", () => {
  expect(fs.existsSync(LIBSSL)).toBe(true); // Debian's libssl3: the machine this runs on has it
  const hostCopy = path.join(fakeProc, "1", "root", LIBSSL);
  fs.mkdirSync(path.dirname(hostCopy), { recursive: true });
  fs.copyFileSync(LIBSSL, hostCopy); // another inode: "the host's" library
  const targets = new TargetFinder(fakeProc).systemTargets();
  const host = targets.find((t) => t.path === hostCopy);
  expect(host).toMatchObject({ kind: "library", shownPath: LIBSSL });
  expect(host!.symbols).toEqual(expect.arrayContaining(["SSL_write", "SSL_read"]));
  // ours is a target too, and the same file is never listed twice
  expect(targets.filter((t) => t.path === LIBSSL)).toHaveLength(1);
  expect(new Set(targets.map((t) => t.fileId)).size).toBe(targets.length);
});
