// bench/relay-close.ts: the "closed before response" errors of bench/load.ts with Bun.serve, isolated. The
// intercepting proxy (startProxy, no sensor) runs in a child process whose tap burns `--burn-us` of CPU per
// chunk, standing in for a busy sensor on the relay's loop; the load is load.ts's mix (SSE streams + keep-alive
// JSON) against Bun.serve or node:http as the upstream. Under that load the client handshakes queue for
// seconds while each upstream leg, already handshaken, waits unused; Bun.serve drops such a leg after ~10 s.
// "upstreamRedials" in the proxy's stats counts the legs reopened for that.
//
// --direct: the same load straight to the upstream, no proxy (what a client meets without us).
//
//   bun bench/relay-close.ts [--conns 1000] [--streams 200] [--requests 20000] [--burn-us 300] [--node] [--direct]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runScenario, type Target } from "./lib/loadgen.ts";
import { startUpstream } from "./lib/procs.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};

if (args[0] === "proxy") {
  // Child: the proxy under test. argv: proxy DIR UPSTREAM_PORT BURN_US
  const [, dir, upstreamPort, burnUs] = args as [string, string, string, string];
  const { startProxy } = await import("../src/capture/proxy/server.ts");
  const { createTestCa } = await import("../test/support/upstream.ts");
  const ca = await createTestCa("OISP relay-close CA");
  fs.writeFileSync(path.join(dir, "proxy-ca.pem"), ca.certPem);
  const burn = Number(burnUs) / 1000;
  const spin = () => {
    const end = performance.now() + burn;
    while (performance.now() < end);
  };
  const proxy = await startProxy({
    listen: { host: "127.0.0.1", port: 0 },
    tlsMitm: true,
    allTraffic: false,
    issuer: ca,
    isAiHost: (h) => h === "api.openai.com",
    upstreamCa: [fs.readFileSync(path.join(dir, "upstream-ca.pem"), "utf8")],
    resolve: new Map([["api.openai.com:443", `127.0.0.1:${upstreamPort}`]]),
    tap: { open() {}, data: () => burn > 0 && spin(), close() {} },
    lookupProcess: async () => undefined,
    log: (level, msg) => level !== "debug" && console.error(`[proxy ${level}] ${msg}`),
  });
  console.log(`PORT ${proxy.address.port}`);
  process.on("SIGTERM", () => {
    console.log(`STATS ${JSON.stringify(proxy.stats())}`);
    process.exit(0);
  });
} else {
  const conns = opt("conns", 1000);
  const streams = opt("streams", 200);
  const requests = opt("requests", 20_000);
  const burnUs = opt("burn-us", 300);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-relay-close-"));
  const upstream = await startUpstream(dir, { node: args.includes("--node") });
  const direct = args.includes("--direct");
  const child = Bun.spawn([process.execPath, import.meta.path, "proxy", dir, String(upstream.port), String(burnUs)], { stdout: "pipe", stderr: "inherit", env: process.env });
  const reader = child.stdout.getReader();
  let out = "";
  while (!/PORT (\d+)/.test(out)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`proxy exited: ${out}`);
    out += new TextDecoder().decode(value);
  }
  const port = Number(/PORT (\d+)/.exec(out)![1]);
  const target: Target = direct ? { name: "direct", upstreamPort: upstream.port, servername: "api.openai.com", ca: upstream.caPem } : {
    name: "proxy",
    upstreamPort: upstream.port,
    servername: "api.openai.com",
    ca: fs.readFileSync(path.join(dir, "proxy-ca.pem"), "utf8"),
    proxy: { port, authority: "api.openai.com:443" },
  };
  try {
    const common = { target, mode: "keepalive" as const, requestTimeoutMs: 60_000, deadlineMs: 240_000 };
    const t0 = performance.now();
    const [sse, json] = await Promise.all([
      streams > 0 ? runScenario({ ...common, concurrency: streams, total: streams, stream: { chunks: 100, intervalMs: 50 } }) : undefined,
      runScenario({ ...common, concurrency: conns - streams, total: requests - streams }),
    ]);
    const wall = performance.now() - t0;
    const times = [...(json.errorTimesMs ?? []), ...(sse?.errorTimesMs ?? [])].sort((a, b) => a - b);
    console.log(
      `${target.name}, upstream ${args.includes("--node") ? "node:http" : "Bun.serve"}, ${conns} conns, ${streams} streams, ${requests} requests, burn ${burnUs} us/chunk: ` +
        `json ok ${json.ok} errors ${JSON.stringify(json.errors)}; sse ok ${sse?.ok ?? 0} errors ${JSON.stringify(sse?.errors ?? {})}; ` +
        `json run ${json.durationMs.toFixed(0)} ms, wall ${wall.toFixed(0)} ms${times.length ? `, errors at ${times[0]}..${times.at(-1)} ms` : ""}`,
    );
  } finally {
    child.kill("SIGTERM");
    for (let r = await reader.read(); !r.done; r = await reader.read()) out += new TextDecoder().decode(r.value);
    const stats = /STATS (.*)/.exec(out)?.[1];
    if (stats) console.log(`proxy stats: ${stats}`);
    await upstream.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
