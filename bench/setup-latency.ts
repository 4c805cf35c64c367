// bench/setup-latency.ts (issue 17): what `oisp up` adds to a call on a NEW TLS connection (CONNECT, both
// TLS handshakes, the request) and on one warm keep-alive connection, for one or more source trees side by
// side. Every round runs direct and then each tree, in a rotating order, so the trees share the machine's
// load; "added" is a tree's figure minus direct's in the same round. CPU per call is read from /proc: the
// relay's thread (the process's main thread: both TLS legs, peek, tap) and the whole process (plus the
// sensor Worker, the process lookup, JIT). On a shared machine the relay thread's CPU is the steadiest figure.
//
//   bun bench/setup-latency.ts                                     # this checkout
//   bun bench/setup-latency.ts --tree /tmp/snap-old --tree .       # old vs new, alternating
//   bun bench/setup-latency.ts --rounds 5 --calls 300 --only new1,warm
//   bun bench/setup-latency.ts --only warm --warm-calls 20000   # the warm tail once the JIT has settled
//
// A tree is a checkout (or `git archive REV | tar -x -C DIR` with node_modules linked) run as
// `bun TREE/src/cli.ts up ...`.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { runScenario, percentile, type ScenarioOptions, type Target } from "./lib/loadgen.ts";
import { sample, startOispUp, startUpstream, threadCpuSec, type OispUnderTest } from "./lib/procs.ts";
import { ms, table } from "./lib/report.ts";

const { values } = parseArgs({
  options: {
    tree: { type: "string", multiple: true },
    rounds: { type: "string", default: "3" },
    calls: { type: "string", default: "200" },
    only: { type: "string" },
    // Keep-alive calls per path before the rounds. The default leaves the JIT compiling the sensor Worker's
    // code through the warm rounds (bench/README.md, "The warm tail's slow calls"); 20000 lets it settle.
    "warm-calls": { type: "string", default: "200" },
  },
});
const trees = (values.tree?.length ? values.tree : [path.resolve(import.meta.dir, "..")]).map((t) => path.resolve(t));
const rounds = Number(values.rounds);
const calls = Number(values.calls);

const scenarios: Array<{ id: string; name: string; opts: Omit<ScenarioOptions, "target"> }> = [
  { id: "new1", name: "new connection per call, 1 at a time", opts: { mode: "new", concurrency: 1, total: calls } },
  { id: "new8", name: "new connection per call, 8 at once", opts: { mode: "new", concurrency: 8, total: calls * 2 } },
  { id: "warm", name: "1 warm keep-alive connection", opts: { mode: "keepalive", concurrency: 1, total: calls * 5 } },
];
const only = values.only?.split(",");
const chosen = scenarios.filter((s) => !only || only.includes(s.id));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-setup-"));
const upstream = await startUpstream(dir);
const proxies: Array<{ label: string; oisp: OispUnderTest; target: Target }> = [];
const direct: Target = { name: "direct", upstreamPort: upstream.port, servername: "api.openai.com", ca: upstream.caPem };

interface Figures {
  p50: number;
  p99: number;
  cpuMsPerCall?: number;
  relayCpuMsPerCall?: number;
}

/** CPU seconds of the whole process and of its main thread (tid = pid). */
function cpuOf(pid: number): { all: number; main: number } {
  return { all: sample(pid)?.cpuSec ?? NaN, main: threadCpuSec(pid, pid) };
}
const results = new Map<string, Figures[]>(); // `${scenario}\n${label}` → one entry per round

try {
  for (const [i, tree] of trees.entries()) {
    // runOisp reads OISP_BIN when it starts the process: a wrapper per tree.
    const wrapper = path.join(dir, `oisp-${i}.sh`);
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${path.join(tree, "src/cli.ts")}" "$@"\n`, { mode: 0o755 });
    process.env.OISP_BIN = wrapper;
    const oisp = await startOispUp(dir, upstream);
    const label = `${i}:${path.basename(tree)}`;
    proxies.push({ label, oisp, target: { name: label, upstreamPort: upstream.port, proxy: { port: oisp.port, authority: "api.openai.com:443" }, servername: "api.openai.com", ca: oisp.caPem } });
  }
  delete process.env.OISP_BIN;
  console.log(`bench/setup-latency.ts: ${os.cpus().length} CPUs, bun ${Bun.version}, ${rounds} rounds, trees: ${proxies.map((p) => `${p.label} = ${trees[proxies.indexOf(p)]}`).join(", ")}`);
  // Warm up every path (JIT, leaf certificate, what each tree learns about the upstream).
  for (const t of [direct, ...proxies.map((p) => p.target)]) {
    await runScenario({ target: t, mode: "new", concurrency: 2, total: 40 });
    await runScenario({ target: t, mode: "keepalive", concurrency: 2, total: Number(values["warm-calls"]) });
  }
  for (let r = 0; r < rounds; r++) {
    // Rotate the order of the trees each round; direct always runs right before them.
    const order = proxies.map((_, i) => proxies[(i + r) % proxies.length]!);
    for (const s of chosen) {
      const d = await runScenario({ ...s.opts, target: direct });
      push(s.id, "direct", { p50: percentile(d.latenciesMs, 50), p99: percentile(d.latenciesMs, 99) });
      for (const p of order) {
        const before = cpuOf(p.oisp.pid);
        const res = await runScenario({ ...s.opts, target: p.target });
        const after = cpuOf(p.oisp.pid);
        const errs = Object.entries(res.errors);
        if (errs.length) console.log(`  round ${r + 1} ${s.id} ${p.label}: errors ${errs.map(([k, v]) => `${k} ×${v}`).join(", ")}`);
        const perCall = (sec: number) => (sec * 1000) / Math.max(1, res.ok);
        push(s.id, p.label, { p50: percentile(res.latenciesMs, 50), p99: percentile(res.latenciesMs, 99), cpuMsPerCall: perCall(after.all - before.all), relayCpuMsPerCall: perCall(after.main - before.main) });
      }
    }
    // Per round, so trees can be compared within a round (the load moves between rounds).
    const line = chosen.map((s) => `${s.id} ${["direct", ...proxies.map((p) => p.label)].map((l) => { const f = results.get(key(s.id, l))!.at(-1)!; return `${ms(f.p50)}/${ms(f.p99)}`; }).join(" ")}`);
    console.log(`round ${r + 1}/${rounds} (p50/p99 ms: direct, then each tree): ${line.join("; ")}`);
  }

  const rows: Array<Array<string>> = [];
  for (const s of chosen) {
    const d = results.get(key(s.id, "direct"))!;
    rows.push([s.name, "direct", range(d.map((f) => f.p50)), range(d.map((f) => f.p99)), "", "", "", "", ""]);
    const first = results.get(key(s.id, proxies[0]!.label))!;
    for (const p of proxies) {
      const f = results.get(key(s.id, p.label))!;
      // Each round's relay CPU over the first tree's in the same round: the load both saw was about the same.
      const vsFirst = p === proxies[0] ? "" : range(f.map((x, i) => x.relayCpuMsPerCall! / first[i]!.relayCpuMsPerCall!));
      rows.push(["", p.label, range(f.map((x) => x.p50)), range(f.map((x) => x.p99)), range(f.map((x, i) => x.p50 - d[i]!.p50)), range(f.map((x, i) => x.p99 - d[i]!.p99)), range(f.map((x) => x.relayCpuMsPerCall!)), vsFirst, range(f.map((x) => x.cpuMsPerCall!))]);
    }
  }
  console.log();
  console.log(table(["scenario", "path", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms", "relay thread CPU ms/call", "÷ tree 0", "oisp CPU ms/call"], rows));
  console.log(`(ranges over ${rounds} rounds; added = minus direct's figure in the same round; targets: new connection added p50 <= 2 ms, warm added p99 <= 1 ms)`);
} finally {
  for (const p of proxies) await p.oisp.stop();
  await upstream.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

function key(scenario: string, label: string): string {
  return `${scenario}\n${label}`;
}

function push(scenario: string, label: string, f: Figures): void {
  const k = key(scenario, label);
  results.set(k, [...(results.get(k) ?? []), f]);
}

function range(v: number[]): string {
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return lo.toFixed(2) === hi.toFixed(2) ? ms(lo) : `${ms(lo)}–${ms(hi)}`;
}
