// bench/warm-tail-trace.ts (issue 17): what the slow calls on one warm keep-alive connection through
// `oisp up` wait for. Per call: client start/end and, from /proc schedstat, how long each thread ran and
// waited for a core during it (relay, upstream, client, sensor Worker, and oisp's other threads by name:
// JIT, mi-scavenger, JSC's warm-up and GC helpers). Writes OUT/calls and OUT/stderr (oisp's stderr with
// BUN_JSC_logGC=1, each line stamped with wall ms by perl; WTT_ENV adds env, e.g.
// BUN_JSC_reportCompileTimes=1); OISP_TRACE=OUT/trace is set for a traced copy (branch warm-p99-trace).
// Linux only. Prints the p99's calls by cause.
//   bun bench/warm-tail-trace.ts --rounds 8 --calls 1000 --warmup 2000 --out /tmp/wt
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { openConnection, exchange, requestBytes } from "./lib/loadgen.ts";
import { startOispUp, startUpstream } from "./lib/procs.ts";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "8" }, calls: { type: "string", default: "1000" }, out: { type: "string", default: "/tmp/wt" }, tree: { type: "string" }, warmup: { type: "string", default: "2000" } } });
const tree = path.resolve(values.tree ?? path.join(import.meta.dir, ".."));
const out = values.out!;
fs.mkdirSync(out, { recursive: true });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-wtt-"));
const upstream = await startUpstream(dir);
const wrapper = path.join(dir, "oisp.sh");
fs.writeFileSync(wrapper, `#!/bin/bash\nexport OISP_TRACE=${out}/trace BUN_JSC_logGC=1 ${process.env.WTT_ENV ?? ""}\nexec "${process.execPath}" "${path.join(tree, "src/cli.ts")}" "$@" 2> >(perl -MTime::HiRes=time -ne '$|=1; printf "%.3f %s", time()*1000, $_' > ${out}/stderr)\n`, { mode: 0o755 });
process.env.OISP_BIN = wrapper;
const oisp = await startOispUp(dir, upstream);
delete process.env.OISP_BIN;
const target = { name: "oisp", upstreamPort: upstream.port, proxy: { port: oisp.port, authority: "api.openai.com:443" }, servername: "api.openai.com", ca: oisp.caPem };
const req = requestBytes(undefined, false);
const now = () => performance.timeOrigin + performance.now();
const sock = await openConnection(target);
for (let i = 0; i < Number(values.warmup); i++) await exchange(sock, req, 30_000);
// Run-queue wait and CPU time (ns) of each busy thread, read before and after every call (/proc schedstat).
const threads: Record<string, string> = { relay: `/proc/${oisp.pid}/task/${oisp.pid}/schedstat`, upstream: `/proc/${upstream.pid}/task/${upstream.pid}/schedstat`, client: `/proc/self/task/${process.pid}/schedstat` };
for (const tid of fs.readdirSync(`/proc/${oisp.pid}/task`)) {
  const comm = fs.readFileSync(`/proc/${oisp.pid}/task/${tid}/comm`, "utf8").trim();
  if (comm.startsWith("oisp-sensor")) threads.worker = `/proc/${oisp.pid}/task/${tid}/schedstat`;
}
console.log("threads", threads);
// Every other thread of the oisp process, grouped by name: the JIT's compiler threads, mimalloc's
// scavenger, JSC's warm-up and GC helper threads, the rest.
const groupOf = (comm: string) => (comm === "JITWorker" ? "jit" : comm === "mi-scavenger" ? "scavenger" : comm === "JSCWarmUp" ? "jscwarmup" : comm === "HeapHelper" ? "heaphelper" : "oisp");
const groups: Record<string, string[]> = { jit: [], scavenger: [], jscwarmup: [], heaphelper: [], oisp: [] };
for (const t of fs.readdirSync(`/proc/${oisp.pid}/task`)) {
  const f = `/proc/${oisp.pid}/task/${t}/schedstat`;
  if (f !== threads.relay && f !== threads.worker) groups[groupOf(fs.readFileSync(`/proc/${oisp.pid}/task/${t}/comm`, "utf8").trim())]!.push(f);
}
const names = [...Object.keys(threads), ...Object.keys(groups)];
const read = (f: string) => { try { return fs.readFileSync(f, "utf8").split(" ").slice(0, 2).map(Number); } catch { return [0, 0]; } };
const sum = (fs_: string[]) => fs_.map(read).reduce((a, b) => [a[0]! + b[0]!, a[1]! + b[1]!], [0, 0]);
const sched = () => [...Object.keys(threads).map((n) => read(threads[n]!)), ...Object.values(groups).map(sum)];
// Machine-wide busy time per round (/proc/stat, jiffies), to set beside what the four threads used.
const busyJiffies = () => { const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.split(/\s+/).slice(1).map(Number); return f.reduce((a, b) => a + b, 0) - f[3]! - f[4]!; };
const perTask = () => new Map(fs.readdirSync(`/proc/${oisp.pid}/task`).map((t) => [`${t} ${fs.readFileSync(`/proc/${oisp.pid}/task/${t}/comm`, "utf8").trim()}`, read(`/proc/${oisp.pid}/task/${t}/schedstat`)[0]!]));
const tasks0 = perTask();
const lines: string[] = [`# round t0 t1 ${names.map((n) => `${n}.run ${n}.wait`).join(" ")}`];
for (let r = 0; r < Number(values.rounds); r++) {
  const lat: number[] = [];
  const b0 = busyJiffies(), w0 = performance.now(), o0 = sched();
  for (let i = 0; i < Number(values.calls); i++) {
    const s0 = sched();
    const t0 = now();
    await exchange(sock, req, 30_000);
    const t1 = now();
    const s1 = sched();
    lines.push(`${r} ${t0.toFixed(3)} ${t1.toFixed(3)} ${s1.map((x, k) => `${((x[0]! - s0[k]![0]!) / 1e6).toFixed(3)} ${((x[1]! - s0[k]![1]!) / 1e6).toFixed(3)}`).join(" ")}`);
    lat.push(t1 - t0);
  }
  const b1 = busyJiffies(), w1 = performance.now(), o1 = sched();
  const oursMs = o1.reduce((a, x, k) => a + (x[0]! - o0[k]![0]!) / 1e6, 0);
  console.log(`round ${r}: machine busy ${(((b1 - b0) * 10) / (w1 - w0)).toFixed(2)} cores, of which client+upstream+oisp ${(oursMs / (w1 - w0)).toFixed(2)}`);
  lat.sort((a, b) => a - b);
  console.log(`round ${r}: p50 ${lat[lat.length >> 1]!.toFixed(3)} p99 ${lat[Math.floor(lat.length * 0.99)]!.toFixed(3)} ms`);
  await Bun.sleep(300);
}
for (const [k, v] of perTask()) console.log(`thread ${k}: ${((v - (tasks0.get(k) ?? 0)) / 1e6).toFixed(1)} ms CPU over the rounds`);
fs.writeFileSync(`${out}/calls`, lines.join("\n") + "\n");
classify(lines);
sock.destroy();
await oisp.stop();
await upstream.stop();
console.log(`written ${out}/calls and ${out}/stderr`);

/**
 * The 1 % slowest calls of each round (the p99's calls), each put down to what held a core while the call's
 * threads (relay, upstream, client) waited for one: "excess" is the call's time over its round's p50.
 */
function classify(lines: string[]): void {
  const cols = lines[0]!.split(" ").slice(4);
  const rows = lines.slice(1).map((l) => l.split(" ").map(Number));
  const side: Record<string, string> = { "worker.run": "sensor Worker", "jit.run": "JIT threads", "scavenger.run": "mi-scavenger", "jscwarmup.run": "JSCWarmUp", "heaphelper.run": "GC HeapHelper" };
  const counts = new Map<string, number>();
  for (const r of new Set(rows.map((x) => x[0]!))) {
    const xs = rows.filter((x) => x[0] === r);
    const lat = xs.map((x) => x[2]! - x[1]!).sort((a, b) => a - b);
    const p50 = lat[lat.length >> 1]!;
    for (const x of xs.sort((a, b) => b[2]! - b[1]! - (a[2]! - a[1]!)).slice(0, Math.max(1, Math.floor(xs.length / 100)))) {
      const v = Object.fromEntries(cols.map((c, i) => [c, x[3 + i]!]));
      const excess = x[2]! - x[1]! - p50;
      const waited = v["relay.wait"]! + v["upstream.wait"]! + v["client.wait"]!;
      const top = Object.keys(side).sort((a, b) => v[b]! - v[a]!)[0]!;
      const sideRun = Object.keys(side).reduce((a, k) => a + v[k]!, v["oisp.run"]!);
      const c =
        waited < excess / 2 ? "call's threads did not wait for a core"
        : v[top]! >= excess / 2 ? `waited; ${side[top]} ran >= half the excess`
        : sideRun >= excess / 2 ? "waited; oisp's other threads together ran >= half the excess"
        : "waited; the core was held outside oisp, upstream and client";
      counts.set(c, (counts.get(c) ?? 0) + 1);
    }
  }
  console.log("the p99's calls (1 % slowest per round) by what held a core:");
  for (const [c, n] of [...counts].sort((a, b) => b[1] - a[1])) console.log(`  ${n} ${c}`);
}
