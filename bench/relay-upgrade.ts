// bench/relay-upgrade.ts (issue 17): ways to start the client's TLS after the ClientHello peek, side by side with
// direct in one run. Each relay (bench/lib/peek-relay.ts MODE) reads CONNECT, peeks the ClientHello, then
// terminates TLS its own way and relays to a TLS upstream, capturing nothing; `oisp up` runs beside them when
// asked. Rounds alternate the targets; per target: req/s, × direct of the same round, relay CPU µs per request.
//
//   bun bench/relay-upgrade.ts [--conns 16,32] [--rounds 3] [--requests 8000] [--modes duplex,adopt,...] [--oisp]
//                              [--baseline DIR]   (also `oisp up` of another checkout, e.g. a `git archive` of main)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { reqPerSec, runScenario, type Target } from "./lib/loadgen.ts";
import { sample, startOispUp, startPeekRelay, startUpstream, statCpuSec, type ThirdPartyProxy } from "./lib/procs.ts";

const { values: args } = parseArgs({
  options: {
    conns: { type: "string", default: "16,32" },
    rounds: { type: "string", default: "3" },
    requests: { type: "string", default: "8000" },
    modes: { type: "string", default: "duplex,adopt,duplex-bunup,native,hop" },
    oisp: { type: "boolean", default: false },
    baseline: { type: "string" },
  },
});
const conns = args.conns.split(",").map(Number);
const rounds = Number(args.rounds);
const total = Number(args.requests);
const modes = args.modes.split(",");

/** CPU seconds of a process's main thread (oisp's relay; its sensor runs in a Worker thread). */
function mainThreadCpuSec(pid: number): number {
  try {
    return statCpuSec(fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8"));
  } catch {
    return NaN;
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-relay-upgrade-"));
const upstream = await startUpstream(dir);
const relays: Array<{ name: string; proc: ThirdPartyProxy }> = [];
try {
  for (const m of modes) relays.push({ name: m, proc: await startPeekRelay(dir, upstream, m) });
  if (args.oisp) relays.push({ name: "oisp up", proc: await startOispUp(dir, upstream) });
  if (args.baseline) {
    const wrapper = path.join(dir, "oisp-baseline");
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${path.resolve(args.baseline, "src/cli.ts")}" "$@"\n`, { mode: 0o755 });
    const own = process.env.OISP_BIN;
    process.env.OISP_BIN = wrapper;
    try {
      relays.push({ name: "oisp baseline", proc: await startOispUp(dir, upstream) });
    } finally {
      if (own === undefined) delete process.env.OISP_BIN;
      else process.env.OISP_BIN = own;
    }
  }
  const via = (r: (typeof relays)[number]): Target => ({
    name: r.name,
    upstreamPort: upstream.port,
    servername: "api.openai.com",
    ca: r.proc.caPem,
    proxy: { port: r.proc.port, authority: "api.openai.com:443" },
  });
  const direct: Target = { name: "direct", upstreamPort: upstream.port, servername: "api.openai.com", ca: upstream.caPem };
  console.log(`bench/relay-upgrade.ts: ${os.cpus().length} CPUs, bun ${Bun.version}, load ${os.loadavg()[0]!.toFixed(1)}; keep-alive, ${total} requests per run, ${rounds} rounds`);
  for (const r of relays) await runScenario({ target: via(r), mode: "keepalive", concurrency: 8, total: 1000 }); // warm
  await runScenario({ target: direct, mode: "keepalive", concurrency: 8, total: 1000 });
  const rows = new Map<string, { x: number[]; us: number[]; rps: number[]; mainUs: number[] }>();
  for (const c of conns) {
    for (let round = 0; round < rounds; round++) {
      const d = await runScenario({ target: direct, mode: "keepalive", concurrency: c, total });
      const directRps = reqPerSec(d);
      console.log(`${c} conns, round ${round + 1}: direct ${directRps.toFixed(0)} req/s`);
      // A different order each round, so no relay always runs right after direct.
      const order = relays.map((_, i) => relays[(i + round) % relays.length]!);
      for (const r of order) {
        const a = sample(r.proc.pid);
        const mainA = mainThreadCpuSec(r.proc.pid);
        const res = await runScenario({ target: via(r), mode: "keepalive", concurrency: c, total });
        const b = sample(r.proc.pid);
        const us = a && b ? ((b.cpuSec - a.cpuSec) * 1e6) / Math.max(1, res.ok) : NaN;
        const mainUs = ((mainThreadCpuSec(r.proc.pid) - mainA) * 1e6) / Math.max(1, res.ok);
        const errs = total - res.ok;
        const key = `${r.name} @${c}`;
        const row = rows.get(key) ?? { x: [], us: [], rps: [], mainUs: [] };
        row.mainUs.push(mainUs);
        row.x.push(reqPerSec(res) / directRps);
        row.us.push(us);
        row.rps.push(reqPerSec(res));
        rows.set(key, row);
        console.log(`  ${r.name.padEnd(14)} ${reqPerSec(res).toFixed(0).padStart(6)} req/s  ${(reqPerSec(res) / directRps).toFixed(2)} x direct  ${us.toFixed(0).padStart(4)} µs CPU/req (main thread ${mainUs.toFixed(0)})${errs ? `  ${errs} errors` : ""}`);
      }
    }
  }
  const range = (v: number[], digits: number) => `${Math.min(...v).toFixed(digits)}–${Math.max(...v).toFixed(digits)}`;
  // On a loaded machine the rounds differ more than the trees: compare the two oisp trees round by round.
  for (const c of conns) {
    const now = rows.get(`oisp up @${c}`);
    const base = rows.get(`oisp baseline @${c}`);
    if (!now || !base) continue;
    for (const [what, pick] of [["process", (r: typeof now) => r.us], ["main (relay) thread", (r: typeof now) => r.mainUs]] as const) {
      const ratios = pick(now).map((u, i) => u / pick(base)[i]!).sort((a, b) => a - b);
      console.log(`oisp up / baseline, µs CPU per request of the ${what}, per round @${c}: ${ratios.map((r) => r.toFixed(2)).join(" ")} (median ${ratios[Math.floor(ratios.length / 2)]!.toFixed(2)})`);
    }
  }
  console.log("\nsummary (ranges over rounds):");
  console.log(`${"relay".padEnd(20)} ${"req/s".padStart(13)} ${"x direct".padStart(11)} ${"µs CPU/req".padStart(11)} ${"main thread".padStart(12)}`);
  for (const [k, r] of rows) console.log(`${k.padEnd(20)} ${range(r.rps, 0).padStart(13)} ${range(r.x, 2).padStart(11)} ${range(r.us, 0).padStart(11)} ${range(r.mainUs, 0).padStart(12)}`);
} finally {
  for (const r of relays) await r.proc.stop();
  await upstream.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
