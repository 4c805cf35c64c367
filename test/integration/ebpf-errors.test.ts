// `oisp up --capture ebpf` where eBPF capture cannot run: one line naming what is missing and the fix, a
// non-zero exit, nothing started. Each case hides one thing from oisp alone: capabilities dropped with
// setpriv, files covered inside a private mount namespace (unshare -m).
import { expect, test } from "bun:test";
import fs from "node:fs";
import { ebpfSkipReason } from "../support/ebpf.ts";
import { oispCommand, tempHome } from "../support/oisp-process.ts";

async function upEbpf(wrap: string[]): Promise<{ code: number; err: string }> {
  const home = tempHome("oisp-ebpf-err-");
  const proc = Bun.spawn([...wrap, ...oispCommand(), "up", "--capture", "ebpf", "--db", `${home}/events.db`], { env: { ...process.env, OISP_HOME: home }, stdout: "pipe", stderr: "pipe" });
  const [, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, err: err.trim() };
}

/** Runs oisp in a private mount namespace after `mount` commands (sh -c). */
const hidden = (mounts: string) => ["unshare", "-m", "--propagation", "private", "sh", "-c", `${mounts} && exec "$@"`, "sh"];

const libbpfFile = fs.realpathSync("/usr/lib/x86_64-linux-gnu/libbpf.so.1");

test.skipIf(!!ebpfSkipReason).each([
  ["without root or CAP_BPF", ["setpriv", "--bounding-set", "-all", "--inh-caps", "-all"], /eBPF capture needs root \(or CAP_BPF \+ CAP_PERFMON\): run it with sudo/],
  ["without BTF", hidden("mount --bind /dev/null /sys/kernel/btf/vmlinux"), /this kernel has no BTF .*CONFIG_DEBUG_INFO_BTF=y.*use --capture proxy/],
  ["without uprobes", hidden("mount -t tmpfs none /sys/bus/event_source/devices"), /this kernel has no uprobes .*use --capture proxy/],
  ["without libbpf (from source: nothing embedded)", hidden(`mount --bind /dev/null ${libbpfFile}`), /^oisp: libbpf 1\.x \(libbpf\.so\.1\) not found( \([^)]*\))?: install it \(Debian\/Ubuntu 24\.04\+: apt-get install libbpf1; .*\) or set OISP_LIBBPF=/],
] as const)("%s: one line with the fix", async (_name, wrap, message) => {
  const { code, err } = await upEbpf([...wrap]);
  expect(code).not.toBe(0);
  const lines = err.split("\n").filter((l) => !/^\d{4}-/.test(l)); // log-file echo lines aside
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(message);
});
