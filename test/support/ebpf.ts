// Whether this machine can run the eBPF tests, and why not. Only a kernel without BPF (or not Linux, or not
// root) skips them, with the reason printed; missing build tools (clang, bpftool) fail instead: CI installs
// them (.ci/run).
import fs from "node:fs";

function reason(): string | undefined {
  if (process.platform !== "linux") return "eBPF exists only on Linux";
  if (process.getuid?.() !== 0) return "eBPF tests need root";
  if (!fs.existsSync("/sys/kernel/btf/vmlinux")) return "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
  if (!fs.existsSync("/sys/bus/event_source/devices/uprobe")) return "the kernel has no uprobe PMU";
  return undefined;
}

export const ebpfSkipReason = reason();
if (ebpfSkipReason) console.log(`skipping eBPF tests: ${ebpfSkipReason}`);
