// `oisp redirect` and `oisp sensor` as separate processes over the unix socket, killed mid-load.
// Sensor killed and restarted: the redirector keeps relaying, spools while the sensor is away and replays
// when it is back; events are neither lost nor duplicated (stable ids; the JSONL has no duplicates).
// Redirector killed: the connections it carried fail, new ones after a restart work and are recorded.
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { exchange, openConnection, requestBytes, runScenario, type Target } from "../../bench/lib/loadgen.ts";
import { AI_HOST, byType, freePort, readEvents, runOisp, runOispOnce, tempHome, upstreamWith, waitFor, waitForPort, type Upstream } from "../fault/harness.ts";
import type { OispProcess } from "../support/oisp-process.ts";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

interface Roles {
  home: string;
  upstream: Upstream;
  dbPath: string;
  jsonlPath: string;
  port: number;
  target: Target;
  sensor: OispProcess;
  redirect: OispProcess;
  startSensor(): Promise<OispProcess>;
  startRedirect(): Promise<OispProcess>;
}

async function roles(): Promise<Roles> {
  const home = tempHome("oisp-fault-roles-");
  expect((await runOispOnce(["ca", "init"], { home })).code).toBe(0);
  const upstream = await upstreamWith(home, (req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: "chatcmpl-r", object: "chat.completion", model: "gpt-4o-mini", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }] }));
    });
  });
  cleanups.push(() => upstream.close());
  const dbPath = path.join(home, "events.db");
  const jsonlPath = path.join(home, "events.jsonl");
  const port = await freePort();
  const sock = path.join(home, "run", "oisp.sock");
  const r: Roles = {
    home,
    upstream,
    dbPath,
    jsonlPath,
    port,
    target: { name: "oisp", upstreamPort: upstream.port, proxy: { port, authority: `${AI_HOST}:443` }, servername: AI_HOST, ca: fs.readFileSync(path.join(home, "ca", "oisp-ca.pem"), "utf8") },
    sensor: undefined as never,
    redirect: undefined as never,
    async startSensor() {
      fs.rmSync(sock, { force: true });
      const p = runOisp(["sensor", "--db", dbPath, "--output", jsonlPath], { home });
      cleanups.push(() => p.proc.exitCode === null && p.stop());
      await waitFor("sensor socket", () => (fs.existsSync(sock) ? true : undefined));
      return (r.sensor = p);
    },
    async startRedirect() {
      const p = runOisp(["redirect", "--mode", "proxy", "--tls-mitm", "--listen", `127.0.0.1:${port}`, "--upstream-ca", upstream.caFile, "--resolve", `${AI_HOST}:443:127.0.0.1:${upstream.port}`], { home });
      cleanups.push(() => p.proc.exitCode === null && p.stop());
      await waitForPort(port, p);
      return (r.redirect = p);
    },
  };
  await r.startSensor();
  await r.startRedirect();
  return r;
}

const jsonlIds = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { event_id: string }).event_id) : []);

describe("redirect + sensor as separate processes", () => {
  test("the sensor is killed and restarted: relay unaffected, calls made while it is away are spooled and replayed, none twice", async () => {
    const r = await roles();
    const successes = () => byType(readEvents(r.dbPath), "ai.response").filter((e) => e.data.success === true).length;
    const first = await runScenario({ target: r.target, mode: "new", concurrency: 2, total: 20 });
    expect(first.errors).toEqual({});
    await waitFor("first calls stored", () => (successes() >= 20 ? true : undefined));

    r.sensor.proc.kill("SIGKILL");
    await r.sensor.proc.exited;
    // The sensor is gone: calls still work; the redirector spools what it captures.
    const whileAway = await runScenario({ target: r.target, mode: "new", concurrency: 2, total: 30 });
    expect(whileAway.errors).toEqual({});
    expect(whileAway.ok).toBe(30);
    expect(fs.readdirSync(path.join(r.home, "spool")).some((f) => f.endsWith(".spool"))).toBe(true);

    await r.startSensor();
    await waitFor("spooled calls replayed and stored", () => (successes() >= 50 ? true : undefined), 15_000);
    const after = await runScenario({ target: r.target, mode: "keepalive", concurrency: 2, total: 20 });
    expect(after.errors).toEqual({});
    await waitFor("later calls stored", () => (successes() >= 70 ? true : undefined), 15_000);
    await Bun.sleep(500);
    expect(successes()).toBe(70);
    const ids = jsonlIds(r.jsonlPath);
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.length).toBe(new Set(ids).size); // no event written twice
  }, 60_000);

  // Frames already handed to a sensor that is then SIGKILLed (in its socket buffer, its decoders or its 100 ms
  // store batch) are kept by the redirector until the sensor acknowledges their connection as stored; after the
  // restart they are resent from each connection's open frame and the stable event ids dedupe what was already
  // stored. Before acks, a run of 240 calls with a kill in the middle lost 5-6.
  test("calls in flight at the moment the sensor is SIGKILLed are not lost, none stored or exported twice", async () => {
    const r = await roles();
    const total = 240;
    const load = runScenario({ target: r.target, mode: "new", concurrency: 4, total, requestTimeoutMs: 10_000 });
    await waitFor("some calls stored", () => (byType(readEvents(r.dbPath), "ai.response").length >= 40 ? true : undefined));
    // One keep-alive connection stays open across the kill. A connection is acknowledged once closed and
    // stored, so its frames are surely unconfirmed when the sensor dies and must be resent; the load's calls
    // may all be confirmed by then (a sensor commits a lone call at once).
    const held = await openConnection(r.target);
    expect((await exchange(held, requestBytes(undefined, false), 10_000)).status).toBe(200);
    r.sensor.proc.kill("SIGKILL");
    await r.sensor.proc.exited;
    await Bun.sleep(700);
    await r.startSensor();
    const res = await load;
    expect(res.ok).toBe(total);
    held.end();
    // The restarted sensor decodes what was resent; on a loaded machine that can take seconds (a fixed 3 s wait
    // once saw 177 of 241 in the full suite). A lost call never arrives: the wait then fails with the count.
    const storedCount = () => byType(readEvents(r.dbPath), "ai.response").length;
    const t0 = performance.now();
    await waitFor("every call stored", () => (storedCount() >= total + 1 ? true : undefined), 30_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${storedCount()} of ${total + 1}`);
    });
    await Bun.sleep(500); // a replay stored twice would show up now
    const stored = storedCount();
    console.log(`sensor SIGKILL mid-load: ${stored} of ${total + 1} calls stored, the last ${(performance.now() - t0).toFixed(0)} ms after the load ended`);
    expect(stored).toBe(total + 1);
    const requests = byType(readEvents(r.dbPath), "ai.request").length;
    expect(requests).toBe(total + 1);
    const ids = jsonlIds(r.jsonlPath);
    expect(ids.length).toBe(new Set(ids).size); // replays re-derive the same ids; the JSONL skips them
    expect(ids.length).toBe(readEvents(r.dbPath).length);
    // The redirector did resend what the killed sensor had not confirmed (else this test proves nothing).
    const tapStats = () => (JSON.parse(fs.readFileSync(path.join(r.home, "run", "redirect-status.json"), "utf8")) as { tap: { stats: { resent: number; acks: boolean; dropped: number } } }).tap.stats;
    // `resent` is counted when the sensor goes away, so a snapshot taken before the reconnection has it too: wait
    // for one taken after (the snapshot is rewritten every 2 s, the redirector may reconnect late in the sleep above).
    const tap = await waitFor("redirector status with a resend, reconnected", () => {
      const s = tapStats() as ReturnType<typeof tapStats> & { connected: boolean };
      return s.resent > 0 && s.connected ? s : undefined;
    }, 5000);
    console.log(`frames resent after the kill: ${tap.resent}`);
    expect(tap).toMatchObject({ acks: true, dropped: 0 });
  }, 60_000);

  test("the sensor is stopped (SIGTERM) and restarted mid keep-alive load: every call stored once, none cut short, JSONL matches", async () => {
    const r = await roles();
    const total = 300;
    const load = runScenario({ target: r.target, mode: "keepalive", concurrency: 4, total, requestTimeoutMs: 10_000 });
    await waitFor("some calls stored", () => (byType(readEvents(r.dbPath), "ai.response").length >= 40 ? true : undefined));
    r.sensor.proc.kill("SIGTERM");
    await r.sensor.proc.exited;
    await r.startSensor();
    const res = await load;
    expect(res.ok).toBe(total);
    // The keep-alive connections are still open: they were resent from their open to the new sensor.
    await waitFor("all calls stored", () => (byType(readEvents(r.dbPath), "ai.response").length >= total ? true : undefined), 15_000);
    await Bun.sleep(500);
    const responses = byType(readEvents(r.dbPath), "ai.response");
    expect(responses.length).toBe(total);
    expect(responses.filter((e) => e.data.success !== true)).toEqual([]);
    const ids = jsonlIds(r.jsonlPath);
    expect(ids.length).toBe(new Set(ids).size);
    expect(ids.length).toBe(readEvents(r.dbPath).length);
  }, 60_000);

  test("the redirector is killed: its connections fail, new connections after a restart work and are recorded", async () => {
    const r = await roles();
    const before = await runScenario({ target: r.target, mode: "keepalive", concurrency: 2, total: 20 });
    expect(before.ok).toBe(20);
    // Connections in flight when it dies see the failure a dead proxy gives: a closed connection.
    const inFlight = runScenario({ target: r.target, mode: "keepalive", concurrency: 4, total: 4000, requestTimeoutMs: 3000, deadlineMs: 4000 });
    await Bun.sleep(300);
    r.redirect.proc.kill("SIGKILL");
    await r.redirect.proc.exited;
    const cut = await inFlight;
    expect(cut.ok).toBeLessThan(4000);
    expect(Object.keys(cut.errors).length).toBeGreaterThan(0);
    for (const e of Object.keys(cut.errors)) expect(e).toMatch(/closed|socket|ECONNREFUSED|ECONNRESET|connect/);

    await r.startRedirect();
    await Bun.sleep(1000);
    const successes = () => byType(readEvents(r.dbPath), "ai.response").filter((e) => e.data.success === true).length;
    const settled = successes();
    const after = await runScenario({ target: r.target, mode: "new", concurrency: 2, total: 20 });
    expect(after.errors).toEqual({});
    expect(after.ok).toBe(20);
    // The calls made after the restart reach the sensor (the new redirector authenticates with the same token).
    await waitFor("calls after the restart stored", () => (successes() >= settled + 20 ? true : undefined), 15_000);
  }, 60_000);
});
