// `oisp status` against the real `oisp up`: running with live counters after a request through the proxy,
// a locked database showing as the store's error (and recovering), a --config TOML enabling the jsonl
// exporter, and "not running" with exit code 3 once stopped.
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { fakeProviderHandler, FIXED } from "../support/fake-providers.ts";
import { freePort, runOisp, runOispOnce, tempHome, waitFor, waitForPort, type OispProcess } from "../support/oisp-process.ts";
import { startTlsUpstream, type TlsUpstream } from "../support/upstream.ts";

const OPENAI_KEY = "sk-proj-StatusTestKey0123456789abcdefSECRET";

let home: string;
let upstream: TlsUpstream;
let oisp: OispProcess;
let proxyUrl: string;
let dbPath: string;
let exportPath: string;

async function status(args: string[] = ["--json"]) {
  const { code, output } = await runOispOnce(["status", ...args], { home });
  return { code, output, json: args.includes("--json") ? JSON.parse(output) : undefined };
}

/** The snapshot file as written by the running process (polled without spawning a CLI each time). */
function snapshot(): any {
  try {
    return JSON.parse(fs.readFileSync(path.join(home, "run", "status.json"), "utf8"));
  } catch {
    return undefined;
  }
}

async function chat(content: string): Promise<{ code: number; body: string; ms: number }> {
  const started = Date.now();
  const proc = Bun.spawn(
    ["curl", "-sS", "--max-time", "20", "--proxy", proxyUrl, "--cacert", path.join(home, "ca", "oisp-ca.pem"), "https://api.openai.com/v1/chat/completions",
     "-H", `Authorization: Bearer ${OPENAI_KEY}`, "-H", "content-type: application/json",
     "-d", JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }] })],
    { stdout: "pipe", stderr: "pipe", env: { ...process.env, CURL_CA_BUNDLE: "" } },
  );
  const [body, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  return { code, body, ms: Date.now() - started };
}

beforeAll(async () => {
  home = tempHome("oisp-status-");
  upstream = await startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler() });
  const upstreamCa = path.join(home, "upstream-ca.pem");
  fs.writeFileSync(upstreamCa, upstream.caPem);
  // A relative path in the config file is relative to the file, not to the working directory.
  const configDir = path.join(home, "conf");
  fs.mkdirSync(configDir);
  fs.writeFileSync(path.join(configDir, "oisp.toml"), `[export]\nbatch_size = 10\n\n[export.jsonl]\npath = "exported/events.jsonl"\nmax_mb = 5\n`);
  exportPath = path.join(configDir, "exported", "events.jsonl");
  dbPath = path.join(home, "events.db");
  const port = await freePort();
  proxyUrl = `http://127.0.0.1:${port}`;
  oisp = runOisp(
    ["up", "--listen", `127.0.0.1:${port}`, "--upstream-ca", upstreamCa, "--resolve", `api.openai.com:443:127.0.0.1:${upstream.port}`,
     "--db", dbPath, "--config", path.join(configDir, "oisp.toml")],
    { home },
  );
  await waitForPort(port, oisp);
});

afterAll(async () => {
  if (oisp?.proc.exitCode === null) await oisp.stop();
  await upstream?.close();
});

describe("oisp status with oisp up running", () => {
  test("reports the running sensor and proxy, exit 0; the snapshot file is owner-only", async () => {
    const { code, json } = await status();
    expect(code).toBe(0);
    expect(json.running).toBe(true);
    const s = json.sensor.snapshot;
    expect(s.state).toBe("running");
    expect(s.pid).toBe(oisp.proc.pid);
    expect(s.roles).toEqual(["sensor", "proxy"]);
    expect(s.proxy.address).toBe(proxyUrl);
    expect(s.proxy.tls_mitm).toBe(true);
    expect(s.db_path).toBe(dbPath);
    expect(s.exporters.map((e: any) => e.name)).toEqual(["jsonl"]);
    expect(json.ca.exists).toBe(true);
    expect(json.database).toMatchObject({ path: dbPath, exists: true, events: 0 });
    expect(Date.now() - Date.parse(s.updated_at)).toBeLessThan(5000);
    if (process.platform !== "win32") expect(fs.statSync(path.join(home, "run", "status.json")).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.join(home, "run")).filter((f) => f.endsWith(".tmp"))).toEqual([]);

    const human = await status([]);
    expect(human.code).toBe(0);
    expect(human.output).toContain(`Sensor      running · pid ${oisp.proc.pid} · sensor+proxy`);
    expect(human.output).toContain(`Proxy     ${proxyUrl} · TLS interception on`);
    expect(human.output).toContain("Export    jsonl: ok");
  });

  test("counters move after a request through the proxy; the --config jsonl exporter writes the events", async () => {
    const r = await chat("status check");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.body).id).toBe(FIXED.openaiChatId);
    // The snapshot is rewritten every 2 s; wait for one taken after the store and the exporter caught up.
    await waitFor("a response in the status snapshot", () => {
      const s = snapshot();
      return s?.pipeline?.aiResponses >= 1 && s.store.written === s.pipeline.events && s.exporters[0].sent === s.pipeline.events ? true : undefined;
    });

    const { code, json } = await status();
    expect(code).toBe(0);
    const s = json.sensor.snapshot;
    expect(s.proxy.stats.intercepted).toBe(1);
    expect(s.proxy.stats.connectionsTotal).toBeGreaterThanOrEqual(1); // + waitForPort's probe
    expect(s.pipeline).toMatchObject({ aiRequests: 1, aiResponses: 1, internalErrors: 0 });
    expect(s.store).toMatchObject({ written: s.pipeline.events, pending: 0, dropped: 0 });
    expect(s.store.lastError).toBeUndefined();
    const jsonl = s.exporters[0];
    expect(jsonl).toMatchObject({ name: "jsonl", state: "ok", sent: s.pipeline.events, dropped: 0 });
    expect(json.database.events).toBe(s.pipeline.events);
    expect(json.problems).toEqual([]);

    const exported = fs.readFileSync(exportPath, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(exported.length).toBe(s.pipeline.events);
    expect(exported.map((e) => e.event_type)).toEqual(expect.arrayContaining(["ai.request", "ai.response"]));
  });

  test("a locked database shows as the store's error, traffic still flows, and it recovers", async () => {
    const before = snapshot().store.written;
    const lock = new Database(dbPath);
    lock.run("PRAGMA busy_timeout = 0");
    lock.run("BEGIN EXCLUSIVE");
    try {
      const r = await chat("while locked");
      expect(r.code).toBe(0);
      // Inserts run on the relay's thread: a lock must cost the traffic at most the short busy timeout.
      expect(r.ms).toBeLessThan(2500);
      expect(JSON.parse(r.body).id).toBe(FIXED.openaiChatId);
      await waitFor("the store error in the snapshot", () => (/locked|busy/i.test(snapshot()?.store?.lastError ?? "") ? true : undefined), 20_000);
      const { code, json } = await status();
      expect(code).toBe(0);
      expect(json.sensor.snapshot.store.pending).toBeGreaterThan(0);
      expect(json.problems.some((p: string) => /^store: .*(locked|busy)/i.test(p))).toBe(true);
      const human = await status([]);
      expect(human.output).toMatch(/Store .* · error: .*(locked|busy)/i);
      expect(human.output).toMatch(/^! store: /m);
    } finally {
      lock.run("ROLLBACK");
      lock.close();
    }
    await waitFor("the store to catch up", () => {
      const s = snapshot()?.store;
      return s && s.lastError === undefined && s.pending === 0 && s.written > before ? true : undefined;
    }, 20_000);
    const { json } = await status();
    expect(json.sensor.snapshot.store.dropped).toBe(0);
    expect(json.database.events).toBe(json.sensor.snapshot.pipeline.events);
    expect(json.problems).toEqual([]);
  }, 40_000);

  test("after stop: not running, last seen, exit 3", async () => {
    expect(await oisp.stop()).toBe(0);
    const { code, json } = await status();
    expect(code).toBe(3);
    expect(json.running).toBe(false);
    expect(json.sensor.reason).toMatch(/^last seen .*; stopped cleanly$/);
    expect(json.sensor.snapshot.state).toBe("stopped");
    // The final snapshot keeps the last counters for the post-mortem.
    expect(json.sensor.snapshot.pipeline.aiResponses).toBe(2);
    const human = await status([]);
    expect(human.code).toBe(3);
    expect(human.output).toMatch(/^Sensor {6}not running \(last seen /m);
  });
});

describe("--config errors", () => {
  test("a missing or invalid config file is a one-line usage error", async () => {
    const h = tempHome("oisp-status-cfg-");
    const missing = await runOispOnce(["up", "--config", path.join(h, "nope.toml")], { home: h });
    expect(missing.code).toBe(2);
    expect(missing.output).toContain(`--config: cannot read ${path.join(h, "nope.toml")}: ENOENT`);
    fs.writeFileSync(path.join(h, "bad.toml"), "[export.jsonl]\nmax_mb = -1\n");
    const bad = await runOispOnce(["sensor", "--config", path.join(h, "bad.toml")], { home: h });
    expect(bad.code).toBe(2);
    expect(bad.output).toMatch(/--config: .*bad\.toml: \[export\]: .*max_mb/);
  });
});

describe("oisp status with oisp sensor and oisp redirect", () => {
  test("shows the redirector connected to the sensor, then each one stopping", async () => {
    const h = tempHome("oisp-status-split-");
    const statusOf = async () => JSON.parse((await runOispOnce(["status", "--json"], { home: h })).output);
    const sensor = runOisp(["sensor"], { home: h });
    const port = await freePort();
    let redirect: OispProcess | undefined;
    try {
      await waitFor("the sensor's snapshot", () => (fs.existsSync(path.join(h, "run", "status.json")) ? true : undefined));
      redirect = runOisp(["redirect", "--listen", `127.0.0.1:${port}`], { home: h });
      await waitForPort(port, redirect);
      // Both snapshots must have been rewritten after the redirector's hello.
      await waitFor("the redirector connected in both snapshots", () => {
        const read = (f: string) => JSON.parse(fs.readFileSync(path.join(h, "run", f), "utf8"));
        try {
          return read("status.json").ipc.stats.redirectors === 1 && read("redirect-status.json").tap.stats.connected ? true : undefined;
        } catch {
          return undefined;
        }
      });
      const up = await statusOf();
      expect(up.running).toBe(true);
      expect(up.sensor.snapshot.roles).toEqual(["sensor"]);
      expect(up.sensor.snapshot.ipc.path).toBe(path.join(h, "run", "oisp.sock"));
      expect(up.redirector.running).toBe(true);
      expect(up.redirector.snapshot).toMatchObject({ pid: redirect.proc.pid, roles: ["redirect"], proxy: { address: `http://127.0.0.1:${port}`, tls_mitm: false } });
      expect(up.redirector.snapshot.tap).toMatchObject({ path: path.join(h, "run", "oisp.sock"), stats: { connected: true, dropped: 0 } });
      expect(up.problems).toEqual([]);

      expect(await sensor.stop()).toBe(0);
      await waitFor("the redirector to notice", () => {
        try {
          return JSON.parse(fs.readFileSync(path.join(h, "run", "redirect-status.json"), "utf8")).tap.stats.connected === false ? true : undefined;
        } catch {
          return undefined;
        }
      });
      const { code, output } = await runOispOnce(["status"], { home: h });
      expect(code).toBe(3);
      expect(output).toMatch(/^Sensor {6}not running \(last seen .*stopped cleanly\)$/m);
      expect(output).toMatch(/^Redirector {2}running · pid \d+/m);
      expect(output).toContain("! redirector: not connected to the sensor; spooling to disk");
    } finally {
      if (sensor.proc.exitCode === null) await sensor.stop();
      if (redirect && redirect.proc.exitCode === null) await redirect.stop();
    }
    const after = await statusOf();
    expect(after.redirector.running).toBe(false);
    expect(after.redirector.reason).toMatch(/stopped cleanly$/);
  }, 30_000);
});
