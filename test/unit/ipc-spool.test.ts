import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ulid } from "ulidx";
import { encodeFrame, FrameDecoder, type IpcFrame } from "../../src/ipc/frames.ts";
import { Spool } from "../../src/ipc/spool.ts";

const dirs: string[] = [];
const spools: Spool[] = [];
afterEach(() => {
  for (const s of spools.splice(0)) s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-spool-"));
  dirs.push(d);
  return d;
}
function spool(dir: string, maxBytes = 1 << 20, losses: string[] = []): Spool {
  const s = new Spool({ dir, runId: ulid(), maxBytes, onLoss: (m) => losses.push(m) });
  spools.push(s);
  return s;
}
const frame = (connId: string, ts = 0) => encodeFrame({ t: "close", connId, ts });
function drain(s: Spool): string[] {
  const out: string[] = [];
  for (let f = s.readNext(); f; f = s.readNext()) {
    const decoded = new FrameDecoder().push(f).frames[0] as Extract<IpcFrame, { t: "close" }>;
    out.push(decoded.connId);
  }
  return out;
}

describe("spool", () => {
  test("frames come back in append order; prepended frames come first; files removed once read", () => {
    const dir = tempDir();
    const s = spool(dir);
    expect(s.isEmpty).toBe(true);
    for (const id of ["c", "d"]) expect(s.append(frame(id))).toEqual({ ok: true });
    expect(s.prepend([frame("a"), frame("b")])).toEqual({ written: 2 });
    expect(s.append(frame("e"))).toEqual({ ok: true });
    expect(s.pendingBytes).toBe(5 * frame("a").length);
    expect(drain(s)).toEqual(["a", "b", "c", "d", "e"]);
    expect(s.isEmpty).toBe(true);
    expect(s.pendingBytes).toBe(0);
    expect(fs.readdirSync(dir)).toEqual([]);
    // Usable again after being emptied.
    s.append(frame("f"));
    expect(drain(s)).toEqual(["f"]);
  });

  test("the byte limit is enforced: over it → full, nothing written", () => {
    const one = frame("a").length;
    const s = spool(tempDir(), one * 2);
    expect(s.append(frame("a")).ok).toBe(true);
    expect(s.append(frame("b")).ok).toBe(true);
    expect(s.append(frame("c"))).toEqual({ ok: false, reason: "full" });
    expect(s.prepend([frame("z")])).toEqual({ written: 0, error: "spool full" });
    expect(drain(s)).toEqual(["a", "b"]);
  });

  test("segments of a live client in this process are not adopted; a closed one's are, in order", () => {
    const dir = tempDir();
    const first = spool(dir);
    first.append(frame("old1"));
    first.append(frame("old2"));
    const second = spool(dir);
    expect(second.adoptOrphans()).toBe(0); // first is still open
    first.close();
    const third = spool(dir);
    third.append(frame("new"));
    expect(third.adoptOrphans()).toBe(frame("old1").length + frame("old2").length);
    expect(drain(second)).toEqual([]);
    // Adopted frames predate this run: they go before its own, even ones appended earlier.
    expect(drain(third)).toEqual(["old1", "old2", "new"]);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  test("garbage in an adopted segment: good frames before it replayed, the rest reported lost", () => {
    const dir = tempDir();
    const losses: string[] = [];
    const dead = spool(dir);
    dead.append(frame("g1"));
    dead.close();
    const [name] = fs.readdirSync(dir);
    fs.appendFileSync(path.join(dir, name!), "garbage that is not a frame");
    const s = spool(dir, 1 << 20, losses);
    s.adoptOrphans();
    expect(drain(s)).toEqual(["g1"]);
    expect(losses).toHaveLength(1);
    expect(losses[0]).toMatch(/bad magic byte 0x67 .* 27 bytes not replayed$/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
