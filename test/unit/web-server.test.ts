// The dashboard server on a real socket: binding rules, the Host check over TCP, the flags the sensor and
// `oisp up` pass, and the controls /control drives (CA over src/ca in a temp dir, start capture).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LiveOutput, StoreOutput } from "../../src/sensor/outputs.ts";
import { openStore } from "../../src/store/index.ts";
import { UsageError } from "../../src/util/args.ts";
import { caControlFor, captureControlFor, elevatedRedirectCommand, psQuote } from "../../src/web/ca-control.ts";
import { startSensorViews } from "../../src/commands/sensor-views.ts";
import { elevatedRedirectArgs } from "../../src/control/capture.ts";
import { startWebServer } from "../../src/web/server.ts";
import { aiExchange } from "../support/event-fixtures.ts";

let dir: string;
let dbPath: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-websrv-"));
  dbPath = path.join(dir, "oisp.db");
  const store = openStore(dbPath);
  store.insertEvents(aiExchange({ tsMs: Date.now() - 1000 }));
  store.close();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("startWebServer", () => {
  test("refuses a non-loopback address without a token", async () => {
    await expect(startWebServer({ host: "0.0.0.0", port: 0, dbPath, dataDir: dir })).rejects.toThrow(/--web-token/);
  });

  test("serves on 127.0.0.1, and the Host check holds over a real socket", async () => {
    const s = await startWebServer({ port: 0, dbPath, dataDir: dir });
    try {
      expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(s.loginUrl).toBe(`${s.url}/`);
      const ok = await fetch(`${s.url}/`);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain("ai.response");
      const rebound = await fetch(`${s.url}/`, { headers: { host: "attacker.example" } });
      expect(rebound.status).toBe(421);
    } finally {
      await s.close();
    }
  });

  test("token mode beyond loopback: login URL carries the token once", async () => {
    const s = await startWebServer({ host: "0.0.0.0", port: 0, dbPath, dataDir: dir, token: "tok-123" });
    try {
      expect(s.loginUrl).toBe(`${s.url}/?token=tok-123`);
      expect((await fetch(`${s.url}/`)).status).toBe(401);
      const login = await fetch(s.loginUrl, { redirect: "manual" });
      expect(login.status).toBe(303);
      const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
      expect((await fetch(`${s.url}/inventory`, { headers: { cookie } })).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  test("a taken port is a one-line error", async () => {
    const s = await startWebServer({ port: 0, dbPath, dataDir: dir });
    try {
      const port = Number(new URL(s.url).port);
      await expect(startWebServer({ port, dbPath, dataDir: dir })).rejects.toThrow(/dashboard cannot listen on 127\.0\.0\.1:\d+/);
    } finally {
      await s.close();
    }
  });
});

describe("startSensorViews (what oisp sensor / oisp up call)", () => {
  test("--web-port starts the dashboard; /control shows the sensor's counters; close stops it", async () => {
    const store = openStore(dbPath);
    const live = new LiveOutput();
    const storeOutput = new StoreOutput(store, () => {});
    const sensor = { live, storeOutput, pipeline: { stats: () => ({ events: 7, connections: 2 }) } };
    const views = await startSensorViews({ flags: { "web-port": "0" }, dataDir: dir, dbPath, sensor, log: () => {}, status: () => ({ proxy: "http://127.0.0.1:9" }) });
    try {
      expect(views.web).toBeDefined();
      const html = await (await fetch(`${views.web!.url}/control`)).text();
      expect(html).toContain("pipeline.events");
      expect(html).toContain("store.written");
      expect(html).toContain("http://127.0.0.1:9");
    } finally {
      await views.close();
      store.close();
    }
    await expect(fetch(`${views.web!.url}/`)).rejects.toThrow();
  });

  test("no view flags: nothing starts; bad ports are usage errors", async () => {
    const sensor = { live: new LiveOutput(), storeOutput: { stats: () => ({}) }, pipeline: { stats: () => ({}) } };
    const none = await startSensorViews({ flags: {}, dataDir: dir, dbPath, sensor, log: () => {} });
    expect(none.web).toBeUndefined();
    await none.close();
    await expect(startSensorViews({ flags: { port: "http" }, dataDir: dir, dbPath, sensor, log: () => {} })).rejects.toBeInstanceOf(UsageError);
    await expect(startSensorViews({ flags: { "web-port": "70000" }, dataDir: dir, dbPath, sensor, log: () => {} })).rejects.toThrow(/--web-port/);
  });
});

describe("controls", () => {
  test("CA status comes from src/ca for this data dir", async () => {
    const status = await caControlFor(dir).status();
    expect(typeof status).toBe("object");
    expect(JSON.stringify(status)).toContain(dir);
  });

  test("start capture outside Windows explains proxy mode and starts nothing", async () => {
    const r = await captureControlFor(dir, "linux").start();
    expect(r.ok).toBe(false);
    expect(r.message).toContain("oisp up");
  });

  test("the elevated PowerShell command quotes paths with spaces and quotes", () => {
    expect(psQuote("C:\\Program Files\\O'Brien\\oisp.exe")).toBe("'C:\\Program Files\\O''Brien\\oisp.exe'");
    const cmd = elevatedRedirectCommand("C:\\Program Files\\oisp\\oisp.exe", elevatedRedirectArgs("C:\\Users\\a b\\AppData\\oisp"));
    // The data dir is an argument: an elevated process does not inherit OISP_HOME.
    expect(cmd).toBe(
      "Start-Process -FilePath 'C:\\Program Files\\oisp\\oisp.exe' -ArgumentList '--data-dir','\"C:\\Users\\a b\\AppData\\oisp\"','redirect','--tls-mitm' -Verb RunAs -WindowStyle Minimized",
    );
    expect(elevatedRedirectCommand("bun.exe", elevatedRedirectArgs("d", ["C:\\src\\cli.ts"]))).toContain("-ArgumentList 'C:\\src\\cli.ts','--data-dir','d','redirect'");
    expect(elevatedRedirectCommand("bun.exe", elevatedRedirectArgs("d", ["C:\\my src\\cli.ts"]))).toContain(`-ArgumentList '"C:\\my src\\cli.ts"','--data-dir'`);
  });
});
