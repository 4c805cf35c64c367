// Shared set-up of the fault and security tests: a local TLS upstream with a chosen handler, `oisp up` (or
// redirect + sensor) as real processes in front of it, curl run directly and through the proxy so a test
// can compare what a client sees with and without oisp, and readers for the store and `oisp status`.
import fs from "node:fs";
import type http from "node:http";
import path from "node:path";
import { freePort, readEvents, runOisp, runOispOnce, tempHome, waitFor, waitForPort, type OispProcess, type StoredEvent } from "../support/oisp-process.ts";
import { startTlsUpstream, type TlsUpstream } from "../support/upstream.ts";

export const AI_HOST = "api.openai.com";

export interface Upstream extends TlsUpstream {
  caFile: string;
}

export async function upstreamWith(home: string, handler: (req: http.IncomingMessage, res: http.ServerResponse) => void, hosts = [AI_HOST, "example.com"]): Promise<Upstream> {
  const u = await startTlsUpstream({ hosts, handler });
  const caFile = path.join(home, "upstream-ca.pem");
  fs.writeFileSync(caFile, u.caPem);
  return { ...u, caFile };
}

export interface Up {
  oisp: OispProcess;
  home: string;
  port: number;
  proxyUrl: string;
  /** Our CA and the upstream's, so one curl --cacert works direct and through the proxy. */
  bothCas: string;
  dbPath: string;
  jsonlPath: string;
  events(): StoredEvent[];
  stop(): Promise<number>;
}

export async function startUp(upstream: Upstream, o: { home?: string; args?: string[]; hosts?: string[]; dbPath?: string } = {}): Promise<Up> {
  const home = o.home ?? tempHome("oisp-fault-");
  const port = await freePort();
  const dbPath = o.dbPath ?? path.join(home, "events.db");
  const jsonlPath = path.join(home, "events.jsonl");
  const resolve = (o.hosts ?? [AI_HOST, "example.com"]).flatMap((h) => ["--resolve", `${h}:443:127.0.0.1:${upstream.port}`]);
  const oisp = runOisp(["up", "--listen", `127.0.0.1:${port}`, "--upstream-ca", upstream.caFile, ...resolve, "--db", dbPath, "--output", jsonlPath, ...(o.args ?? [])], { home });
  await waitForPort(port, oisp);
  const bothCas = path.join(home, "both-cas.pem");
  fs.writeFileSync(bothCas, fs.readFileSync(path.join(home, "ca", "oisp-ca.pem"), "utf8") + "\n" + upstream.caPem);
  return { oisp, home, port, proxyUrl: `http://127.0.0.1:${port}`, bothCas, dbPath, jsonlPath, events: () => readEvents(dbPath), stop: () => oisp.stop() };
}

export interface CurlResult {
  code: number;
  body: string;
  stderr: string;
}

/** curl to https://HOST:443/PATH, either through `proxy` or straight to the upstream (--connect-to). */
export async function curl(o: { upstream: Upstream; proxy?: string; cacert: string; path?: string; body?: string; maxTime?: number; host?: string; extra?: string[] }): Promise<CurlResult> {
  const host = o.host ?? AI_HOST;
  const args = [
    "curl", "-sS", "--max-time", String(o.maxTime ?? 10), "--cacert", o.cacert, "--http1.1",
    ...(o.proxy ? ["--proxy", o.proxy] : ["--connect-to", `${host}:443:127.0.0.1:${o.upstream.port}`]),
    ...(o.body !== undefined ? ["-H", "content-type: application/json", "-H", "authorization: Bearer sk-proj-FaultTestKey000000000000", "--data-binary", o.body] : []),
    ...(o.extra ?? []),
    `https://${host}${o.path ?? "/v1/chat/completions"}`,
  ];
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
  const [body, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, body, stderr };
}

export const byType = (events: StoredEvent[], type: string) => events.filter((e) => e.event_type === type) as Array<StoredEvent & { data: any }>;

/** Waits for at least `n` events of `type` in the store. */
export function eventsOfType(up: Up, type: string, n = 1, timeoutMs = 10_000) {
  return waitFor(`${n} ${type} events`, () => {
    const found = byType(up.events(), type);
    return found.length >= n ? found : undefined;
  }, timeoutMs);
}

/** `oisp status --json` for this data directory. */
export async function status(home: string, extraEnv: Record<string, string> = {}): Promise<any> {
  const { output } = await runOispOnce(["status", "--json"], { home, env: extraEnv });
  const start = output.indexOf("{");
  return JSON.parse(output.slice(start));
}

export { freePort, readEvents, runOisp, runOispOnce, tempHome, waitFor, waitForPort };
