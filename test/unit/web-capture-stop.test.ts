// "Stop capture" on /control: the real captureControlFor against status files and processes, through
// app.request (CSRF + Host gates), and once end to end against a real `oisp redirect --mode proxy`.
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { stopRequestPath } from "../../src/control/stop-request.ts";
import { openStore } from "../../src/store/index.ts";
import { openWebQueries } from "../../src/store/queries.ts";
import { createWebApp } from "../../src/web/app.ts";
import { captureControlFor } from "../../src/web/ca-control.ts";
import { LiveHub } from "../../src/web/live.ts";
import { allowedHostHeaders } from "../../src/web/security.ts";
import { statusFilePath, writeJsonAtomic } from "../../src/sensor/status-file.ts";
import { freePort, runOisp, tempHome, waitFor } from "../support/oisp-process.ts";
import { CSRF, HOST } from "../support/web-harness.ts";

const cleanups: Array<() => void> = [];
afterAll(() => cleanups.forEach((f) => f()));

function controlApp(platform: NodeJS.Platform, signal?: (pid: number, sig: "SIGINT") => void) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-stop-"));
  const dbPath = path.join(dir, "oisp.db");
  const store = openStore(dbPath);
  const queries = openWebQueries(dbPath);
  const hub = new LiveHub({ dataVersion: () => queries.dataVersion() });
  const app = createWebApp({
    queries,
    dataDir: dir,
    csrfToken: CSRF,
    allowedHosts: allowedHostHeaders("127.0.0.1", 7777),
    hub,
    capture: captureControlFor(dir, platform, signal),
  });
  cleanups.push(() => {
    hub.close();
    queries.close();
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const post = (url: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
    app.request(`http://127.0.0.1:7777${url}`, {
      method: "POST",
      headers: { host: HOST, "content-type": "application/x-www-form-urlencoded", "hx-request": "true", ...headers },
      body: new URLSearchParams(form).toString(),
    });
  const get = (url: string) => app.request(`http://127.0.0.1:7777${url}`, { headers: { host: HOST } });
  return { dir, app, post, get };
}

/** A status file as `oisp redirect` writes it, for a pid that exists (this test process's child). */
function writeRedirectStatus(dir: string, pid: number, state: "running" | "stopped") {
  const at = new Date().toISOString();
  writeJsonAtomic(statusFilePath(dir, "redirect"), {
    format: 1, state, pid, roles: ["redirect"], version: "test", data_dir: dir, started_at: at, updated_at: at,
    ...(state === "stopped" && { stopped_at: at }),
  });
}

describe("stop capture through the routes", () => {
  test("needs the CSRF token and an allowed Host, like every POST", async () => {
    const sent: number[] = [];
    const h = controlApp("linux", (pid) => sent.push(pid));
    const sleeper = Bun.spawn(["sleep", "30"]);
    cleanups.push(() => sleeper.kill());
    writeRedirectStatus(h.dir, sleeper.pid, "running");
    expect((await h.post("/control/capture/stop", {})).status).toBe(403);
    expect((await h.post("/control/capture/stop", { _csrf: "wrong" })).status).toBe(403);
    expect((await h.post("/control/capture/stop", { _csrf: CSRF }, { host: "evil.example:7777" })).status).toBe(421);
    expect(sent).toEqual([]);
    // With both, the same request goes through.
    expect((await h.post("/control/capture/stop", { _csrf: CSRF })).status).toBe(200);
    expect(sent).toEqual([sleeper.pid]);
  });

  test("POSIX: SIGINT to the pid in redirect-status.json, 'stopping…' until the file says stopped", async () => {
    const sent: Array<[number, string]> = [];
    const h = controlApp("linux", (pid, sig) => sent.push([pid, sig]));
    const sleeper = Bun.spawn(["sleep", "30"]);
    cleanups.push(() => sleeper.kill());
    // Not running yet: the button is absent and stopping is refused.
    expect(await (await h.get("/control")).text()).not.toContain("/control/capture/stop");
    const refused = await (await h.post("/control/capture/stop", { _csrf: CSRF })).text();
    expect(refused).toContain("not running");
    expect(sent).toEqual([]);

    writeRedirectStatus(h.dir, sleeper.pid, "running");
    expect(await (await h.get("/control")).text()).toContain(`running, pid ${sleeper.pid}`);
    const res = await h.post("/control/capture/stop", { _csrf: CSRF });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(sent).toEqual([[sleeper.pid, "SIGINT"]]);
    expect(html).toContain('data-state="stopping"');
    expect(html).toContain('hx-get="/control/capture"'); // keeps polling
    expect(await (await h.get("/control/capture")).text()).toContain("Stopping…");

    writeRedirectStatus(h.dir, sleeper.pid, "stopped");
    const after = await (await h.get("/control/capture")).text();
    expect(after).toContain('data-state="stopped"');
    expect(after).not.toContain('hx-get="/control/capture"'); // polling ends
    expect(after).not.toContain("/control/capture/stop");
  });

  test("Windows: writes a stop request for that pid instead of signalling", async () => {
    const sent: number[] = [];
    const h = controlApp("win32", (pid) => sent.push(pid));
    const sleeper = Bun.spawn(["sleep", "30"]);
    cleanups.push(() => sleeper.kill());
    writeRedirectStatus(h.dir, sleeper.pid, "running");
    const html = await (await h.post("/control/capture/stop", { _csrf: CSRF })).text();
    expect(html).toContain('data-state="stopping"');
    expect(sent).toEqual([]);
    expect(JSON.parse(fs.readFileSync(stopRequestPath(h.dir), "utf8"))).toEqual({ pid: sleeper.pid });
  });
});

describe("stop capture, real process", () => {
  for (const platform of ["linux", "win32"] as const) {
    test(`a running \`oisp redirect --mode proxy\` exits 0 after POST stop (${platform === "win32" ? "request file" : "SIGINT"})`, async () => {
      const home = tempHome("oisp-stop-proc-");
      cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
      const port = await freePort();
      const p = runOisp(["redirect", "--mode", "proxy", "--listen", `127.0.0.1:${port}`], { home });
      cleanups.push(() => p.proc.kill());
      const dbPath = path.join(home, "web.db");
      openStore(dbPath).close();
      const queries = openWebQueries(dbPath);
      const hub = new LiveHub({ dataVersion: () => queries.dataVersion() });
      cleanups.push(() => (hub.close(), queries.close()));
      // The default signaller: a real process.kill on POSIX; the win32 path only writes the request file.
      const app = createWebApp({ queries, dataDir: home, csrfToken: CSRF, allowedHosts: allowedHostHeaders("127.0.0.1", 7777), hub, capture: captureControlFor(home, platform) });
      // The status file is what makes the dashboard offer "Stop capture": the redirector listens for both
      // kinds of stop before writing it (see stop-at-start.test.ts), so it is the event to wait for.
      await waitFor("redirect status file", () => {
        if (p.proc.exitCode !== null) throw new Error(`oisp redirect exited early:\n${p.output()}`);
        return fs.existsSync(statusFilePath(home, "redirect")) ? true : undefined;
      });
      const res = await app.request("http://127.0.0.1:7777/control/capture/stop", {
        method: "POST",
        headers: { host: HOST, "content-type": "application/x-www-form-urlencoded", "hx-request": "true" },
        body: new URLSearchParams({ _csrf: CSRF }).toString(),
      });
      // A real redirector may finish its SIGINT shutdown before the route re-reads its status file, so the
      // answer is "stopping" or already "stopped" (the "stopping" state itself is pinned by the tests above).
      expect(await res.text()).toMatch(/data-state="(stopping|stopped)"/);
      // A stop takes tens of ms under load (SIGINT), or up to one 1 s poll (request file): 10 s only bounds
      // how long a lost stop takes to report.
      const code = await Promise.race([p.proc.exited, Bun.sleep(10_000).then(() => "timeout")]);
      expect(code, p.output()).toBe(0);
      const state = await (await app.request("http://127.0.0.1:7777/control/capture", { headers: { host: HOST } })).text();
      expect(state).toContain('data-state="stopped"');
    }, 20_000);
  }
});
