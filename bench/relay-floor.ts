// bench/relay-floor.ts (issue 8): how close any TLS-terminating relay can get to direct on this machine.
// 32 keep-alive connections, 15,000 requests each: direct, a relay on Bun's native sockets
// (bench/lib/native-relay.ts) and a bare relay on node:tls (bench/lib/bare-relay.ts, what oisp built on until
// both its legs moved to native TLS), neither capturing anything, and `oisp up`. Two rounds; req/s and the relay process's CPU per request.
//
//   bun bench/relay-floor.ts
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { reqPerSec, runScenario, type Target } from "./lib/loadgen.ts";
import { sample, startBareRelay, startNativeRelay, startOispUp, startUpstream } from "./lib/procs.ts";
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-relay-floor-"));
const upstream = await startUpstream(dir);
const native = await startNativeRelay(dir, upstream);
const bare = await startBareRelay(dir, upstream);
const oisp = await startOispUp(dir, upstream);
try {
  const targets: Target[] = [
    { name: "direct", upstreamPort: upstream.port, servername: "api.openai.com", ca: upstream.caPem },
    { name: "native relay", upstreamPort: native.port, servername: "api.openai.com", ca: native.caPem },
    { name: "bare node:tls relay", upstreamPort: upstream.port, servername: "api.openai.com", ca: bare.caPem, proxy: { port: bare.port, authority: "api.openai.com:443" } },
    { name: "oisp up", upstreamPort: upstream.port, servername: "api.openai.com", ca: oisp.caPem, proxy: { port: oisp.port, authority: "api.openai.com:443" } },
  ];
  console.log(`bench/relay-floor.ts: ${os.cpus().length} CPUs, bun ${Bun.version}; 32 keep-alive connections, 15,000 requests per run`);
  for (const t of targets) await runScenario({ target: t, mode: "keepalive", concurrency: 8, total: 1000 }); // warm
  let directRps = 0;
  for (let round = 0; round < 2; round++) for (const t of targets) {
    const pid = { "native relay": native.pid, "bare node:tls relay": bare.pid, "oisp up": oisp.pid }[t.name];
    const a = pid ? sample(pid) : undefined;
    const r = await runScenario({ target: t, mode: "keepalive", concurrency: 32, total: 15000 });
    const b = pid ? sample(pid) : undefined;
    if (t.name === "direct") directRps = reqPerSec(r);
    const cpu = a && b ? `  ${(((b.cpuSec - a.cpuSec) * 1e6) / r.ok).toFixed(0)} µs relay CPU/req` : "";
    console.log(`${t.name.padEnd(20)} ${reqPerSec(r).toFixed(0).padStart(6)} req/s  ${(reqPerSec(r) / directRps).toFixed(2)} x direct${cpu}`);
  }
} finally {
  await native.stop();
  await bare.stop();
  await oisp.stop();
  await upstream.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
