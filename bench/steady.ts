// bench/steady.ts (issues 8, 17): `oisp up` idle and at a steady request rate, CPU split per thread.
// Where the "< 2 % CPU at 10 calls/s", "< 5 % at 100/s" and "< 80 MB idle" targets are lost: the relay
// thread, the sensor Worker, Bun's helper threads (JIT, GC, mimalloc's scavenger). Per thread also its
// wake-ups (voluntary context switches: each is one sleep, so one wake-up) and page faults (memory the
// allocator gave back and took again). Then the same 40 s after the traffic: idle CPU, wake-ups, RSS.
//
//   bun bench/steady.ts [--rate 100] [--seconds 10] [--conns 10] [--pre-idle 40] [--warmup 500]
//                       [--baseline DIR [--rounds 3]] [--env K=V]... [--baseline-env K=V]... [--up-arg ARG]...
//                       [--also "DIR [K=V]..."]... [--relay MODE]...
//
// --baseline DIR: another checkout (`git archive REV | tar -x -C DIR`, node_modules linked) run the same
// way, alternating with this tree, `--rounds` times each: the figures of one run are ±30 % with other
// load on the machine, so only ranges over alternating rounds compare. --env sets variables for this
// tree's `oisp up` only (--baseline-env for the baseline's): `--baseline . --env X=1` measures a setting.
// --up-arg adds one argument to both trees' `oisp up` (`--up-arg --web --up-arg --web-port --up-arg 17990`).
// --also "DIR K=V ...": one more checkout's `oisp up` in each round, with those variables (a throwaway copy with
// switches: `--also "/tmp/copy OISP_X=1"`). --relay MODE: the capture-less relay `bench/lib/peek-relay.ts MODE`
// (`handle`: the same native legs as `oisp up`, no tap, no Worker) in each round under the same load: the floor
// any relay pays here. With more than one target, each one's CPU (process, main thread) ÷ this tree's, per round.
// --warmup N: calls sent as fast as 8 connections go before the measured window (default 500). 20000 measures
// a sensor that has run a while (its JIT's first compiles done, as `bench/sensor.ts --warmup 20000`); the
// default one that has just started.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runScenario, type Target } from "./lib/loadgen.ts";
import { startOispUp, startPeekRelay, startUpstream, statCpuSec, statusMb, type Upstream } from "./lib/procs.ts";

const args = process.argv.slice(2);
const num = (flag: string, dflt: number) => (args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) : dflt);
const str = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
const envOf = (flag: string) => Object.fromEntries(args.flatMap((a, i) => (a === flag ? [args[i + 1]!.split(/=(.*)/s).slice(0, 2)] : [])));
const RATE = num("--rate", 100);
const SECONDS = num("--seconds", 10);
const CONNS = num("--conns", 10);
const PRE_IDLE = num("--pre-idle", 40);
const AFTER = num("--after", 40);
const WARMUP = num("--warmup", 500);
const BASELINE = str("--baseline");
const ROUNDS = num("--rounds", BASELINE ? 3 : 1);
const UP_ARGS = args.flatMap((a, i) => (a === "--up-arg" ? [args[i + 1]!] : []));
const ALSO = args.flatMap((a, i) => (a === "--also" ? [args[i + 1]!.trim().split(/\s+/)] : []));
const RELAYS = args.flatMap((a, i) => (a === "--relay" ? [args[i + 1]!] : []));

interface ThreadSample {
  name: string;
  cpuSec: number;
  /** Voluntary context switches: the thread went to sleep (and was woken) this often. */
  wakeups: number;
  minorFaults: number;
}

/** Per thread id of a process, from /proc/<pid>/task/<tid>/{stat,status}. */
function threads(pid: number): Map<string, ThreadSample> {
  const out = new Map<string, ThreadSample>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const status = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      const name = `${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))}${tid === String(pid) ? " (main)" : ""}`;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const wakeups = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      out.set(tid, { name, cpuSec: statCpuSec(stat), wakeups, minorFaults: Number(fields[7]) }); // minflt
    } catch {
      // thread gone
    }
  }
  return out;
}

interface Rss {
  total: number;
  anon: number;
  file: number;
}

function rss(pid: number): Rss {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return { total: statusMb(status, "VmRSS"), anon: statusMb(status, "RssAnon"), file: statusMb(status, "RssFile") };
}
const fmtRss = (r: Rss) => `${r.total.toFixed(1)} MB (anon ${r.anon.toFixed(1)}, file ${r.file.toFixed(1)})`;

/** Per-thread rates between two samples: CPU in % of a core, wake-ups and faults per second. */
interface Rates {
  name: string;
  cpuPct: number;
  wakeupsPerSec: number;
  faultsPerSec: number;
}

/**
 * Per thread name (threads of one name summed), what each thread did between the samples: a thread born in
 * between counts from zero; one gone by `b` (JSC ends idle JIT threads) is left out, its last part unknown.
 */
function rates(a: Map<string, ThreadSample>, b: Map<string, ThreadSample>, wallSec: number): Rates[] {
  const byName = new Map<string, Rates>();
  for (const [tid, v] of b) {
    const u = a.get(tid);
    const r = byName.get(v.name) ?? { name: v.name, cpuPct: 0, wakeupsPerSec: 0, faultsPerSec: 0 };
    r.cpuPct += ((v.cpuSec - (u?.cpuSec ?? 0)) / wallSec) * 100;
    r.wakeupsPerSec += (v.wakeups - (u?.wakeups ?? 0)) / wallSec;
    r.faultsPerSec += (v.minorFaults - (u?.minorFaults ?? 0)) / wallSec;
    byName.set(v.name, r);
  }
  return [...byName.values()]
    .filter((r) => r.cpuPct >= 0.05 || r.wakeupsPerSec >= 0.5)
    .sort((x, y) => y.cpuPct - x.cpuPct || y.wakeupsPerSec - x.wakeupsPerSec);
}
const sum = (rs: Rates[], k: "cpuPct" | "wakeupsPerSec" | "faultsPerSec") => rs.reduce((s, r) => s + r[k], 0);

function printRates(title: string, rs: Rates[]): void {
  console.log(`  ${title}: total ${sum(rs, "cpuPct").toFixed(2)} % CPU, ${sum(rs, "wakeupsPerSec").toFixed(1)} wake-ups/s, ${sum(rs, "faultsPerSec").toFixed(0)} faults/s`);
  for (const r of rs) console.log(`    ${r.name.padEnd(20)} ${r.cpuPct.toFixed(2).padStart(6)} %  ${r.wakeupsPerSec.toFixed(1).padStart(7)} wake-ups/s  ${r.faultsPerSec.toFixed(0).padStart(6)} faults/s`);
}

/** The relay's tap counters from `oisp up`'s status snapshot (rewritten every 2 s). */
function tapStats(home: string): { batches?: number; inFlightBytes?: number } {
  const snap = JSON.parse(fs.readFileSync(path.join(home, "run", "status.json"), "utf8")) as { tap?: { stats?: { batches?: number; inFlightBytes?: number } } };
  return snap.tap?.stats ?? {};
}
/** Messages the relay thread posted to the sensor Worker so far. */
const tapBatchesOf = (home: string) => tapStats(home).batches ?? NaN;

/** Waits (up to 60 s) until the Worker has decoded everything the relay tapped: a long warm-up leaves a backlog. */
async function drained(home: string): Promise<void> {
  for (let i = 0; i < 30 && tapStats(home).inFlightBytes !== 0; i++) await Bun.sleep(2000);
}

interface RunResult {
  label: string;
  /** Relay → Worker messages per call in the steady phase (2 when a call's request and answer go apart). */
  batchesPerCall: number;
  rssStart7?: Rss;
  rssStart?: Rss;
  steady: Rates[];
  idle: Rates[];
  rssAfter: Rss;
}

/**
 * One `oisp up` (of `cliDir`, or this tree), or with `relayMode` a capture-less relay (no status file, no Worker),
 * through the phases: idle start, warm-up, steady rate, idle after.
 */
async function runOnce(label: string, upstream: Upstream, dir: string, cliDir: string | undefined, env: Record<string, string>, relayMode?: string): Promise<RunResult> {
  const oisp = relayMode ? { ...(await startPeekRelay(dir, upstream, relayMode)), home: undefined } : await startOispUp(dir, upstream, UP_ARGS, { cliDir, env });
  const target: Target = { name: "oisp", upstreamPort: upstream.port, servername: "api.openai.com", ca: oisp.caPem, proxy: { port: oisp.port, authority: "api.openai.com:443" } };
  const tapBatches = (home: string | undefined) => (home ? tapBatchesOf(home) : NaN);
  try {
    const out: Partial<RunResult> = { label };
    if (PRE_IDLE > 0) {
      await Bun.sleep(Math.min(7, PRE_IDLE) * 1000);
      out.rssStart7 = rss(oisp.pid);
      // The start-up probe connected once, which started the process-lookup Worker (it stops when idle).
      await Bun.sleep(Math.max(0, PRE_IDLE - 7) * 1000);
      out.rssStart = rss(oisp.pid);
    }
    const warm = await runScenario({ target, mode: "keepalive", concurrency: 8, total: WARMUP });
    if (warm.ok !== WARMUP) throw new Error(`${label}: ${warm.ok} of ${WARMUP} warm-up calls answered: ${JSON.stringify(warm.errors)}`);
    if (oisp.home) await drained(oisp.home);
    await Bun.sleep(1000);
    const batches0 = tapBatches(oisp.home);
    let a = threads(oisp.pid);
    let t0 = performance.now();
    const r = await runScenario({ target, mode: "keepalive", concurrency: CONNS, total: RATE * SECONDS, ratePerSec: RATE });
    if (r.ok !== RATE * SECONDS) throw new Error(`${label}: ${r.ok} of ${RATE * SECONDS} requests answered: ${JSON.stringify(r.errors)}`);
    out.steady = rates(a, threads(oisp.pid), (performance.now() - t0) / 1000);
    await Bun.sleep(2500); // the status snapshot is rewritten every 2 s
    out.batchesPerCall = (tapBatches(oisp.home) - batches0) / r.ok;
    // Idle after traffic: the first 10 s let the store commit and the lookup Worker stop; then idle is measured.
    await Bun.sleep(Math.max(0, Math.min(10, AFTER) * 1000 - 2500));
    a = threads(oisp.pid);
    t0 = performance.now();
    await Bun.sleep(Math.max(1, AFTER - 10) * 1000);
    out.idle = rates(a, threads(oisp.pid), (performance.now() - t0) / 1000);
    out.rssAfter = rss(oisp.pid);
    return out as RunResult;
  } finally {
    await oisp.stop();
  }
}

function report(r: RunResult): void {
  console.log(`${r.label}:`);
  if (r.rssStart7) console.log(`  idle RSS before traffic, 7 s after start: ${fmtRss(r.rssStart7)}`);
  if (r.rssStart) console.log(`  idle RSS before traffic, ${PRE_IDLE} s after start: ${fmtRss(r.rssStart)}   target < 80 MB`);
  printRates(`steady ${RATE}/s (${((sum(r.steady, "cpuPct") * 10) / RATE).toFixed(2)} ms CPU per request, ${r.batchesPerCall.toFixed(2)} Worker messages per call)`, r.steady);
  printRates(`idle, ${AFTER - 10} s from 10 s after traffic`, r.idle);
  console.log(`  idle RSS ${AFTER} s after traffic: ${fmtRss(r.rssAfter)}   target < 80 MB`);
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const range = (xs: number[], digits = 2) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

function summary(label: string, rs: RunResult[]): void {
  const thread = (runs: Rates[][], name: string) => runs.map((x) => x.find((t) => t.name === name)?.cpuPct ?? 0);
  const names = [...new Set(rs.flatMap((r) => r.steady.map((t) => t.name)))];
  console.log(`${label} (${rs.length} runs):`);
  console.log(`  steady ${RATE}/s: total ${range(rs.map((r) => sum(r.steady, "cpuPct")))} %, wake-ups ${range(rs.map((r) => sum(r.steady, "wakeupsPerSec")), 0)}/s, faults ${range(rs.map((r) => sum(r.steady, "faultsPerSec")), 0)}/s, Worker messages per call ${range(rs.map((r) => r.batchesPerCall))}`);
  for (const n of names) console.log(`    ${n.padEnd(20)} ${range(thread(rs.map((r) => r.steady), n))} %`);
  console.log(`  idle after: total ${range(rs.map((r) => sum(r.idle, "cpuPct")))} %, wake-ups ${range(rs.map((r) => sum(r.idle, "wakeupsPerSec")), 1)}/s; RSS ${range(rs.map((r) => r.rssAfter.total), 1)} MB (anon ${range(rs.map((r) => r.rssAfter.anon), 1)}, file ${range(rs.map((r) => r.rssAfter.file), 1)})`);
  if (rs[0]!.rssStart) console.log(`  idle RSS ${PRE_IDLE} s after start: ${range(rs.map((r) => r.rssStart!.total), 1)} MB`);
}

/** Steady CPU of `rs` ÷ `base`'s, round by round (the same round ran both under the same load): process, main thread. */
function ratios(label: string, rs: RunResult[], base: RunResult[]): void {
  const main = (r: RunResult) => r.steady.find((t) => t.name.endsWith("(main)"))?.cpuPct ?? NaN;
  const show = (q: number[]) => `${q.map((x) => x.toFixed(2)).join(" ")} (median ${median(q).toFixed(2)})`;
  console.log(`  ${label}: process ${show(rs.map((r, i) => sum(r.steady, "cpuPct") / sum(base[i]!.steady, "cpuPct")))}; main (relay) thread ${show(rs.map((r, i) => main(r) / main(base[i]!)))}`);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-steady-"));
const upstream = await startUpstream(dir, { node: true });
try {
  console.log(`bench/steady.ts: ${os.cpus().length} CPUs, bun ${Bun.version}, load ${os.loadavg()[0]!.toFixed(1)}; ${WARMUP} warm-up calls, then ${RATE} req/s for ${SECONDS} s over ${CONNS} keep-alive connections${UP_ARGS.length ? `; oisp up ${UP_ARGS.join(" ")}` : ""}`);
  const trees: Array<{ label: string; cliDir?: string; env: Record<string, string>; relay?: string; runs: RunResult[] }> = [{ label: "this tree", env: envOf("--env"), runs: [] }];
  if (BASELINE) trees.push({ label: `baseline ${BASELINE}`, cliDir: path.resolve(BASELINE), env: envOf("--baseline-env"), runs: [] });
  for (const [d, ...kv] of ALSO) trees.push({ label: `also ${d}`, cliDir: path.resolve(d!), env: Object.fromEntries(kv.map((x) => x.split(/=(.*)/s).slice(0, 2))), runs: [] });
  for (const m of RELAYS) trees.push({ label: `relay ${m} (no tap)`, env: {}, relay: m, runs: [] });
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first: a drift in the machine's load then falls on both (with more, rotate).
    const order = trees.length <= 2 ? (round % 2 === 0 ? trees : [...trees].reverse()) : trees.map((_, i) => trees[(i + round) % trees.length]!);
    for (const t of order) {
      const r = await runOnce(`${t.label}${Object.keys(t.env).length ? ` ${JSON.stringify(t.env)}` : ""}, round ${round + 1}`, upstream, dir, t.cliDir, t.env, t.relay);
      report(r);
      t.runs.push(r);
    }
  }
  if (trees.length > 1 || ROUNDS > 1) for (const t of trees) summary(`${t.label}${Object.keys(t.env).length ? ` ${JSON.stringify(t.env)}` : ""}`, t.runs);
  if (trees.length > 1) {
    console.log("steady CPU ÷ this tree's, per round:");
    for (const t of trees.slice(1)) ratios(`${t.label}${Object.keys(t.env).length ? ` ${JSON.stringify(t.env)}` : ""}`, t.runs, trees[0]!.runs);
  }
} finally {
  await upstream.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
