// bench/proxy.ts (issue 2): what the proxy costs. In one run, against a local TLS upstream in its own
// process: direct vs through `oisp up` (its own process), keep-alive and new connections, plain JSON and
// SSE. Prints req/s, p50/p99 latency, the latency oisp adds, and the delay it adds to each SSE chunk
// (the upstream stamps each chunk with CLOCK_MONOTONIC; arrival minus stamp, proxied vs direct).
//
//   bun bench/proxy.ts            # about a minute
//   bun bench/proxy.ts --quick    # fewer requests, for a smoke run
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runScenario, type ScenarioOptions, type Target } from "./lib/loadgen.ts";
import { startOispUp, startUpstream } from "./lib/procs.ts";
import { ms, summarize, table, verdict, type Summary } from "./lib/report.ts";

const quick = process.argv.includes("--quick");
const scale = quick ? 0.1 : 1;
const n = (v: number) => Math.max(20, Math.round(v * scale));

interface Scenario {
  name: string;
  opts: Omit<ScenarioOptions, "target">;
}

const scenarios: Scenario[] = [
  { name: "keep-alive JSON, 1 conn (warm latency)", opts: { mode: "keepalive", concurrency: 1, total: n(3000) } },
  { name: "keep-alive JSON, 32 conns (throughput)", opts: { mode: "keepalive", concurrency: 32, total: n(15000) } },
  { name: "new conn per request JSON, 8 at once", opts: { mode: "new", concurrency: 8, total: n(1500) } },
  { name: "keep-alive SSE 40 chunks @5ms, 20 conns", opts: { mode: "keepalive", concurrency: 20, total: n(200), stream: { chunks: 40, intervalMs: 5 } } },
];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-proxy-"));
const upstream = await startUpstream(dir);
const oisp = await startOispUp(dir, upstream);
const direct: Target = { name: "direct", upstreamPort: upstream.port, servername: "api.openai.com", ca: upstream.caPem };
const viaOisp: Target = { name: "oisp", upstreamPort: upstream.port, proxy: { port: oisp.port, authority: "api.openai.com:443" }, servername: "api.openai.com", ca: oisp.caPem };

console.log(`bench/proxy.ts: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), bun ${Bun.version}, upstream pid ${upstream.pid}, oisp pid ${oisp.pid}${quick ? ", --quick" : ""}`);

try {
  // Warm both paths (JIT, leaf certificate, connection pools) before measuring.
  for (const t of [direct, viaOisp]) await runScenario({ target: t, mode: "keepalive", concurrency: 4, total: 400 });

  const rows: Array<Array<string | number>> = [];
  const results: Record<string, { direct: Summary; oisp: Summary }> = {};
  for (const s of scenarios) {
    // Alternate which goes first so neither always runs on a "warmer" machine.
    const d = summarize(await runScenario({ ...s.opts, target: direct }));
    const o = summarize(await runScenario({ ...s.opts, target: viaOisp }));
    results[s.name] = { direct: d, oisp: o };
    for (const [who, r] of [["direct", d], ["oisp", o]] as const) {
      rows.push([
        `${s.name} — ${who}`,
        r.ok,
        r.errors,
        r.rps.toFixed(0),
        ms(r.p50),
        ms(r.p99),
        who === "oisp" ? ms(r.p50 - d.p50) : "",
        who === "oisp" ? ms(r.p99 - d.p99) : "",
        r.chunkP50 !== undefined ? `${ms(r.chunkP50)}/${ms(r.chunkP99!)}/${ms(r.chunkMax!)}` : "",
      ]);
    }
  }
  console.log();
  console.log(table(["scenario", "ok", "err", "req/s", "p50 ms", "p99 ms", "+p50 ms", "+p99 ms", "chunk delay p50/p99/max ms"], rows));

  const warm = results[scenarios[0]!.name]!;
  const thr = results[scenarios[1]!.name]!;
  const sse = results[scenarios[3]!.name]!;
  const addedP50 = warm.oisp.p50 - warm.direct.p50;
  // A chunk's added hold time: its proxied delay beyond what the same chunk sees directly (direct p50 as baseline).
  const chunkAddedP99 = sse.oisp.chunkP99! - sse.direct.chunkP50!;
  const chunkAddedMax = sse.oisp.chunkMax! - sse.direct.chunkP50!;
  const ratio = thr.oisp.rps / thr.direct.rps;
  console.log(`
Targets (issue 2):
  added p50, warm keep-alive         ${ms(addedP50, 3)} ms   target <= 0.5 ms   ${verdict(addedP50 <= 0.5)}
  SSE chunk held (added), p99        ${ms(chunkAddedP99, 3)} ms   target <= 1 ms     ${verdict(chunkAddedP99 <= 1)}
  SSE chunk held (added), max        ${ms(chunkAddedMax, 3)} ms   target <= 1 ms     ${verdict(chunkAddedMax <= 1)}
  proxied / direct throughput        ${(ratio * 100).toFixed(0)} %     target >= 50 %     ${verdict(ratio >= 0.5)}
  (direct SSE chunk delay p50 ${ms(sse.direct.chunkP50!, 3)} ms is the baseline; all on one 2-core machine shared by client, proxy and upstream)`);
} finally {
  await oisp.stop();
  await upstream.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
