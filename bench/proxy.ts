// bench/proxy.ts (issue 2): what the proxy costs. In one run, against a local TLS upstream in its own
// process: direct vs through `oisp up` (its own process) and through `oisp redirect` + `oisp sensor`
// (two processes), and through a bare node:tls relay (bench/lib/bare-relay.ts, the floor); keep-alive and
// new connections, plain JSON and SSE (20 streams at once, then one alone). Prints req/s, p50/p99 latency,
// the latency oisp adds, and the delay it adds to each SSE chunk (the upstream stamps each chunk with
// the wall clock in µs; arrival minus stamp, proxied vs direct).
//
//   bun bench/proxy.ts            # about a minute
//   bun bench/proxy.ts --quick    # fewer requests, for a smoke run
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runScenario, type ScenarioOptions, type Target } from "./lib/loadgen.ts";
import { startBareRelay, startOispSplit, startOispUp, startUpstream } from "./lib/procs.ts";
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
  { name: "keep-alive SSE 200 chunks @5ms, 1 conn", opts: { mode: "keepalive", concurrency: 1, total: quick ? 2 : 5, stream: { chunks: 200, intervalMs: 5 } } },
];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-proxy-"));
const upstream = await startUpstream(dir);
const oisp = await startOispUp(dir, upstream);
// The same capture with the roles split (redirect + sensor over the unix socket): decoding then runs in
// another process, off the relay's event loop.
const split = await startOispSplit(dir, upstream);
const direct: Target = { name: "direct", upstreamPort: upstream.port, servername: "api.openai.com", ca: upstream.caPem };
const viaOisp: Target = { name: "oisp", upstreamPort: upstream.port, proxy: { port: oisp.port, authority: "api.openai.com:443" }, servername: "api.openai.com", ca: oisp.caPem };
const viaSplit: Target = { name: "split", upstreamPort: upstream.port, proxy: { port: split.port, authority: "api.openai.com:443" }, servername: "api.openai.com", ca: split.caPem };
// The yardstick: a bare TLS-terminating relay on node:tls (bench/lib/bare-relay.ts), no capture at all.
const bare = await startBareRelay(dir, upstream);
const viaBare: Target = { name: "bare", upstreamPort: upstream.port, proxy: { port: bare.port, authority: "api.openai.com:443" }, servername: "api.openai.com", ca: bare.caPem };
const proxied = [["oisp up", viaOisp], ["redirect+sensor", viaSplit], ["bare relay", viaBare]] as const;

console.log(`bench/proxy.ts: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), bun ${Bun.version}, upstream pid ${upstream.pid}, oisp pid ${oisp.pid}${quick ? ", --quick" : ""}`);

try {
  // Warm both paths (JIT, leaf certificate, connection pools) before measuring.
  for (const t of [direct, viaOisp, viaSplit, viaBare]) await runScenario({ target: t, mode: "keepalive", concurrency: 4, total: 400 });

  const rows: Array<Array<string | number>> = [];
  const results: Record<string, Record<string, Summary>> = {};
  for (const s of scenarios) {
    const d = summarize(await runScenario({ ...s.opts, target: direct }));
    results[s.name] = { direct: d };
    rows.push(row(`${s.name} — direct`, d));
    for (const [who, target] of proxied) {
      const r = summarize(await runScenario({ ...s.opts, target }));
      results[s.name]![who] = r;
      rows.push(row(`${s.name} — ${who}`, r, d));
    }
  }
  console.log();
  console.log(table(["scenario", "ok", "err", "req/s", "p50 ms", "p99 ms", "+p50 ms", "+p99 ms", "chunk delay p50/p99/max ms"], rows));

  const warm = results[scenarios[0]!.name]!;
  const thr = results[scenarios[1]!.name]!;
  const sse = results[scenarios[3]!.name]!;
  const sse1 = results[scenarios[4]!.name]!;
  // A chunk's added hold time: its proxied delay beyond what chunks see directly (direct p50 as baseline).
  for (const [label] of proxied) {
    const addedP50 = warm[label]!.p50 - warm.direct!.p50;
    const held = (r: Record<string, Summary>) => r[label]!.chunkP99! - r.direct!.chunkP50!;
    const ratio = thr[label]!.rps / thr.direct!.rps;
    console.log(`
Targets (issue 2), ${label}${label === "bare relay" ? " (no capture: the floor for a node:tls relay here)" : ""}:
  added p50, warm keep-alive         ${ms(addedP50, 3)} ms   target <= 0.5 ms   ${verdict(addedP50 <= 0.5)}
  SSE chunk held (added) p99, 20 conns ${ms(held(sse), 3)} ms   target <= 1 ms   ${verdict(held(sse) <= 1)}
  SSE chunk held (added) p99, 1 conn   ${ms(held(sse1), 3)} ms   target <= 1 ms   ${verdict(held(sse1) <= 1)}
  proxied / direct throughput        ${(ratio * 100).toFixed(0)} %     target >= 50 %     ${verdict(ratio >= 0.5)}`);
  }
  console.log(`  (direct SSE chunk delay p50 ${ms(sse.direct!.chunkP50!, 3)} ms is the baseline; all on one ${os.cpus().length}-CPU machine shared by client, proxies and upstream)`);
} finally {
  await oisp.stop();
  await split.stop();
  await bare.stop();
  await upstream.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

function row(label: string, r: Summary, d?: Summary): Array<string | number> {
  return [
    label,
    r.ok,
    r.errors,
    r.rps.toFixed(0),
    ms(r.p50),
    ms(r.p99),
    d ? ms(r.p50 - d.p50) : "",
    d ? ms(r.p99 - d.p99) : "",
    r.chunkP50 !== undefined ? `${ms(r.chunkP50)}/${ms(r.chunkP99!)}/${ms(r.chunkMax!)}` : "",
  ];
}
