// bench/ebpf.ts (issue 14): what eBPF capture costs, beside the proxy and direct, in one run. A Node client
// (OpenSSL: the uprobes see it) calls a local TLS upstream at a fixed rate, keep-alive:
//   direct                  no capture running (the baseline)
//   ebpf                    `oisp up --capture ebpf --pid <this bench>` running (probes in this process tree)
//   proxy                   through `oisp up` (the CONNECT proxy, TLS interception)
// at 10 and 100 calls/s; then 1,000 calls/s through eBPF for ring-buffer drops. Prints per phase: achieved
// rate, latency p50/p99 and what capture adds to the direct p50, CPU of the oisp process (% of one core),
// its RSS; idle CPU of eBPF capture; ring-buffer drops and lost bytes from its status snapshot.
//
//   bun bench/ebpf.ts              # ~2 min (root: eBPF)
//   bun bench/ebpf.ts --seconds 4  # shorter phases
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startOispEbpf } from "../test/support/ebpf-harness.ts";
import { sample, startOispUp, startUpstream } from "./lib/procs.ts";
import { ms, table } from "./lib/report.ts";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const SECONDS = arg("--seconds", 8);
const IDLE_SECONDS = arg("--idle", 10);
const client = path.join(import.meta.dir, "lib", "node-rate-client.cjs");

interface RunResult {
  calls: number;
  seconds: number;
  rate: number;
  p50: number;
  p90: number;
  p99: number;
  late: number;
}

async function drive(opts: { port: number; ca: string; rate: number; seconds: number; conns: number; proxy?: { port: number } }): Promise<RunResult> {
  const proc = Bun.spawn(["node", client, JSON.stringify(opts)], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`client failed: ${err}`);
  return JSON.parse(out.trim().split("\n").pop()!) as RunResult;
}

/** Runs `fn` and returns its result with the CPU `pid` used meanwhile, in % of one core, and its RSS after. */
async function measured<T>(pid: number | undefined, fn: () => Promise<T>): Promise<{ r: T; cpuPct: number; rssMb: number }> {
  const a = pid ? sample(pid) : undefined;
  const t0 = performance.now();
  const r = await fn();
  const wall = (performance.now() - t0) / 1000;
  const b = pid ? sample(pid) : undefined;
  return { r, cpuPct: a && b ? ((b.cpuSec - a.cpuSec) / wall) * 100 : NaN, rssMb: b?.rssMb ?? NaN };
}

function ebpfStatus(home: string): { ring_drops?: number; lost_bytes?: number; records?: number; processes?: { kernel?: Record<string, number> } } {
  try {
    return JSON.parse(fs.readFileSync(path.join(home, "run", "status.json"), "utf8")).ebpf ?? {};
  } catch {
    return {};
  }
}

if (process.getuid?.() !== 0) {
  console.error("bench/ebpf.ts needs root (eBPF)");
  process.exit(2);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-ebpf-"));
const upstream = await startUpstream(dir);
const target = { port: upstream.port, ca: upstream.caPem };
const load = (os.loadavg()[0] ?? 0).toFixed(2);
const nodeVersion = Bun.spawnSync(["node", "--version"]).stdout.toString().trim();
console.log(`bench/ebpf.ts: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), load average ${load} at start (shared machine), node ${nodeVersion} client, ${SECONDS} s per phase`);

const rows: Array<Array<string | number>> = [];
const direct: Record<number, RunResult> = {};
const row = (name: string, rate: number, m: { r: RunResult; cpuPct: number; rssMb: number }, base?: RunResult) =>
  rows.push([name, rate, m.r.rate.toFixed(1), ms(m.r.p50), ms(m.r.p99), base ? `${m.r.p50 - base.p50 >= 0 ? "+" : ""}${ms(m.r.p50 - base.p50)}` : "", Number.isFinite(m.cpuPct) ? m.cpuPct.toFixed(2) : "-", Number.isFinite(m.rssMb) ? m.rssMb.toFixed(0) : "-"]);

try {
  // direct, nothing attached
  await drive({ ...target, rate: 20, seconds: 1, conns: 1 }); // warm the upstream
  for (const rate of [10, 100]) {
    const m = await measured(undefined, () => drive({ ...target, rate, seconds: SECONDS, conns: rate >= 100 ? 4 : 1 }));
    direct[rate] = m.r;
    row("direct", rate, m);
  }

  // eBPF
  const home = fs.mkdtempSync(path.join(dir, "oisp-ebpf-"));
  const ebpf = await startOispEbpf(home, path.join(home, "events.db"), ["--redaction", "safe"]);
  const ebpfPid = ebpf.proc.pid;
  await Bun.sleep(3000); // past start-up work (JIT, first scan)
  const idle = await measured(ebpfPid, () => Bun.sleep(IDLE_SECONDS * 1000));
  const idleRss = idle.rssMb;
  for (const rate of [10, 100]) row("ebpf", rate, await measured(ebpfPid, () => drive({ ...target, rate, seconds: SECONDS, conns: rate >= 100 ? 4 : 1 })), direct[rate]);
  const before = ebpfStatus(home);
  const burst = await measured(ebpfPid, () => drive({ ...target, rate: 1000, seconds: Math.max(3, SECONDS / 2), conns: 16 }));
  row("ebpf", 1000, burst, undefined);
  await Bun.sleep(2500); // the status snapshot is rewritten every 2 s
  const after = ebpfStatus(home);
  const peak = sample(ebpfPid);
  await ebpf.stop();

  // proxy
  const proxy = await startOispUp(dir, upstream, ["--redaction", "safe"]);
  await Bun.sleep(3000);
  for (const rate of [10, 100]) row("proxy", rate, await measured(proxy.pid, () => drive({ ...target, ca: proxy.caPem, rate, seconds: SECONDS, conns: rate >= 100 ? 4 : 1, proxy: { port: proxy.port } })), direct[rate]);
  await proxy.stop();

  console.log(table(["path", "calls/s asked", "calls/s done", "p50 ms", "p99 ms", "added p50 ms", "oisp CPU %", "oisp RSS MB"], rows));
  const drops = (after.ring_drops ?? 0) - (before.ring_drops ?? 0);
  const lost = (after.lost_bytes ?? 0) - (before.lost_bytes ?? 0);
  const kernel = after.processes?.kernel ?? {};
  console.log(`ebpf idle: ${idle.cpuPct.toFixed(2)} % CPU over ${IDLE_SECONDS} s, RSS ${idleRss.toFixed(0)} MB; peak RSS ${peak?.peakRssMb.toFixed(0) ?? "?"} MB`);
  console.log(`ebpf at 1,000 calls/s asked (${burst.r.rate.toFixed(0)} done): TLS ring-buffer drops ${drops}, lost bytes ${lost}; process-source drops ${JSON.stringify(kernel)}`);
  console.log("targets: idle < 0.5 % CPU, 10 calls/s < 2 %, 100 calls/s < 5 %, RSS < 150 MB (CPU in % of one core)");
} finally {
  await upstream.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
