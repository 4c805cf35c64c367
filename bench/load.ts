// bench/load.ts (issue 8): the proxy under load, and side by side with mitmproxy and mockttp.
//
// Workload, the same for every target: 1,000 client connections at once — 200 of them each carry one long
// SSE stream (100 chunks, 50 ms apart), 800 carry keep-alive JSON requests — 20,000 requests in all
// (200 streams + 19,800 JSON). Targets: direct to the upstream, `oisp up`, mitmdump (Debian), mockttp (npm),
// each proxy in its own process, all on loopback. For oisp also: events stored == requests made, peak RSS,
// CPU per request, idle RSS, and RSS/CPU at a steady 100 req/s.
//
//   bun bench/load.ts                  # all four targets (mitmdump takes the longest)
//   bun bench/load.ts --only direct,oisp
//   bun bench/load.ts --only direct,bare  # bench/lib/bare-relay.ts: the floor any node:tls relay pays
//   bun bench/load.ts --quick          # a tenth of the workload
//   bun bench/load.ts --bun-upstream   # Bun.serve as the upstream instead of node:http
import { Database } from "bun:sqlite";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { errorCount, runScenario, type ScenarioResult, type Target } from "./lib/loadgen.ts";
import { sample, startBareRelay, startMitmdump, startMockttp, startOispUp, startUpstream, type ProcSample, type Upstream } from "./lib/procs.ts";
import { ms, summarize, table, verdict, type Summary } from "./lib/report.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const onlyArg = args.find((a) => a.startsWith("--only"))?.split("=")[1] ?? (args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined);
const only = new Set((onlyArg ?? "direct,oisp,bare,mitmdump,mockttp").split(","));
const scale = quick ? 0.1 : 1;

const CONNS = Math.round(1000 * scale);
const STREAMS = Math.round(200 * scale);
const REQUESTS = Math.round(20_000 * scale);
const STREAM = { chunks: 100, intervalMs: 50 };
const TARGET_DEADLINE_MS = 240_000; // per target: stop starting requests after this (mitmdump may need it)

interface TargetRun {
  name: string;
  json: ScenarioResult;
  sse: ScenarioResult;
  wallMs: number;
  proc?: { peakRssMb: number; cpuSec: number };
  note?: string;
}

/** Runs the mixed workload against one target, sampling the proxy process (if any) every 100 ms. */
async function mixedWorkload(target: Target, pid?: number): Promise<Omit<TargetRun, "name">> {
  const before = pid ? sample(pid) : undefined;
  let peak = before?.peakRssMb ?? 0;
  const timer = pid ? setInterval(() => (peak = Math.max(peak, sample(pid)?.rssMb ?? 0)), 100) : undefined;
  const t0 = performance.now();
  const common = { target, mode: "keepalive" as const, requestTimeoutMs: 60_000, deadlineMs: TARGET_DEADLINE_MS };
  const [sse, json] = await Promise.all([
    runScenario({ ...common, concurrency: STREAMS, total: STREAMS, stream: STREAM }),
    runScenario({ ...common, concurrency: CONNS - STREAMS, total: REQUESTS - STREAMS }),
  ]);
  const wallMs = performance.now() - t0;
  if (timer) clearInterval(timer);
  const after = pid ? sample(pid) : undefined;
  return {
    json,
    sse,
    wallMs,
    proc: before && after ? { peakRssMb: Math.max(peak, after.peakRssMb), cpuSec: after.cpuSec - before.cpuSec } : undefined,
  };
}

function countEvents(dbPath: string): { requests: number; responses: number; failed: number; why: string[] } {
  const db = new Database(dbPath, { readonly: true });
  try {
    const q = (type: string) => (db.query("select count(*) as n from events where event_type = ?").get(type) as { n: number }).n;
    const failed = (db.query("select count(*) as n from events where event_type = 'ai.response' and json_extract(json, '$.data.success') = 0").get() as { n: number }).n;
    const why = db
      .query("select coalesce(json_extract(json, '$.data.error.type'), '') || ': ' || coalesce(json_extract(json, '$.data.error.message'), '') as why, count(*) as n from events where event_type = 'ai.response' and json_extract(json, '$.data.success') = 0 group by why order by n desc limit 5")
      .all() as { why: string; n: number }[];
    return { requests: q("ai.request"), responses: q("ai.response"), failed, why: why.map((w) => `${w.n}× ${w.why.slice(0, 160)}`) };
  } finally {
    db.close();
  }
}

async function steadyRate(target: Target, pid: number, rate: number, seconds: number): Promise<{ cpuPct: number; rssMb: number; ok: number; errors: number }> {
  const a = sample(pid)!;
  const t0 = performance.now();
  const r = await runScenario({ target, mode: "keepalive", concurrency: 10, total: rate * seconds, ratePerSec: rate });
  const wall = (performance.now() - t0) / 1000;
  const b = sample(pid)!;
  return { cpuPct: ((b.cpuSec - a.cpuSec) / wall) * 100, rssMb: b.rssMb, ok: r.ok, errors: errorCount(r) };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-load-"));
// node:http by default: with Bun.serve as the upstream, 1,000 keep-alive connections through oisp lose a few
// hundred requests at the end of the run (the upstream closes them as others half-close); node:http does not.
const upstream: Upstream = await startUpstream(dir, { node: !args.includes("--bun-upstream") });
const runs: TargetRun[] = [];
const failures: string[] = [];
let oispExtra: Record<string, string> = {};
const t = (name: string, ca: string, proxy?: Target["proxy"]): Target => ({ name, upstreamPort: upstream.port, servername: "api.openai.com", ca, proxy });

console.log(
  `bench/load.ts: ${os.cpus().length} CPUs, bun ${Bun.version}, upstream ${args.includes("--bun-upstream") ? "Bun.serve" : "node:http"}; ${CONNS} connections (${STREAMS} SSE streams of ${STREAM.chunks} chunks @${STREAM.intervalMs} ms), ${REQUESTS} requests per target`,
);

try {
  if (only.has("direct")) {
    const target = t("direct", upstream.caPem);
    await runScenario({ target, mode: "keepalive", concurrency: 8, total: 500 });
    runs.push({ name: "direct", ...(await mixedWorkload(target)) });
  }

  if (only.has("oisp")) {
    const oisp = await startOispUp(dir, upstream);
    try {
      const target = t("oisp", oisp.caPem, { port: oisp.port, authority: "api.openai.com:443" });
      // Idle: 40 s after start, past the 30 s after which the process-lookup Worker (started by the start-up
      // probe's connection) stops; CPU over the last 5 s.
      await Bun.sleep(35_000);
      const idle0 = sample(oisp.pid) as ProcSample;
      await Bun.sleep(5000);
      const idle = sample(oisp.pid) as ProcSample;
      const idleCpuPct = ((idle.cpuSec - idle0.cpuSec) / 5) * 100;
      await runScenario({ target, mode: "keepalive", concurrency: 8, total: 500 }); // warm
      const steady = await steadyRate(target, oisp.pid, 100, 10);
      await Bun.sleep(1000); // let the sensor store what warm-up and the steady run produced
      const before = countEvents(oisp.dbPath);
      const run = await mixedWorkload(target, oisp.pid);
      const made = run.json.ok + run.sse.ok;
      // Wait until the sensor has stored what it decoded (bounded).
      let stored = countEvents(oisp.dbPath);
      for (let i = 0; i < 300 && stored.responses - before.responses < made; i++) {
        await Bun.sleep(100);
        stored = countEvents(oisp.dbPath);
      }
      const reqs = stored.requests - before.requests;
      const resps = stored.responses - before.responses;
      runs.push({ name: "oisp", ...run });
      oispExtra = {
        "idle RSS (40 s after start)": `${idle.rssMb.toFixed(1)} MB, ${idleCpuPct.toFixed(1)} % CPU   target < 80 MB   ${verdict(idle.rssMb < 80)}`,
        "steady 100 req/s for 10 s": `${steady.cpuPct.toFixed(1)} % CPU, RSS ${steady.rssMb.toFixed(1)} MB (${steady.ok} ok, ${steady.errors} errors)   target < 5 % CPU   ${verdict(steady.cpuPct < 5)}`,
        "events stored vs requests made": `ai.request ${reqs}, ai.response ${resps} (${stored.failed - before.failed} unsuccessful) for ${made} successful requests   ${verdict(reqs === made && resps === made)}`,
        ...(stored.why.length ? { "unsuccessful responses recorded": stored.why.join("; ") } : {}),
        "peak RSS under load": `${run.proc!.peakRssMb.toFixed(1)} MB`,
        "CPU per request under load": `${((run.proc!.cpuSec * 1000) / Math.max(1, made)).toFixed(3)} ms (${run.proc!.cpuSec.toFixed(1)} CPU s for ${made} requests)`,
      };
    } finally {
      await oisp.stop();
    }
  }

  // The other proxies: each started, warmed, run through the same workload and stopped. mitmdump tunnels to
  // the CONNECT authority and forwards the client's SNI, so for it the upstream's own address is the authority.
  const others: Array<[key: string, name: string, start: typeof startMitmdump, authority: string]> = [
    ["bare", "bare relay", startBareRelay, "api.openai.com:443"],
    ["mitmdump", "mitmdump", startMitmdump, `127.0.0.1:${upstream.port}`],
    ["mockttp", "mockttp", startMockttp, "api.openai.com:443"],
  ];
  for (const [key, name, start, authority] of others) {
    if (!only.has(key)) continue;
    const m = await start(dir, upstream).catch((e: Error) => (failures.push(`${name}: ${e.message}`), undefined));
    if (!m) continue;
    try {
      const target = t(name, m.caPem, { port: m.port, authority });
      await runScenario({ target, mode: "keepalive", concurrency: 8, total: 200 });
      runs.push({ name, ...(await mixedWorkload(target, m.pid)) });
    } finally {
      await m.stop();
    }
  }
} finally {
  await upstream.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

const direct = runs.find((r) => r.name === "direct");
const mitm = runs.find((r) => r.name === "mitmdump");
const summaries = new Map<string, { json: Summary; sse: Summary }>(runs.map((r) => [r.name, { json: summarize(r.json), sse: summarize(r.sse) }]));
const d = direct && summaries.get("direct")!;
// Throughput of the JSON part, over its own duration (it runs while the 200 streams are open; the run as a
// whole cannot end before the streams do, so its wall time would hide the difference between targets).
const rps = (r: TargetRun) => (r.json.ok * 1000) / r.json.durationMs;
const errs = (r: TargetRun) => {
  const all: Record<string, number> = {};
  for (const e of [r.json.errors, r.sse.errors]) for (const [k, v] of Object.entries(e)) all[k] = (all[k] ?? 0) + v;
  return Object.entries(all).map(([k, v]) => `${v}× ${k}`).join("; ") || "0";
};

console.log();
console.log(
  table(
    ["target", "ok", "errors", "JSON req/s", "JSON p50", "p99", "+p50", "+p99", "SSE chunk delay p50/p99/max", "+chunk p99", "x direct", "x mitmdump", "peak RSS", "CPU/req"],
    runs.map((r) => {
      const s = summaries.get(r.name)!;
      return [
        r.name,
        r.json.ok + r.sse.ok,
        errs(r),
        rps(r).toFixed(0),
        ms(s.json.p50),
        ms(s.json.p99),
        d && r !== direct ? ms(s.json.p50 - d.json.p50) : "",
        d && r !== direct ? ms(s.json.p99 - d.json.p99) : "",
        s.sse.chunkP50 !== undefined ? `${ms(s.sse.chunkP50)}/${ms(s.sse.chunkP99!)}/${ms(s.sse.chunkMax!)}` : "-",
        d && r !== direct && s.sse.chunkP99 !== undefined ? ms(s.sse.chunkP99 - d.sse.chunkP99!) : "",
        direct ? (rps(r) / rps(direct)).toFixed(2) : "",
        mitm ? (rps(r) / rps(mitm)).toFixed(1) : "",
        r.proc ? `${r.proc.peakRssMb.toFixed(0)} MB` : "",
        r.proc ? `${((r.proc.cpuSec * 1000) / Math.max(1, r.json.ok + r.sse.ok)).toFixed(2)} ms` : "",
      ];
    }),
  ),
);

const oisp = runs.find((r) => r.name === "oisp");
if (oisp) {
  console.log("\noisp:");
  for (const [k, v] of Object.entries(oispExtra)) console.log(`  ${k.padEnd(32)} ${v}`);
  const extraErrors = errorCount(oisp.json) + errorCount(oisp.sse) - (direct ? errorCount(direct.json) + errorCount(direct.sse) : 0);
  const times = [...oisp.json.errorTimesMs, ...oisp.sse.errorTimesMs].sort((a, b) => a - b);
  if (times.length) console.log(`  ${"client errors happened at".padEnd(32)} ${times[0]}..${times.at(-1)} ms into a ${oisp.json.durationMs.toFixed(0)} ms JSON run`);
  console.log(`  ${"client errors beyond direct".padEnd(32)} ${extraErrors}   target 0   ${verdict(extraErrors <= 0)}`);
  if (direct) {
    const r = rps(oisp) / rps(direct);
    console.log(`  ${"throughput vs direct".padEnd(32)} ${r.toFixed(2)}   target >= 0.6   ${verdict(r >= 0.6)}`);
  }
  if (mitm) {
    const r = rps(oisp) / rps(mitm);
    console.log(`  ${"throughput vs mitmdump".padEnd(32)} ${r.toFixed(1)}x   target >= 20x   ${verdict(r >= 20)}`);
  }
}
for (const f of failures) console.log(`could not run ${f.slice(0, 500)}`);
console.log(`\nJSON req/s = JSON requests / duration of the JSON part, run while the ${STREAMS} SSE streams (${(STREAM.chunks * STREAM.intervalMs) / 1000} s each) are open.`);
console.log(`+p50/+p99/+chunk: minus the direct run. Client, proxies and upstream share ${os.cpus().length} CPUs.`);
