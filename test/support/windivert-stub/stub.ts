// Builds the stand-in WinDivert library and drives it: packets for it to "capture" are appended to
// recv-<layer>, packets the program re-injected are read back from sent-<layer>.
import { dlopen } from "bun:ffi";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ADDRESS_SIZE } from "../../../ffi/windivert-address.ts";

const SOURCE = path.join(import.meta.dir, "windivert_stub.c");

/** Compiles the stub (cached by source hash). `dll` needs x86_64-w64-mingw32-gcc. */
export function buildStub(kind: "so" | "dll" = "so"): string {
  const src = fs.readFileSync(SOURCE);
  const hash = createHash("sha256").update(src).digest("hex").slice(0, 12);
  const dir = path.join(os.tmpdir(), `oisp-windivert-stub-${hash}`);
  const out = path.join(dir, kind === "so" ? "libwindivert-stub.so" : "WinDivert.dll");
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(dir, { recursive: true });
  const cc = kind === "so" ? ["gcc", "-shared", "-fPIC"] : ["x86_64-w64-mingw32-gcc", "-shared", "-static-libgcc"];
  const tmp = `${out}.${process.pid}.tmp`;
  const r = Bun.spawnSync([...cc, "-O2", "-Wall", "-Werror", "-o", tmp, SOURCE], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`building the WinDivert stub failed:\n${r.stderr.toString()}`);
  fs.renameSync(tmp, out);
  return out;
}

export interface StubRecord {
  addr: Uint8Array;
  packet: Uint8Array;
}

/**
 * Sets a variable in the C environment of this process: Bun's process.env does not reach getenv(), and
 * the stub library reads its configuration with getenv. Linux only (tests that load the .so in-process).
 */
export function setNativeEnv(name: string, value: string | undefined): void {
  const libc = dlopen("libc.so.6", {
    setenv: { args: ["ptr", "ptr", "i32"], returns: "i32" },
    unsetenv: { args: ["ptr"], returns: "i32" },
  });
  const c = (s: string) => Buffer.from(`${s}\0`);
  if (value === undefined) libc.symbols.unsetenv(c(name));
  else libc.symbols.setenv(c(name), c(value), 1);
  libc.close();
}

export class StubDir {
  readonly dir: string;
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-wd-"));
  }

  /** Points the stub library loaded in this process at this directory. */
  activate(): void {
    setNativeEnv("WINDIVERT_STUB_DIR", this.dir);
  }

  /** Creates recv-<layer> (possibly empty) so the library opens it at WinDivertOpen. */
  prepare(layer: number): void {
    fs.appendFileSync(path.join(this.dir, `recv-${layer}`), new Uint8Array(0));
  }

  capture(layer: number, records: StubRecord[]): void {
    const parts: Uint8Array[] = [];
    for (const r of records) {
      if (r.addr.length !== ADDRESS_SIZE) throw new Error("address must be 80 bytes");
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, r.packet.length, true);
      parts.push(len, r.addr, r.packet);
    }
    fs.appendFileSync(path.join(this.dir, `recv-${layer}`), Buffer.concat(parts));
  }

  sent(layer: number): StubRecord[] {
    const file = path.join(this.dir, `sent-${layer}`);
    if (!fs.existsSync(file)) return [];
    const b = new Uint8Array(fs.readFileSync(file));
    const out: StubRecord[] = [];
    for (let o = 0; o + 4 + ADDRESS_SIZE <= b.length; ) {
      const len = new DataView(b.buffer, b.byteOffset + o).getUint32(0, true);
      out.push({ addr: b.slice(o + 4, o + 4 + ADDRESS_SIZE), packet: b.slice(o + 4 + ADDRESS_SIZE, o + 4 + ADDRESS_SIZE + len) });
      o += 4 + ADDRESS_SIZE + len;
    }
    return out;
  }

  calls(): string[] {
    const file = path.join(this.dir, "calls.log");
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : [];
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
