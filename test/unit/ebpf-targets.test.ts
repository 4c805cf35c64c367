// Which files get TLS probes before any process maps them: the system's libssl in our root, and in the root
// of every mount namespace a process shows (a container sharing the host's PID namespace has no host libssl
// in its own root, and PID 1's root may be closed to it).
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { TargetFinder } from "../../src/capture/ebpf/targets.ts";

const LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
const fakeProc = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-targets-"));
afterAll(() => fs.rmSync(fakeProc, { recursive: true, force: true }));

/** A process in the fake /proc: no mappings, its mount namespace, and a root holding a copy of libssl. */
function fakeProcess(pid: number, ns: string): string {
  const dir = path.join(fakeProc, String(pid));
  fs.mkdirSync(path.join(dir, "ns"), { recursive: true });
  fs.writeFileSync(path.join(dir, "maps"), "");
  fs.symlinkSync(`mnt:[${ns}]`, path.join(dir, "ns", "mnt"));
  const copy = path.join(dir, "root", LIBSSL);
  fs.mkdirSync(path.dirname(copy), { recursive: true });
  fs.copyFileSync(LIBSSL, copy); // another inode: "the host's" library
  return copy;
}

test("a libssl at a system path in another mount namespace's root is a target before any process maps it", () => {
  expect(fs.existsSync(LIBSSL)).toBe(true); // Debian's libssl3: the machine this runs on has it
  const hostCopy = fakeProcess(4242, "4026531840");
  const finder = new TargetFinder(fakeProc);
  const targets = finder.scan();
  const host = targets.find((t) => t.path === hostCopy);
  expect(host).toMatchObject({ kind: "library", shownPath: LIBSSL, pid: 4242 });
  expect(host!.symbols).toEqual(expect.arrayContaining(["SSL_write", "SSL_read"]));
  // a second process of that namespace adds nothing; one in a new namespace brings its own copy
  fakeProcess(4243, "4026531840");
  expect(finder.scan([4243])).toEqual([]);
  const other = fakeProcess(4244, "4026531999");
  expect(finder.scan([4244]).map((t) => t.path)).toEqual([other]);
  // our own root's copy is a start-up target, listed once
  const own = finder.systemTargets();
  expect(own.filter((t) => t.path === LIBSSL)).toHaveLength(1);
  expect(new Set(own.map((t) => t.fileId)).size).toBe(own.length);
});

test("a target forgotten after a failed attachment is offered again at its next sighting", () => {
  const finder = new TargetFinder(fakeProc);
  const [first] = finder.scan([4242]);
  expect(first).toBeDefined();
  // The same file (a hard link) mapped by a process of that namespace: remembered, not offered twice.
  const dir = path.join(fakeProc, "4245");
  fs.mkdirSync(path.join(dir, "ns"), { recursive: true });
  fs.symlinkSync("mnt:[4026531840]", path.join(dir, "ns", "mnt"));
  fs.writeFileSync(path.join(dir, "maps"), `7f0000000000-7f0000001000 r-xp 00000000 fd:00 1 ${LIBSSL}\n`);
  fs.mkdirSync(path.dirname(path.join(dir, "root", LIBSSL)), { recursive: true });
  fs.linkSync(first!.path, path.join(dir, "root", LIBSSL));
  expect(finder.scan([4245])).toEqual([]);
  finder.forget(first!);
  expect(finder.scan([4245]).map((t) => t.fileId)).toEqual([first!.fileId]);
});
