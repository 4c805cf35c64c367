// bench/after-quiet.ts (issue 17): what the first calls after a quiet period cost. `oisp up` drops compiled
// code when a thread goes quiet (src/util/idle-gc.ts); the next call then runs in code rebuilt from source.
// This tree's `oisp up` and another checkout's run side by side on one upstream, warmed with 1,500 calls;
// then each cycle waits --quiet seconds and makes two calls on new TLS connections to each, in alternating
// order: their wall time and the process's CPU over them (and 1.5 s after, where the Worker's share lands).
//
//   bun bench/after-quiet.ts --baseline DIR [--cycles 5] [--quiet 13]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runScenario, type Target } from "./lib/loadgen.ts";
import { startOispUp, startUpstream, statCpuSec } from "./lib/procs.ts";

const args = process.argv.slice(2);
const str = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
const BASELINE = str("--baseline");
const CYCLES = Number(str("--cycles") ?? 5);
const QUIET = Number(str("--quiet") ?? 13);
if (!BASELINE) throw new Error("usage: bun bench/after-quiet.ts --baseline DIR [--cycles 5] [--quiet 13]");

const cpuMs = (pid: number) => statCpuSec(fs.readFileSync(`/proc/${pid}/stat`, "utf8")) * 1000;
const range = (xs: number[]) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-quiet-"));
const upstream = await startUpstream(dir, { node: true });
const trees: Array<{ label: string; cliDir?: string; first: number[]; second: number[]; cpu: number[]; stop?: () => Promise<void> }> = [
  { label: "this tree", first: [], second: [], cpu: [] },
  { label: `baseline ${BASELINE}`, cliDir: path.resolve(BASELINE), first: [], second: [], cpu: [] },
];
try {
  console.log(`bench/after-quiet.ts: load ${os.loadavg()[0]!.toFixed(1)}; ${CYCLES} cycles of ${QUIET} s quiet, then 2 calls on new connections`);
  const started = [];
  for (const t of trees) {
    const o = await startOispUp(dir, upstream, [], { cliDir: t.cliDir });
    t.stop = o.stop;
    const target: Target = { name: "oisp", upstreamPort: upstream.port, servername: "api.openai.com", ca: o.caPem, proxy: { port: o.port, authority: "api.openai.com:443" } };
    started.push({ t, o, target });
  }
  for (const { target } of started) await runScenario({ target, mode: "keepalive", concurrency: 8, total: 1500 });
  for (let c = 0; c < CYCLES; c++) {
    await Bun.sleep(QUIET * 1000);
    for (const { t, o, target } of c % 2 ? [...started].reverse() : started) {
      const c0 = cpuMs(o.pid);
      let t0 = performance.now();
      await runScenario({ target, mode: "new", concurrency: 1, total: 1 });
      t.first.push(performance.now() - t0);
      t0 = performance.now();
      await runScenario({ target, mode: "new", concurrency: 1, total: 1 });
      t.second.push(performance.now() - t0);
      await Bun.sleep(1500);
      t.cpu.push(cpuMs(o.pid) - c0);
    }
  }
  for (const t of trees) {
    console.log(`${t.label}: first call ${range(t.first)} ms (median ${median(t.first).toFixed(1)}), second ${range(t.second)} ms (median ${median(t.second).toFixed(1)}), process CPU ${range(t.cpu)} ms (median ${median(t.cpu).toFixed(0)})`);
    console.log(`  per cycle: first ${t.first.map((x) => x.toFixed(1)).join(" ")} | second ${t.second.map((x) => x.toFixed(1)).join(" ")} | CPU ${t.cpu.map((x) => x.toFixed(0)).join(" ")}`);
  }
} finally {
  for (const t of trees) await t.stop?.();
  await upstream.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
