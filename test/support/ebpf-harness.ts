// `oisp up --capture ebpf` for end-to-end tests: the fake provider listens on 443 of a random loopback
// address (so clients send the same Host and SNI as to the real API), clients reach it directly (curl
// --resolve, a DNS override for Python and Node) and trust its test CA themselves; oisp gets no CA and no
// proxy. Capture is limited in the kernel to this test process and its descendants (--pid).
import fs from "node:fs";
import path from "node:path";
import type http from "node:http";
import { runOisp, tempHome, waitFor, type OispProcess } from "./oisp-process.ts";
import { startH2Upstream, startTlsUpstream, type TlsUpstream } from "./upstream.ts";

export interface EbpfHarness {
  oisp: OispProcess;
  /** OISP_HOME of the running oisp (for `oisp status`). */
  home: string;
  dbPath: string;
  /** Loopback address the fake provider listens on, port 443. */
  addr: string;
  upstream: TlsUpstream;
  upstreamCaFile: string;
  /** curl arguments that send `host` to the fake provider and trust it. */
  curlArgs(host?: string): string[];
  /** Environment for Python/Node clients: DNS override (see clientEnv) and the CA. */
  clientEnv(hosts?: string[]): Record<string, string>;
  close(): Promise<void>;
}

const supportDir = import.meta.dir;

/** Starts a server on port 443 of a random 127.x.y.z address (retrying taken ones). */
export async function listenOnRandomLoopback(start: (addr: string) => Promise<TlsUpstream>): Promise<{ addr: string; upstream: TlsUpstream }> {
  let last: unknown;
  for (let i = 0; i < 20; i++) {
    const r = () => 1 + Math.floor(Math.random() * 253);
    const addr = `127.${r()}.${r()}.${r()}`;
    try {
      return { addr, upstream: await start(addr) };
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

export async function startOispEbpf(home: string, dbPath: string, args: string[] = []): Promise<OispProcess> {
  const oisp = runOisp(["up", "--capture", "ebpf", "--pid", String(process.pid), "--db", dbPath, ...args], { home });
  await waitFor(
    "oisp up --capture ebpf to attach its probes",
    () => {
      if (oisp.proc.exitCode !== null) throw new Error(`oisp exited (${oisp.proc.exitCode}):\n${oisp.output()}`);
      return oisp.output().includes("Capturing TLS plaintext with eBPF") ? true : undefined;
    },
    60_000,
  );
  return oisp;
}

export async function startEbpfE2e(opts: {
  hosts: string[];
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  h2?: boolean;
  redaction?: "safe" | "full" | "minimal";
  args?: string[];
}): Promise<EbpfHarness> {
  const home = tempHome("oisp-ebpf-");
  const { addr, upstream } = await listenOnRandomLoopback((host) =>
    opts.h2 ? startH2Upstream({ hosts: opts.hosts, handler: opts.handler, listen: { host, port: 443 } }) : startTlsUpstream({ hosts: opts.hosts, handler: opts.handler, listen: { host, port: 443 } }),
  );
  const upstreamCaFile = path.join(home, "upstream-ca.pem");
  fs.writeFileSync(upstreamCaFile, upstream.caPem);
  const dbPath = path.join(home, "events.db");
  let oisp: OispProcess;
  try {
    oisp = await startOispEbpf(home, dbPath, ["--redaction", opts.redaction ?? "full", ...(opts.args ?? [])]);
  } catch (err) {
    await upstream.close();
    throw err;
  }
  return {
    oisp,
    home,
    dbPath,
    addr,
    upstream,
    upstreamCaFile,
    curlArgs: (host = opts.hosts[0]!) => ["--resolve", `${host}:443:${addr}`, "--cacert", upstreamCaFile],
    clientEnv: (hosts = opts.hosts) => directClientEnv(hosts, addr, upstreamCaFile),
    async close() {
      await oisp.stop();
      await upstream.close();
    },
  };
}

/**
 * Environment for a Python or Node client to reach `hosts` at `addr` with no proxy: OISP_TEST_RESOLVE is read
 * by clients/resolve-override.{py,cjs} (loaded through PYTHONPATH's sitecustomize / NODE_OPTIONS --require).
 */
export function directClientEnv(hosts: string[], addr: string, caFile: string): Record<string, string> {
  return {
    OISP_TEST_RESOLVE: hosts.map((h) => `${h}=${addr}`).join(","),
    PYTHONPATH: path.join(supportDir, "clients", "py"),
    NODE_OPTIONS: `--require ${path.join(supportDir, "clients", "resolve-override.cjs")}`,
    SSL_CERT_FILE: caFile,
    NODE_EXTRA_CA_CERTS: caFile,
    HTTPS_PROXY: "",
    https_proxy: "",
    HTTP_PROXY: "",
    http_proxy: "",
  };
}
