// Why eBPF capture cannot run here, as one line with the fix, checked before anything is loaded.
import fs from "node:fs";

export class EbpfUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EbpfUnavailableError";
  }
}

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

function effectiveCaps(): bigint {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync("/proc/self/status", "utf8"));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Throws EbpfUnavailableError naming what is missing. */
export function ebpfPreflight(): void {
  if (process.platform !== "linux") throw new EbpfUnavailableError("--capture ebpf works only on Linux; use --capture proxy here");
  const caps = effectiveCaps();
  const has = (c: bigint) => (caps >> c) & 1n;
  if (!has(CAP_SYS_ADMIN) && !(has(CAP_BPF) && has(CAP_PERFMON))) {
    throw new EbpfUnavailableError("eBPF capture needs root (or CAP_BPF + CAP_PERFMON): run it with sudo");
  }
  if (!isFile("/sys/kernel/btf/vmlinux")) {
    throw new EbpfUnavailableError("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): eBPF capture needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.8+); use --capture proxy");
  }
  if (!fs.existsSync("/sys/bus/event_source/devices/uprobe")) {
    throw new EbpfUnavailableError("this kernel has no uprobes (CONFIG_UPROBE_EVENTS): eBPF capture cannot read TLS plaintext here; use --capture proxy");
  }
}
