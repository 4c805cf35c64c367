// ffi/libbpf.ts against the real libbpf and kernel: a small BPF object (test/support/bpf/exec-ping.bpf.c)
// compiled from source, loaded, a tp_btf program attached, its maps written and read, its ring buffer drained.
import { describe, expect, test } from "bun:test";
import path from "node:path";
import { read } from "bun:ffi";
import { compiledFromSource } from "../../ffi/bpf/compile.ts";
import { BpfObject, LibbpfError, RingBuffer, captureLibbpfPrint } from "../../ffi/libbpf.ts";
import { ebpfSkipReason } from "../support/ebpf.ts";

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const u64 = (n: number) => new Uint8Array(new BigUint64Array([BigInt(n)]).buffer);

describe.skipIf(!!ebpfSkipReason)("libbpf through bun:ffi", () => {
  test("open, load, attach, maps and ring buffer", async () => {
    captureLibbpfPrint();
    const obj = BpfObject.open(compiledFromSource(path.join(import.meta.dir, "../support/bpf/exec-ping.bpf.c")), "exec-ping");
    try {
      obj.load();
      const watch = obj.map("watch");
      watch.update(u32(process.pid), u64(0));
      expect(watch.keys(4).map((k) => new DataView(k.buffer).getUint32(0, true))).toEqual([process.pid]);
      const link = obj.attach("on_exec");
      const seen: Array<{ pid: number; ppid: number; comm: string; size: number }> = [];
      // No expect() in here: this runs inside a native callback.
      const rb = new RingBuffer(obj.map("events").fd, (p, size) => {
        const bytes = new Uint8Array(16);
        for (let i = 0; i < 16; i++) bytes[i] = read.u8(p, 8 + i);
        seen.push({ pid: read.u32(p, 0), ppid: read.u32(p, 4), comm: Buffer.from(bytes).toString("latin1").replace(/\0.*$/s, ""), size });
      });
      const kids = [Bun.spawn(["/bin/true"]), Bun.spawn(["/bin/true"])];
      await Promise.all(kids.map((k) => k.exited));
      const deadline = Date.now() + 5000;
      while (seen.length < 2 && Date.now() < deadline) rb.poll(100);
      rb.free();
      expect(seen.map((s) => s.pid).sort()).toEqual(kids.map((k) => k.pid).sort());
      expect(seen.every((s) => s.ppid === process.pid && s.comm === "true" && s.size === 24)).toBe(true);
      const hits = watch.lookup(u32(process.pid), 8)!;
      expect(new DataView(hits.buffer).getBigUint64(0, true)).toBe(2n);
      expect(watch.delete(u32(process.pid))).toBe(true);
      expect(watch.lookup(u32(process.pid), 8)).toBeUndefined();
      expect(watch.delete(u32(process.pid))).toBe(false);
      link.destroy();
    } finally {
      obj.close();
    }
  });

  test("errors name the call and the errno", () => {
    const obj = BpfObject.open(compiledFromSource(path.join(import.meta.dir, "../support/bpf/exec-ping.bpf.c")));
    try {
      expect(() => obj.map("nope")).toThrow(LibbpfError);
      expect(() => obj.attachUprobe("on_exec", { binaryPath: "/nonexistent/libssl.so.3", funcName: "SSL_write", retprobe: false })).toThrow(/uprobe SSL_write in \/nonexistent/);
    } finally {
      obj.close();
    }
  });
});
