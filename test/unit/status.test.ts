// The status snapshot writer (src/sensor/status-file.ts) and how `oisp status` judges a snapshot
// (src/commands/status.ts): atomic owner-only writes, stopped on shutdown, stale by dead pid or age.
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { sensorConfigFrom } from "../../src/commands/sensor.ts";
import { databaseStatus, formatStatus, problemsOf, type StatusReport } from "../../src/commands/status.ts";
import { readRoleStatus } from "../../src/control/role-status.ts";
import { startStatusFile, statusFilePath, writeJsonAtomic, type StatusSnapshot } from "../../src/sensor/status-file.ts";
import { openStore } from "../../src/store/index.ts";
import type { LogLevel } from "../../src/util/log.ts";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "oisp-status-unit-"));

function snap(over: Partial<StatusSnapshot> = {}): StatusSnapshot {
  const at = new Date().toISOString();
  return { format: 1, state: "running", pid: process.pid, roles: ["sensor"], version: "0.1.0", data_dir: "/x", started_at: at, updated_at: at, ...over };
}

async function deadPid(): Promise<number> {
  const p = Bun.spawn(["true"]);
  await p.exited;
  return p.pid;
}

describe("status file writer", () => {
  test("writes at once, owner-only, no temp left; refreshes on the timer; stop marks it stopped with the last counters", async () => {
    const dir = tmp();
    const file = statusFilePath(dir, "sensor");
    let n = 0;
    const w = startStatusFile({ file, dataDir: dir, roles: ["sensor"], log: () => {}, intervalMs: 30, sections: () => ({ db_path: `db-${++n}` }) });
    const first = JSON.parse(fs.readFileSync(file, "utf8"));
    expect(first).toMatchObject({ format: 1, state: "running", pid: process.pid, roles: ["sensor"], data_dir: dir, db_path: "db-1" });
    if (process.platform !== "win32") {
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    }
    await Bun.sleep(120);
    const later = JSON.parse(fs.readFileSync(file, "utf8"));
    expect(Number(later.db_path.slice(3))).toBeGreaterThan(1);
    expect(later.started_at).toBe(first.started_at);
    w.stop();
    const stopped = JSON.parse(fs.readFileSync(file, "utf8"));
    expect(stopped.state).toBe("stopped");
    expect(stopped.stopped_at).toBe(stopped.updated_at);
    const count = n;
    await Bun.sleep(80);
    expect(n).toBe(count); // timer gone
    w.stop();
    expect(n).toBe(count);
    expect(fs.readdirSync(path.dirname(file))).toEqual(["status.json"]);
  });

  test("a write that fails is logged once per distinct error and does not throw", () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, "run"), "a file where the run directory should be");
    const logs: Array<[LogLevel, string]> = [];
    const w = startStatusFile({ file: statusFilePath(dir, "redirect"), dataDir: dir, roles: ["redirect"], log: (l, m) => logs.push([l, m]), intervalMs: 10_000, sections: () => ({}) });
    w.update();
    w.update();
    w.stop();
    expect(logs.length).toBe(1);
    expect(logs[0]![0]).toBe("warn");
    expect(logs[0]![1]).toContain("redirect-status.json");
  });

  test("a sections callback that throws still produces a snapshot envelope", () => {
    const dir = tmp();
    const file = statusFilePath(dir, "sensor");
    const w = startStatusFile({ file, dataDir: dir, roles: ["sensor"], log: () => {}, sections: () => { throw new Error("boom"); } });
    w.stop();
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).toMatchObject({ state: "stopped", pid: process.pid });
  });

  test("writeJsonAtomic replaces a leftover temp file with a different mode", () => {
    const dir = tmp();
    const file = path.join(dir, "s.json");
    fs.writeFileSync(`${file}.${process.pid}.tmp`, "old", { mode: 0o644 });
    writeJsonAtomic(file, { a: 1 });
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).toEqual({ a: 1 });
    if (process.platform !== "win32") expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual(["s.json"]);
  });
});

describe("readRoleStatus", () => {
  const write = (s: unknown) => {
    const file = path.join(tmp(), "status.json");
    fs.writeFileSync(file, typeof s === "string" ? s : JSON.stringify(s));
    return file;
  };

  test("missing, not JSON, not a snapshot", () => {
    expect(readRoleStatus(path.join(tmp(), "none.json"))).toEqual({ running: false, reason: "never started with this data directory" });
    expect(readRoleStatus(write("{half")).reason).toMatch(/not valid JSON/);
    expect(readRoleStatus(write({ pid: "x" })).reason).toMatch(/not a status snapshot/);
    // Each field of the envelope is checked; counters and newer fields are kept as found.
    for (const bad of [{ state: "paused" }, { pid: 0 }, { pid: 1.5 }, { roles: "sensor" }, { roles: [1] }, { version: 1 }, { started_at: null }, { updated_at: 5 }]) {
      expect(readRoleStatus(write(snap(bad as never))).reason).toMatch(/not a status snapshot$/);
    }
    expect(readRoleStatus(write([snap()])).reason).toMatch(/not a status snapshot$/);
    expect(readRoleStatus(write({ ...snap(), newer: { x: 1 } })).snapshot).toMatchObject({ newer: { x: 1 } });
  });

  test("fresh snapshot of a live pid is running", () => {
    const r = readRoleStatus(write(snap()));
    expect(r.running).toBe(true);
    expect(r.snapshot?.pid).toBe(process.pid);
  });

  test("stopped, dead pid, and too old are not running, each saying when it was last seen", async () => {
    const now = Date.now();
    const stopped = readRoleStatus(write(snap({ state: "stopped" })), now);
    expect(stopped.running).toBe(false);
    expect(stopped.reason).toMatch(/^last seen .*, \d+ s ago; stopped cleanly$/);

    const pid = await deadPid();
    const gone = readRoleStatus(write(snap({ pid })), now);
    expect(gone.running).toBe(false);
    expect(gone.reason).toContain(`pid ${pid} ended without a clean stop`);

    const old = new Date(now - 11_000).toISOString();
    const stale = readRoleStatus(write(snap({ updated_at: old })), now);
    expect(stale.running).toBe(false);
    expect(stale.reason).toBe(`last seen ${old}, 11 s ago; pid ${process.pid} stopped reporting`);
    // Just inside the window it is still running.
    expect(readRoleStatus(write(snap({ updated_at: new Date(now - 9_000).toISOString() })), now).running).toBe(true);
  });
});

describe("report", () => {
  const base = (snapshot: StatusSnapshot): StatusReport => ({
    running: true,
    data_dir: "/x",
    sensor: { running: true, snapshot },
    redirector: { running: false, reason: "never started with this data directory" },
    ca: { exists: false },
    database: { path: "/x/oisp.db", exists: false },
    capture: { paused: false },
    logs: "/x/logs",
    problems: [],
  });

  test("a database with 4 KiB pages (made before new ones got 8 KiB): the line says how to convert it, not a problem", () => {
    const r = base(snap({}));
    r.database = { path: "/x/oisp.db", exists: true, size_bytes: 4096, events: 3, page_size: 4096 };
    expect(formatStatus(r)).toContain("/x/oisp.db · 4.0 KiB · 3 events · 4 KiB pages: `oisp db vacuum` with oisp stopped");
    expect(problemsOf(r)).not.toContainEqual(expect.stringContaining("vacuum"));
    r.database.page_size = 8192;
    expect(formatStatus(r)).not.toContain("vacuum");
  });

  test("problems name the store error, drops, a failing exporter and a missing redirector", () => {
    const r = base(
      snap({
        ipc: { path: "/x/run/oisp.sock", stats: { redirectors: 0 } },
        store: { written: 5, dropped: 2, pending: 7, lastError: "database or disk is full" },
        exporters: [
          { name: "webhook", state: "retrying", sent: 1, sentBatches: 1, queued: 3, spooledBatches: 2, spooledBytes: 4096, dropped: 4, failedAttempts: 6, lastError: "HTTP 503" },
        ],
      }),
    );
    expect(problemsOf(r)).toEqual([
      "store: database or disk is full (7 events waiting in memory)",
      "store: 2 events dropped (database unavailable for too long)",
      "export webhook: backend failing, retrying: HTTP 503",
      "export webhook: 4 events dropped",
      "no redirector connected: nothing is being captured (start `oisp redirect`)",
    ]);
    r.problems = problemsOf(r);
    const text = formatStatus(r);
    expect(text).toContain("Store     5 written · 7 pending · 2 dropped · error: database or disk is full");
    expect(text).toContain("Export    webhook: retrying · sent 1 · queued 3 · spooled 2 batches (4.0 KiB) · dropped 4 · 6 failed attempts · last error: HTTP 503");
    expect(text).toContain("Redirector  not running (never started with this data directory)");
    expect(text).toContain("! store: database or disk is full");
    expect(text).toContain("Logs        /x/logs");
  });

  test("in `up` (proxy role) no redirector is expected", () => {
    const r = base(snap({ roles: ["sensor", "proxy"], proxy: { address: "http://127.0.0.1:8080", tls_mitm: true, stats: {}, pinned_hosts: [] } }));
    expect(problemsOf(r)).toEqual([]);
    expect(formatStatus(r)).not.toContain("Redirector");
  });

  test("clients that spoke TLS to the proxy port are a problem with its fix", () => {
    const r = base(snap({ roles: ["sensor", "proxy"], proxy: { address: "http://127.0.0.1:8080", tls_mitm: true, stats: { tlsToProxyPort: 3 }, pinned_hosts: [] } }));
    expect(problemsOf(r)).toEqual(["proxy: 3 clients spoke TLS to the proxy port; set their proxy URL to http://, not https://"]);
  });

  test("paused capture is shown with who paused it and the connections relayed unrecorded", () => {
    const r = base(snap({ roles: ["sensor", "proxy"], proxy: { address: "http://127.0.0.1:8080", tls_mitm: true, stats: { passthrough: 3, paused: 2 }, pinned_hosts: [] } }));
    expect(formatStatus(r)).toContain("Capture     recording");
    r.capture = { paused: true, since: "2026-12-04T20:00:00.000Z", by: "tray" };
    const text = formatStatus(r);
    expect(text).toContain("Capture     PAUSED since 2026-12-04T20:00:00.000Z (tray): connections are relayed, nothing is recorded");
    expect(text).toContain("3 passed through (2 while paused)");
    r.capture = { paused: false, error: "capture-state.json: Unexpected token" };
    expect(problemsOf(r)).toEqual(["capture state: capture-state.json: Unexpected token"]);
  });

  test("databaseStatus counts events through a read-only connection", () => {
    const file = path.join(tmp(), "oisp.db");
    expect(databaseStatus(file)).toEqual({ path: file, exists: false });
    const store = openStore(file);
    store.close();
    const d = databaseStatus(file);
    expect(d).toMatchObject({ path: file, exists: true, events: 0, page_size: 8192 });
    expect(d.size_bytes).toBeGreaterThan(0);
    fs.writeFileSync(file, "not a database, just text long enough to be read as a header...........");
    expect(databaseStatus(file).error).toBeDefined();
  });
});

describe("--config FILE", () => {
  test("turns on the file's exporters, paths relative to the file, and flags win", () => {
    const dir = tmp();
    const file = path.join(dir, "conf", "oisp.toml");
    fs.mkdirSync(path.dirname(file));
    fs.writeFileSync(file, '[export]\nbatch_size = 7\n[export.jsonl]\npath = "out/e.jsonl"\nkeep = 2\n');
    const fromFile = sensorConfigFrom({ config: file }, dir).exportValues!;
    expect(fromFile).toMatchObject({ export: ["jsonl"], "jsonl-path": path.join(dir, "conf", "out", "e.jsonl"), "jsonl-keep": "2", "export-batch-size": "7" });
    const flagged = sensorConfigFrom({ config: file, "jsonl-path": "/elsewhere.jsonl", "export-batch-size": "9", export: ["otlp"] }, dir).exportValues!;
    expect(flagged).toMatchObject({ export: ["jsonl", "otlp"], "jsonl-path": "/elsewhere.jsonl", "jsonl-keep": "2", "export-batch-size": "9" });
  });
});
