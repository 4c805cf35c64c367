// Starts the processes a benchmark compares, each in its own process on loopback: the TLS upstream,
// `oisp up`, mitmdump, a mockttp passthrough proxy and the bare relays. Also reads a process's (or a
// thread's) memory and CPU from /proc.
import fs from "node:fs";
import path from "node:path";
import { freePort, runOisp, waitFor, waitForPort, type OispProcess } from "../../test/support/oisp-process.ts";

export interface Proc {
  pid: number;
  stop(): Promise<void>;
  output(): string;
}

function spawnLogged(cmd: string[], env: Record<string, string> = {}): { proc: ReturnType<typeof Bun.spawn>; output: () => string } {
  let out = "";
  const proc = Bun.spawn(cmd, { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  for (const stream of [proc.stdout, proc.stderr] as ReadableStream<Uint8Array>[]) {
    (async () => {
      const dec = new TextDecoder();
      for await (const c of stream) {
        out += dec.decode(c, { stream: true });
        if (out.length > 1_000_000) out = out.slice(-500_000); // bounded: keep the tail
      }
    })();
  }
  return { proc, output: () => out };
}

async function stopProc(proc: ReturnType<typeof Bun.spawn>, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (proc.exitCode !== null) return;
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
  await proc.exited;
  clearTimeout(timer);
}

export interface Upstream extends Proc {
  port: number;
  caPem: string;
  caFile: string;
}

/** `node`: serve with node:http over node:tls instead of Bun.serve (also OISP_BENCH_UPSTREAM=node). */
export async function startUpstream(dir: string, opts: { node?: boolean } = {}): Promise<Upstream> {
  const node = opts.node ?? process.env.OISP_BENCH_UPSTREAM === "node";
  const { proc, output } = spawnLogged([process.execPath, path.join(import.meta.dir, "upstream-server.ts"), dir, ...(node ? ["--node"] : [])]);
  const port = await waitFor("bench upstream", () => {
    if (proc.exitCode !== null) throw new Error(`upstream exited: ${output()}`);
    const m = /PORT (\d+)/.exec(output());
    return m ? Number(m[1]) : undefined;
  });
  const caFile = path.join(dir, "upstream-ca.pem");
  return { pid: proc.pid, port, caFile, caPem: fs.readFileSync(caFile, "utf8"), output, stop: () => stopProc(proc) };
}

export interface OispUnderTest extends Proc {
  port: number;
  caPem: string;
  dbPath: string;
  home: string;
  oisp: OispProcess;
}

/** `cliDir`: run the oisp of another checkout (its src/cli.ts) instead of this tree's or OISP_BIN's. */
export async function startOispUp(dir: string, upstream: Upstream, extra: string[] = [], opts: { cliDir?: string; env?: Record<string, string> } = {}): Promise<OispUnderTest> {
  const home = fs.mkdtempSync(path.join(dir, "oisp-home-"));
  const port = await freePort();
  const dbPath = path.join(home, "events.db");
  const oisp = runOisp(
    ["up", "--listen", `127.0.0.1:${port}`, "--upstream-ca", upstream.caFile, "--resolve", `api.openai.com:443:127.0.0.1:${upstream.port}`, "--db", dbPath, ...extra],
    { home, env: opts.env, command: opts.cliDir ? [process.execPath, path.join(opts.cliDir, "src/cli.ts")] : undefined },
  );
  await waitForPort(port, oisp);
  return {
    pid: oisp.proc.pid,
    port,
    dbPath,
    home,
    oisp,
    caPem: fs.existsSync(path.join(home, "ca", "oisp-ca.pem")) ? fs.readFileSync(path.join(home, "ca", "oisp-ca.pem"), "utf8") : "",
    output: oisp.output,
    stop: async () => {
      await stopProc(oisp.proc, "SIGINT");
    },
  };
}

/**
 * The two roles as separate processes: `oisp sensor` and `oisp redirect --tls-mitm` over the unix socket.
 * `pid` is the redirector's (the process in the traffic's path); `sensorPid` the sensor's.
 */
export async function startOispSplit(dir: string, upstream: Upstream): Promise<OispUnderTest & { sensorPid: number }> {
  const home = fs.mkdtempSync(path.join(dir, "oisp-split-"));
  const init = runOisp(["ca", "init"], { home });
  if ((await init.proc.exited) !== 0) throw new Error(`oisp ca init: ${init.output()}`);
  const dbPath = path.join(home, "events.db");
  const sensor = runOisp(["sensor", "--db", dbPath], { home });
  await waitFor("sensor socket", () => {
    if (sensor.proc.exitCode !== null) throw new Error(`sensor exited: ${sensor.output()}`);
    return fs.existsSync(path.join(home, "run", "oisp.sock")) ? true : undefined;
  });
  const port = await freePort();
  const redirect = runOisp(
    ["redirect", "--mode", "proxy", "--tls-mitm", "--listen", `127.0.0.1:${port}`, "--upstream-ca", upstream.caFile, "--resolve", `api.openai.com:443:127.0.0.1:${upstream.port}`],
    { home },
  );
  await waitForPort(port, redirect);
  return {
    pid: redirect.proc.pid,
    sensorPid: sensor.proc.pid,
    port,
    dbPath,
    home,
    oisp: redirect,
    caPem: fs.readFileSync(path.join(home, "ca", "oisp-ca.pem"), "utf8"),
    output: () => redirect.output() + sensor.output(),
    stop: async () => {
      await stopProc(redirect.proc, "SIGINT");
      await stopProc(sensor.proc, "SIGINT");
    },
  };
}

export interface ThirdPartyProxy extends Proc {
  port: number;
  caPem: string;
}

/** Debian's mitmdump as a plain explicit proxy: verifies the upstream against its CA, logs nothing per flow. */
export async function startMitmdump(dir: string, upstream: Upstream): Promise<ThirdPartyProxy> {
  const confdir = fs.mkdtempSync(path.join(dir, "mitmproxy-"));
  const port = await freePort();
  const { proc, output } = spawnLogged([
    "mitmdump",
    "--listen-host", "127.0.0.1",
    "--listen-port", String(port),
    "--set", `confdir=${confdir}`,
    "--set", `ssl_verify_upstream_trusted_ca=${upstream.caFile}`,
    "--set", "stream_large_bodies=1",
    "--set", "flow_detail=0",
    "-q",
  ]);
  await waitFor("mitmdump", async () => {
    if (proc.exitCode !== null) throw new Error(`mitmdump exited: ${output()}`);
    return fs.existsSync(path.join(confdir, "mitmproxy-ca-cert.pem")) ? true : undefined;
  }, 30_000);
  await waitForPort(port);
  return { pid: proc.pid, port, caPem: fs.readFileSync(path.join(confdir, "mitmproxy-ca-cert.pem"), "utf8"), output, stop: () => stopProc(proc) };
}

/**
 * A relay script in bench/lib run as its own Bun process. They share one contract:
 * `bun bench/lib/SCRIPT DIR UPSTREAM_PORT UPSTREAM_CA` writes DIR/CA_FILE (the CA clients must trust)
 * and prints "PORT <n>".
 */
async function startRelayScript(label: string, script: string, caFile: string, dir: string, upstream: Upstream, lead: string[] = []): Promise<ThirdPartyProxy> {
  const { proc, output } = spawnLogged([process.execPath, path.join(import.meta.dir, script), ...lead, dir, String(upstream.port), upstream.caFile]);
  const port = await waitFor(label, () => {
    if (proc.exitCode !== null) throw new Error(`${label} exited: ${output()}`);
    const m = /PORT (\d+)/.exec(output());
    return m ? Number(m[1]) : undefined;
  }, 30_000);
  return { pid: proc.pid, port, caPem: fs.readFileSync(path.join(dir, caFile), "utf8"), output, stop: () => stopProc(proc) };
}

/** mockttp (npm) as a passthrough proxy, in its own Bun process (bench/lib/mockttp-proxy.ts). */
export const startMockttp = (dir: string, upstream: Upstream) => startRelayScript("mockttp", "mockttp-proxy.ts", "mockttp-ca.pem", dir, upstream);

/** bench/lib/bare-relay.ts: a bare TLS-terminating relay on node:tls, the floor for oisp's relay. */
export const startBareRelay = (dir: string, upstream: Upstream) => startRelayScript("bare relay", "bare-relay.ts", "bare-relay-ca.pem", dir, upstream);

/**
 * bench/lib/native-relay.ts: a TLS-terminating relay on Bun's native sockets. No CONNECT: clients dial its
 * port as if it were the upstream.
 */
export const startNativeRelay = (dir: string, upstream: Upstream) => startRelayScript("native relay", "native-relay.ts", "native-relay-ca.pem", dir, upstream);

/** bench/lib/peek-relay.ts MODE: a capture-less relay that peeks the ClientHello, then starts TLS its MODE's way. */
export const startPeekRelay = (dir: string, upstream: Upstream, mode: string) =>
  startRelayScript(`peek relay ${mode}`, "peek-relay.ts", `peek-relay-${mode}-ca.pem`, dir, upstream, [mode]);

export interface ProcSample {
  rssMb: number;
  /** Peak resident set since the process started (VmHWM). */
  peakRssMb: number;
  /** user + system CPU seconds so far. */
  cpuSec: number;
}

const TICKS = 100; // USER_HZ on Linux

/** user + system CPU seconds from a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line. */
export function statCpuSec(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS; // utime, stime
}

/** user + system CPU seconds of one thread of `pid` (NaN once gone). */
export function threadCpuSec(pid: number, tid: number): number {
  try {
    return statCpuSec(fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"));
  } catch {
    return NaN;
  }
}

/** A "Key:   N kB" line of /proc/<pid>/status in MB (0 when absent). */
export function statusMb(status: string, key: string): number {
  return Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) / 1024;
}

/** Memory and CPU of `pid` from /proc (Linux). Undefined once the process is gone. */
export function sample(pid: number): ProcSample | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const cpuSec = statCpuSec(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
    return { rssMb: statusMb(status, "VmRSS"), peakRssMb: statusMb(status, "VmHWM"), cpuSec };
  } catch {
    return undefined;
  }
}
