// `oisp up` in front of one local upstream that answers for many provider hosts: every host given is
// --resolve'd to the upstream, whose certificate lists them all. Shared by the e2e-* integration tests.
import fs from "node:fs";
import path from "node:path";
import { freePort, readEvents, runOisp, tempHome, waitFor, waitForPort, type OispProcess, type StoredEvent } from "./oisp-process.ts";
import { startH2Upstream, startTlsUpstream, type TlsUpstream } from "./upstream.ts";
import type http from "node:http";

export interface E2eHarness {
  oisp: OispProcess;
  proxyUrl: string;
  proxyPort: number;
  /** The OISP CA a client must trust to talk through the proxy. */
  caFile: string;
  caPem: string;
  dbPath: string;
  upstream: TlsUpstream & { protocols?: string[] };
  upstreamCaFile: string;
  close(): Promise<void>;
}

export async function startE2e(opts: {
  hosts: string[];
  handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  /** A ready upstream (e.g. the fake Realtime server) instead of one built from `handler`. */
  upstream?: TlsUpstream;
  /** null: no --redaction flag (the test passes its own spelling in args). */
  redaction?: "safe" | "full" | "minimal" | null;
  /** The command that runs proxy + sensor: "up" (default) or its seed alias "record". */
  command?: "up" | "record";
  /** Upstream speaks h2 and HTTP/1.1 (node:http2) instead of HTTP/1.1 only. */
  h2?: boolean;
  /** Extra --resolve entries, e.g. "localhost:11434" → "127.0.0.1:<port>" for plain-HTTP upstreams. */
  resolve?: Record<string, string>;
  args?: string[];
}): Promise<E2eHarness> {
  const home = tempHome("oisp-e2e-");
  const handler = opts.handler ?? ((_req: http.IncomingMessage, res: http.ServerResponse) => res.writeHead(404).end());
  const upstream =
    opts.upstream ??
    (opts.h2 ? await startH2Upstream({ hosts: opts.hosts, handler }) : await startTlsUpstream({ hosts: opts.hosts, handler }));
  const upstreamCaFile = path.join(home, "upstream-ca.pem");
  fs.writeFileSync(upstreamCaFile, upstream.caPem);
  const port = await freePort();
  const dbPath = path.join(home, "events.db");
  const resolve = [
    ...opts.hosts.flatMap((h) => ["--resolve", `${h}:443:127.0.0.1:${upstream.port}`]),
    ...Object.entries(opts.resolve ?? {}).flatMap(([k, v]) => ["--resolve", `${k}:${v}`]),
  ];
  const oisp = runOisp(
    [
      opts.command ?? "up",
      "--listen",
      `127.0.0.1:${port}`,
      "--upstream-ca",
      upstreamCaFile,
      ...resolve,
      "--db",
      dbPath,
      ...(opts.redaction === null ? [] : ["--redaction", opts.redaction ?? "full"]),
      ...(opts.args ?? []),
    ],
    { home },
  );
  await waitForPort(port, oisp);
  const caFile = path.join(home, "ca", "oisp-ca.pem");
  await waitFor("CA file", () => (fs.existsSync(caFile) ? true : undefined));
  return {
    oisp,
    proxyUrl: `http://127.0.0.1:${port}`,
    proxyPort: port,
    caFile,
    caPem: fs.readFileSync(caFile, "utf8"),
    dbPath,
    upstream,
    upstreamCaFile,
    async close() {
      await oisp.stop();
      await upstream.close();
    },
  };
}

export interface ClientRun {
  pid: number;
  result: any;
  stderr: string;
}

/** Runs a client script in its own process (so events are attributed to its pid) and parses its last stdout line. */
export async function runClientScript(script: string, args: string[], env: Record<string, string | undefined>, timeoutMs = 30_000): Promise<ClientRun> {
  const proc = Bun.spawn([process.execPath, script, ...args], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill(), timeoutMs);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${path.basename(script)} ${args.join(" ")} failed (${code}):\n${err}\n${out}`);
  const last = out.trim().split("\n").pop() ?? "null";
  return { pid: proc.pid, result: JSON.parse(last), stderr: err };
}

/** Runs curl with the environment cleared of proxies; returns stdout and the exit code. */
export async function runCurl(args: string[]): Promise<{ pid: number; code: number; out: string; err: string }> {
  const proc = Bun.spawn(["curl", "-sS", ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, CURL_CA_BUNDLE: "", HTTPS_PROXY: "", HTTP_PROXY: "", https_proxy: "", http_proxy: "", NO_PROXY: "" },
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { pid: proc.pid, code, out, err };
}

export type AnyEvent = StoredEvent & { data: any; attrs?: any; process?: any; confidence?: any; related_events?: any };

/** Waits until `pid` has at least `responses` ai.response events; returns all its events, oldest first. */
export async function eventsOfPid(dbPath: string, pid: number, responses = 1, timeoutMs = 15_000): Promise<AnyEvent[]> {
  return waitFor(
    `${responses} ai.response events of pid ${pid}`,
    () => {
      const mine = readEvents(dbPath).filter((e) => (e.process as { pid?: number } | undefined)?.pid === pid) as AnyEvent[];
      return mine.filter((e) => e.event_type === "ai.response").length >= responses ? inCaptureOrder(mine) : undefined;
    },
    timeoutMs,
  );
}

/**
 * Events of the connections whose ai.request matches `mine`, once they have `responses` ai.response
 * events: for tests that must not depend on process attribution (a lookup can time out on a loaded
 * machine, and the event then has no process), e.g. many streams tagged with a run id.
 */
export async function eventsOfConnections(dbPath: string, mine: (req: AnyEvent) => boolean, responses: number, timeoutMs = 15_000): Promise<AnyEvent[]> {
  return waitFor(
    `${responses} ai.response events on the tagged connections`,
    () => {
      const all = readEvents(dbPath) as AnyEvent[];
      const conns = new Set(all.filter((e) => e.event_type === "ai.request" && mine(e)).map((e) => e.attrs?.conn_id as string));
      const theirs = all.filter((e) => conns.has(e.attrs?.conn_id as string));
      return theirs.filter((e) => e.event_type === "ai.response").length >= responses ? inCaptureOrder(theirs) : undefined;
    },
    timeoutMs,
  );
}

/**
 * The store orders by millisecond, then by id (a hash): events of the same millisecond come out in any
 * order. Sorted here by their microsecond timestamp, then by their index within one response.
 */
function inCaptureOrder(events: AnyEvent[]): AnyEvent[] {
  const index = (e: AnyEvent) => (e.attrs?.tool_call_index as number | undefined) ?? (e.attrs?.message_index as number | undefined) ?? 0;
  return events
    .map((e, i) => ({ e, i }))
    .sort((a, b) => (a.e.ts as string).localeCompare(b.e.ts as string) || index(a.e) - index(b.e) || a.i - b.i)
    .map(({ e }) => e);
}

export const ofType = (events: AnyEvent[], type: string): AnyEvent[] => events.filter((e) => e.event_type === type);

/** Every byte the sensor wrote next to the database (db, WAL, JSONL), for "secret never stored" checks. */
export function storedBytes(dbPath: string): string {
  const dir = path.dirname(dbPath);
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith("events."))
    .map((f) => fs.readFileSync(path.join(dir, f)).toString("latin1"))
    .join("\n");
}
