// `oisp db vacuum` (src/store/repack.ts): an existing 4 KiB-page database rewritten in 8 KiB pages, every event
// still there and readable, the rollups and the store's memory of requests still right; refused while another
// connection has the database open, or without the disk space; the original untouched when it refuses.
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore } from "../../src/store/index.ts";
import { databaseInfo, vacuumDatabase } from "../../src/store/repack.ts";
import { dbCommand } from "../../src/commands/db.ts";
import { aiExchange, PROCESSES, type FixtureEvent } from "../support/event-fixtures.ts";
import { createFourKibDatabase } from "../support/old-database.ts";

const dirs: string[] = [];
const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function dbPath(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-store-repack-"));
  dirs.push(d);
  return path.join(d, "oisp.db");
}

function calls(n: number, t0 = Date.UTC(2026, 0, 1)): FixtureEvent[] {
  const procs = Object.values(PROCESSES);
  const out: FixtureEvent[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      ...aiExchange({
        tsMs: t0 + i * 60_000,
        provider: i % 3 === 2 ? "anthropic" : "openai",
        process: procs[i % procs.length],
        success: i % 5 !== 0,
        prompt: `prompt ${i} `.repeat(100),
        keyHash: `sha256:${(i % 4).toString(16).padStart(16, "0")}`,
      }),
    );
  }
  return out;
}

/** A database as the store wrote it before new ones got 8 KiB pages. */
function oldDatabase(events: FixtureEvent[]): string {
  const file = dbPath();
  createFourKibDatabase(file);
  const store = openStore(file);
  for (let i = 0; i < events.length; i += 50) store.insertEvents(events.slice(i, i + 50));
  store.close();
  return file;
}

/** Blocks until process `pid` holds `file` open (Linux /proc): from then on it has the original, whatever the rename does. */
function waitUntilOpenedBy(pid: number, file: string): void {
  const target = fs.realpathSync(file);
  const holds = () => {
    try {
      return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === target;
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  };
  const deadline = performance.now() + 20_000;
  while (!holds()) {
    if (performance.now() > deadline) throw new Error(`pid ${pid} did not open ${target} within 20 s`);
    Bun.sleepSync(10);
  }
}

function dump(file: string) {
  const raw = new Database(file, { readonly: true });
  try {
    const q = (sql: string) => raw.query(sql).all();
    return {
      events: q("SELECT * FROM events ORDER BY rowid"),
      hours: q("SELECT * FROM event_rollup_hour ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9"),
      days: q("SELECT * FROM event_rollup_day ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9"),
      answers: q("SELECT * FROM model_answers ORDER BY 1, 2, 3, 4"),
      values: q("SELECT * FROM event_values ORDER BY 1, 2"),
      migrations: q("SELECT tag FROM __oisp_migrations ORDER BY tag"),
    };
  } finally {
    raw.close();
  }
}

describe("oisp db vacuum", () => {
  test("a 4 KiB database with events: 8 KiB pages, every event and rollup kept, the store works on it", () => {
    const events = calls(300);
    const file = oldDatabase(events);
    const before = dump(file);
    expect(databaseInfo(file).pageSize).toBe(4096);
    fs.chmodSync(file, 0o600);

    const result = vacuumDatabase(file);
    expect(result.unchanged).toBe(false);
    expect(result.before.pageSize).toBe(4096);
    expect(result.after.pageSize).toBe(8192);
    expect(result.rows.events).toBe(events.length);
    const info = databaseInfo(file);
    expect(info).toMatchObject({ pageSize: 8192, journalMode: "wal" });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.dirname(file)).filter((f) => f.includes(".vacuum-"))).toEqual([]);
    expect(dump(file)).toEqual(before);

    // Every event readable through the store, and a response after the rewrite still finds its request's key.
    const store = openStore(file);
    closers.push(() => store.close());
    for (const e of events) expect(store.get(e.event_id)?.event).toEqual(JSON.parse(JSON.stringify(e)));
    const more = calls(1, Date.UTC(2026, 0, 1) + 300 * 60_000);
    store.insertEvents(more.slice(0, 1));
    store.close();
    const again = openStore(file);
    closers.push(() => again.close());
    expect(again.insertEvents(more.slice(1))).toMatchObject({ inserted: more.length - 1 });
    expect(again.count()).toBe(events.length + more.length);
    const raw = new Database(file, { readonly: true });
    closers.push(() => raw.close());
    const response = raw.query("SELECT key_hash FROM events WHERE event_type = 'ai.response' ORDER BY rowid DESC LIMIT 1").get() as { key_hash: string };
    expect(response.key_hash).toBe((more[0]!.data as { auth: { key_hash: string } }).auth.key_hash);
  });

  test("already 8 KiB: left alone", () => {
    const file = dbPath();
    const store = openStore(file);
    store.insertEvents(calls(3));
    store.close();
    const mtime = fs.statSync(file).mtimeMs;
    expect(vacuumDatabase(file)).toMatchObject({ unchanged: true, before: { pageSize: 8192 } });
    expect(fs.statSync(file).mtimeMs).toBe(mtime);
  });

  test("refused while another process has it open (a store, or a read-only reader); nothing changed", () => {
    const file = oldDatabase(calls(20));
    const before = dump(file);
    const store = openStore(file);
    closers.push(() => store.close());
    expect(() => vacuumDatabase(file)).toThrow(/in use/);
    store.close();
    // A reader such as the dashboard (read-only, WAL mode) counts too.
    const reader = new Database(file, { readonly: true });
    reader.query("SELECT count(*) FROM events").get();
    expect(() => vacuumDatabase(file)).toThrow(/in use/);
    reader.close();
    expect(databaseInfo(file).pageSize).toBe(4096);
    expect(dump(file)).toEqual(before);
    // The store opens it and writes as before.
    const after = openStore(file);
    closers.push(() => after.close());
    expect(after.insertEvents(calls(1, Date.UTC(2027, 0, 1)))).toMatchObject({ inserted: 2 });
    expect(databaseInfo(file).journalMode).toBe("wal");
  });

  test("refused while another process reads it (locks are per process: not only this one's connections)", async () => {
    const file = oldDatabase(calls(5));
    const child = Bun.spawn(
      [process.execPath, "-e", `const { Database } = require("bun:sqlite"); const d = new Database(${JSON.stringify(file)}, { readonly: true }); d.query("SELECT count(*) FROM events").get(); console.log("open"); setTimeout(() => {}, 20000);`],
      { stdout: "pipe", stderr: "inherit" },
    );
    closers.push(() => child.kill());
    const reader = child.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("open");
    expect(() => vacuumDatabase(file)).toThrow(/in use/);
    child.kill();
    await child.exited;
    expect(vacuumDatabase(file).after.pageSize).toBe(8192);
  });

  test("others are kept out while it runs: a store opening it meanwhile fails, then finds the 8 KiB file", () => {
    const file = oldDatabase(calls(50));
    let during: string | undefined;
    const result = vacuumDatabase(file, {
      freeBytes: () => {
        // Called once this run holds the database: another writer cannot get in.
        try {
          openStore(file, { busyTimeoutMs: 0 }).close();
          during = "opened";
        } catch (err) {
          during = (err as Error).message;
        }
        return Number.MAX_SAFE_INTEGER;
      },
    });
    expect(during).toMatch(/locked/);
    expect(result.after.pageSize).toBe(8192);
    const store = openStore(file);
    closers.push(() => store.close());
    expect(store.count()).toBe(100);
  });

  test("a store that opened the file while it ran cannot write to the replaced original (its events would be lost)", async () => {
    const file = oldDatabase(calls(5));
    const code = `const { openStore } = require(${JSON.stringify(path.resolve("src/store/index.ts"))});
      try {
        const s = openStore(${JSON.stringify(file)}, { busyTimeoutMs: 20000 });
        console.log(JSON.stringify(s.insertEvents([{ event_id: "late-1", event_type: "x.late", ts: new Date().toISOString() }])));
      } catch (e) { console.log("refused: " + e.message); }`;
    let child: ReturnType<typeof Bun.spawn> | undefined;
    vacuumDatabase(file, {
      freeBytes: () => {
        // The copy is not made yet and the original is locked: a store starting now opens the original and waits.
        child = Bun.spawn([process.execPath, "-e", code], { stdout: "pipe", stderr: "inherit" });
        waitUntilOpenedBy(child.pid, file);
        return Number.MAX_SAFE_INTEGER;
      },
    });
    closers.push(() => child?.kill());
    const out = await new Response(child!.stdout as ReadableStream).text();
    // SQLite refuses to write a database file that was renamed away (the original is out of WAL mode, so its
    // first write needs a rollback journal, which checks that): the sensor reports a store error, loses nothing.
    expect(out).toMatch(/refused: .*readonly/);
    const store = openStore(file);
    closers.push(() => store.close());
    expect(store.count()).toBe(10);
  });

  test("refused without the disk space for the copy; the original kept, back in WAL mode", () => {
    const file = oldDatabase(calls(20));
    const before = dump(file);
    expect(() => vacuumDatabase(file, { freeBytes: () => 1024 })).toThrow(/disk full/);
    expect(databaseInfo(file)).toMatchObject({ pageSize: 4096, journalMode: "wal" });
    expect(dump(file)).toEqual(before);
    expect(fs.readdirSync(path.dirname(file)).filter((f) => f.includes(".vacuum-"))).toEqual([]);
  });

  test("a copy left by a killed run is removed by the next", () => {
    const file = oldDatabase(calls(5));
    fs.writeFileSync(`${file}.vacuum-99999`, "half a copy");
    vacuumDatabase(file);
    expect(fs.existsSync(`${file}.vacuum-99999`)).toBe(false);
    expect(databaseInfo(file).pageSize).toBe(8192);
  });

  test("the command: info and vacuum on --db, a missing file and an unknown subcommand", async () => {
    const file = oldDatabase(calls(5));
    const lines: string[] = [];
    const log = console.log;
    console.log = (s: string) => void lines.push(s);
    try {
      expect(await dbCommand(["info", "--db", file])).toBe(0);
      expect(await dbCommand(["vacuum", "--db", file])).toBe(0);
      expect(await dbCommand(["info", "--db", file, "--json"])).toBe(0);
    } finally {
      console.log = log;
    }
    expect(lines[0]).toContain("4096-byte pages");
    expect(lines[1]).toContain("10 events kept; pages 4096 → 8192 bytes");
    expect(JSON.parse(lines[2]!)).toMatchObject({ pageSize: 8192 });
    await expect(dbCommand(["vacuum", "--db", `${file}.nope`])).rejects.toThrow(/no file/);
    await expect(dbCommand(["shrink"])).rejects.toThrow(/unknown subcommand/);
  });
});
