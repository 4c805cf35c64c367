// Paused capture through the real `oisp up`: while paused, a real openai SDK call is relayed (the client
// gets its answer) but nothing is decrypted or stored and the proxy's `paused` counter counts it; `oisp
// pause` and the dashboard's resume route (the same src/control function the tray calls) change the state
// of the running process; the state survives a restart (a new `oisp up` starts paused).
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { runClientScript, runCurl, startE2e, type E2eHarness } from "../support/e2e-harness.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { readEvents, runOisp, runOispOnce, waitFor, waitForPort } from "../support/oisp-process.ts";
import { createWebApp } from "../../src/web/app.ts";
import { captureControlFor } from "../../src/web/ca-control.ts";
import { LiveHub } from "../../src/web/live.ts";
import { allowedHostHeaders } from "../../src/web/security.ts";
import { openStore } from "../../src/store/index.ts";
import { openWebQueries } from "../../src/store/queries.ts";
import { CSRF, HOST } from "../support/web-harness.ts";
import { collectTrayFacts } from "../../src/tray/facts.ts";
import { trayMenu } from "../../src/tray/model.ts";

const sdkClient = path.join(import.meta.dir, "../support/clients/sdk-client.ts");
const url = "https://api.openai.com/v1/chat/completions";
const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const f of cleanups.reverse()) await f();
});

/**
 * What the client trusts: our CA (intercepted) and the test upstream's CA, which plays the public roots a
 * real client has (while paused the client talks TLS with the real host).
 */
function trustBundle(h: E2eHarness): string {
  const file = path.join(h.oisp.home, "client-trust.pem");
  fs.writeFileSync(file, `${h.caPem}\n${fs.readFileSync(h.upstreamCaFile, "utf8")}`);
  return file;
}

function curlCall(h: E2eHarness, who: string) {
  const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `from ${who}` }] });
  return runCurl(["--max-time", "10", "--proxy", h.proxyUrl, "--cacert", trustBundle(h), url, "-H", "content-type: application/json", "-H", "authorization: Bearer sk-test-pause", "-d", body]);
}

async function status(home: string) {
  const r = await runOispOnce(["status", "--json"], { home });
  return JSON.parse(r.output.slice(r.output.indexOf("{"))) as any;
}

/** The dashboard's Control routes for this data dir, with the real captureControlFor. */
function dashboard(home: string) {
  const dbPath = path.join(home, "web.db");
  openStore(dbPath).close();
  const queries = openWebQueries(dbPath);
  const hub = new LiveHub({ dataVersion: () => queries.dataVersion() });
  cleanups.push(() => (hub.close(), queries.close()));
  const app = createWebApp({ queries, dataDir: home, csrfToken: CSRF, allowedHosts: allowedHostHeaders("127.0.0.1", 7777), hub, capture: captureControlFor(home) });
  return (action: string, csrf = CSRF) =>
    app.request(`http://127.0.0.1:7777/control/capture/${action}`, {
      method: "POST",
      headers: { host: HOST, "content-type": "application/x-www-form-urlencoded", "hx-request": "true" },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
}

test("paused: the SDK call is relayed but not recorded and is counted; resumed from the dashboard: recorded again", async () => {
  const h = await startE2e({ hosts: ["api.openai.com"], handler: fakeProviderHandler() });
  cleanups.push(() => h.close());
  const home = h.oisp.home;

  const before = await curlCall(h, "before");
  expect(before.err).toBe("");
  await waitFor("the first call's response", () => (readEvents(h.dbPath).some((e) => e.event_type === "ai.response") ? true : undefined));

  const paused = await runOispOnce(["pause"], { home });
  expect(paused.code, paused.output).toBe(0);
  expect(paused.output).toContain(`Capture paused (oisp up pid ${h.oisp.proc.pid})`);
  const countBefore = readEvents(h.dbPath).length;
  // What the tray shows is read from the same files: the running `oisp up`, paused, one call today.
  const facts = await collectTrayFacts(home, { startWithWindows: false });
  expect(facts).toMatchObject({
    sensor: { running: true, pid: h.oisp.proc.pid },
    capture: { running: true, pid: h.oisp.proc.pid, inSensor: true, stopping: false, clientRejected: 0, pinnedHosts: [] },
    paused: true,
    callsToday: 1,
    lastProvider: "openai",
  });
  expect(facts.ca.exists).toBe(true);
  expect(trayMenu(facts).some((i) => i.kind === "item" && i.action === "resume")).toBe(true);
  // The running process logged it, on stderr and in its log file.
  expect(fs.readFileSync(path.join(home, "logs", "up.log"), "utf8")).toMatch(/Z info  capture paused \(cli\): connections are relayed/);

  // A real openai SDK client, through the proxy, trusting only our CA: it still gets its answer.
  const sdk = await runClientScript(sdkClient, ["openai-chat"], { OISP_PROXY: h.proxyUrl, OISP_CA_FILE: trustBundle(h), OPENAI_API_KEY: "sk-test-paused" });
  expect(sdk.result.id).toBeString();
  expect(sdk.result.usage.total_tokens).toBeGreaterThan(0);

  // The snapshot is rewritten every 2 s: wait for the one that has counted the call.
  const st = await waitFor("the paused counter in the status snapshot", async () => {
    const s = await status(home);
    return s.sensor.snapshot.proxy.stats.paused > 0 ? s : undefined;
  });
  expect(st.capture).toMatchObject({ paused: true, by: "cli" });
  expect(st.sensor.snapshot.capture).toMatchObject({ paused: true });
  expect(st.sensor.snapshot.proxy.stats.paused).toBe(1);
  expect(st.sensor.snapshot.proxy.stats.intercepted).toBe(1); // only the first call was decrypted

  // Wrong CSRF is refused like every Control POST, and changes nothing.
  const post = dashboard(home);
  expect((await post("resume", "wrong")).status).toBe(403);
  expect((await status(home)).capture.paused).toBe(true);
  const resumed = await post("resume");
  expect(resumed.status).toBe(200);
  const html = await resumed.text();
  expect(html).toContain(`Capture resumed (oisp up pid ${h.oisp.proc.pid})`);
  expect(html).toContain('data-paused="false"');

  const after = await curlCall(h, "after");
  expect(after.err).toBe("");
  const events = await waitFor("the resumed call's response", () => {
    const all = readEvents(h.dbPath);
    return all.filter((e) => e.event_type === "ai.response").length >= 2 ? all : undefined;
  });
  // The paused call left nothing: no event of the SDK client's process, none of its content, no key.
  expect(events.filter((e) => (e.process as { pid?: number })?.pid === sdk.pid)).toEqual([]);
  expect(events.length).toBeGreaterThan(countBefore);
  const text = JSON.stringify(events);
  expect(text).toContain("from before");
  expect(text).toContain("from after");
  expect(text).not.toContain("Paris");
  expect(events.filter((e) => e.event_type === "ai.request")).toHaveLength(2);
}, 60_000);

test("the paused state survives a restart: a new `oisp up` starts paused until `oisp resume`", async () => {
  const h = await startE2e({ hosts: ["api.openai.com"], handler: fakeProviderHandler() });
  const home = h.oisp.home;
  const post = dashboard(home);
  const res = await (await post("pause")).text();
  expect(res).toContain("Capture paused");
  expect(await h.oisp.stop()).toBe(0);

  // Same data dir, same port and flags: a fresh process reads the state before its first connection.
  const again = runOisp(
    ["up", "--listen", `127.0.0.1:${h.proxyPort}`, "--upstream-ca", h.upstreamCaFile, "--resolve", `api.openai.com:443:127.0.0.1:${h.upstream.port}`, "--db", h.dbPath, "--redaction", "full"],
    { home },
  );
  cleanups.push(async () => {
    await again.stop();
    await h.upstream.close();
  });
  await waitForPort(h.proxyPort, again);
  const call = await curlCall(h, "while restarted paused");
  expect(call.err).toBe("");
  expect(JSON.parse(call.out)).toMatchObject({ object: "chat.completion" });
  const st = await waitFor("the paused counter", async () => {
    const s = await status(home);
    return s.sensor.snapshot.proxy.stats.paused > 0 ? s : undefined;
  });
  expect(st.sensor.snapshot.proxy.stats).toMatchObject({ paused: 1, intercepted: 0 });

  const resumed = await runOispOnce(["resume"], { home });
  expect(resumed.code, resumed.output).toBe(0);
  expect(resumed.output).toContain(`Capture resumed (oisp up pid ${again.proc.pid})`);
  const recorded = await curlCall(h, "resumed after restart");
  expect(recorded.err).toBe("");
  const events = await waitFor("the resumed call", () => {
    const all = readEvents(h.dbPath);
    return all.some((e) => e.event_type === "ai.response") ? all : undefined;
  });
  expect(JSON.stringify(events)).toContain("resumed after restart");
  expect(JSON.stringify(events)).not.toContain("while restarted paused");
}, 60_000);
