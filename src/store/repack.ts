// `oisp db vacuum`: rewrites an existing database with the page size a new one gets (8 KiB; a database
// created before that keeps SQLite's 4 KiB, and only a rewrite changes it). A ~2 KB event row fills a 4 KiB
// page alone and three fit in 8 KiB: a batch writes a third of the WAL frames, the file is ~25 % smaller.
//
// How, so that the data is never at risk and nobody else sees a half-made file:
// 1. this connection takes the database for itself (locking_mode EXCLUSIVE, then the journal out of WAL
//    mode, which needs every other connection closed: a running sensor or dashboard makes it fail at once
//    with "in use", and from then on nobody else can open it until we close);
// 2. VACUUM INTO a new file beside it (same disk: needs about the database's size free) with the new page size;
//    the original is only read;
// 3. the copy is checked (quick_check, the same number of rows in every table), put in WAL mode, synced;
// 4. it replaces the original by a rename (atomic). A process that opened the original meanwhile and waits
//    for its lock reads the old file at worst: it cannot write there (out of WAL mode, a write needs a rollback
//    journal, and SQLite refuses one for a file renamed away: "attempt to write a readonly database"). Until then a failure or a kill leaves the original as
//    it was (at worst in rollback-journal mode, which the next open puts back to WAL) and a stray copy
//    named `<db>.vacuum-<pid>`, which the next run removes.
import { Database } from "bun:sqlite";
import fs from "node:fs";
import path from "node:path";
import { StoreError, toStoreError } from "./errors.ts";
import { NEW_PAGE_SIZE } from "./index.ts";

export interface DatabaseInfo {
  path: string;
  pageSize: number;
  pages: number;
  /** Pages on the freelist (space a vacuum gives back). */
  freePages: number;
  /** The file and its -wal, bytes. */
  bytes: number;
  journalMode: string;
}

export interface VacuumResult {
  /** Nothing done: the database already had this page size. */
  unchanged: boolean;
  before: DatabaseInfo;
  after: DatabaseInfo;
  /** Rows per table, the same before and after (checked). */
  rows: Record<string, number>;
}

export interface VacuumOptions {
  pageSize?: number;
  /** Free bytes on the database's file system (tests); default from statfs. */
  freeBytes?: (dir: string) => number;
}

const fileBytes = (p: string) => [p, `${p}-wal`].reduce((n, f) => n + (fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0);

function infoOf(sqlite: Database, file: string): DatabaseInfo {
  const one = <T>(pragma: string) => Object.values(sqlite.query(`PRAGMA ${pragma}`).get() as Record<string, T>)[0]!;
  return {
    path: file,
    pageSize: one<number>("page_size"),
    pages: one<number>("page_count"),
    freePages: one<number>("freelist_count"),
    bytes: fileBytes(file),
    journalMode: one<string>("journal_mode"),
  };
}

/** Page size, pages, free pages and size of a database, read-only (another process may be writing it). */
export function databaseInfo(file: string): DatabaseInfo {
  if (!fs.existsSync(file)) throw new StoreError(`cannot open the database: no file ${file}`, "cannot-open");
  let sqlite: Database | undefined;
  try {
    sqlite = new Database(file, { readonly: true });
    sqlite.run("PRAGMA busy_timeout = 1000");
    return infoOf(sqlite, file);
  } catch (err) {
    throw toStoreError(err, `reading ${file}`, 1000);
  } finally {
    sqlite?.close();
  }
}

function rowCounts(sqlite: Database): Record<string, number> {
  const tables = sqlite.query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>;
  return Object.fromEntries(tables.map(({ name }) => [name, (sqlite.query(`SELECT count(*) AS n FROM "${name.replaceAll('"', '""')}"`).get() as { n: number }).n]));
}

function freeBytesOf(dir: string): number {
  const s = fs.statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}

function syncFile(file: string, flags = "r+"): void {
  const fd = fs.openSync(file, flags);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Rewrites `file` with `pageSize` pages (default: a new database's). Throws StoreError; then the original is unchanged. */
export function vacuumDatabase(file: string, opts: VacuumOptions = {}): VacuumResult {
  const pageSize = opts.pageSize ?? NEW_PAGE_SIZE;
  if (!fs.existsSync(file)) throw new StoreError(`cannot open the database: no file ${file}`, "cannot-open");
  const dir = path.dirname(path.resolve(file));
  const copy = `${file}.vacuum-${process.pid}`;
  let sqlite: Database | undefined;
  let copied = false;
  /** Out of WAL mode: put back if the rewrite fails (the next writer would do it too). */
  let leftWal = false;
  try {
    sqlite = new Database(file, { readwrite: true });
    sqlite.run("PRAGMA busy_timeout = 0");
    const before = infoOf(sqlite, file);
    if (before.pageSize === pageSize) {
      return { unchanged: true, before, after: before, rows: rowCounts(sqlite) };
    }
    // Alone from here on: leaving WAL mode needs every other connection closed, and in EXCLUSIVE locking mode
    // this connection keeps the file's lock until it closes.
    sqlite.run("PRAGMA locking_mode = EXCLUSIVE");
    const inUse = (code?: string) =>
      new StoreError(
        `database in use: ${file} is open in another process (\`oisp up\`, \`oisp sensor\`, a dashboard or \`oisp watch\`): stop it and run this again`,
        "locked",
        code,
      );
    let mode: string;
    try {
      mode = (sqlite.query("PRAGMA journal_mode = DELETE").get() as { journal_mode: string }).journal_mode;
    } catch (err) {
      const e = toStoreError(err, "", 0);
      throw e.kind === "locked" ? inUse(e.code) : err;
    }
    if (mode !== "delete") throw inUse();
    leftWal = before.journalMode === "wal";
    try {
      // The write lock, kept until close in this locking mode (a database already out of WAL mode took none yet).
      sqlite.run("BEGIN EXCLUSIVE");
      sqlite.run("COMMIT");
    } catch (err) {
      const e = toStoreError(err, "", 0);
      throw e.kind === "locked" ? inUse(e.code) : err;
    }
    // A copy left by a run that was killed (no other run can hold the lock this one has now).
    for (const name of fs.readdirSync(dir)) {
      if (name.startsWith(`${path.basename(file)}.vacuum-`)) fs.rmSync(path.join(dir, name), { force: true });
    }
    const rows = rowCounts(sqlite);
    // The -shm of WAL mode is nobody's now (only this connection has the file); the copy will make its own.
    fs.rmSync(`${file}-shm`, { force: true });
    const need = Math.ceil(before.bytes * 1.05) + 16 * 1024 * 1024;
    const free = (opts.freeBytes ?? freeBytesOf)(dir);
    if (free < need) {
      throw new StoreError(`disk full: rewriting ${file} needs about ${mib(need)} free beside it, ${mib(free)} free`, "disk-full");
    }
    sqlite.run(`PRAGMA page_size = ${pageSize}`);
    copied = true;
    sqlite.prepare("VACUUM INTO ?").run(copy);
    const out = new Database(copy, { readwrite: true });
    let after: DatabaseInfo;
    try {
      const check = (out.query("PRAGMA quick_check").all() as Array<{ quick_check: string }>).map((r) => r.quick_check);
      if (check.join() !== "ok") throw new StoreError(`the rewritten copy failed its check (${check.slice(0, 3).join("; ")}): ${file} left as it was`, "corrupt");
      const copyRows = rowCounts(out);
      if (JSON.stringify(copyRows) !== JSON.stringify(rows)) {
        throw new StoreError(`the rewritten copy holds other rows (${JSON.stringify(copyRows)} against ${JSON.stringify(rows)}): ${file} left as it was`, "corrupt");
      }
      out.run("PRAGMA journal_mode = WAL");
      after = infoOf(out, copy);
    } finally {
      out.close();
    }
    if (after.pageSize !== pageSize) throw new StoreError(`the copy has ${after.pageSize}-byte pages, not ${pageSize}: ${file} left as it was`, "other");
    // Events hold prompts and answers: the copy gets the original's mode (owner-only), then reaches the disk.
    fs.chmodSync(copy, fs.statSync(file).mode & 0o777);
    syncFile(copy);
    if (process.platform === "win32") {
      // Windows cannot rename over a file that is open: close first (a process opening it in between
      // makes the rename fail, and the original stays).
      sqlite.close();
      sqlite = undefined;
    }
    fs.renameSync(copy, file);
    copied = false;
    leftWal = false;
    if (process.platform !== "win32") syncFile(dir, "r");
    return { unchanged: false, before, after: { ...after, path: file, bytes: fileBytes(file) }, rows };
  } catch (err) {
    throw toStoreError(err, `rewriting ${file}`, 0);
  } finally {
    if (copied) {
      fs.rmSync(copy, { force: true });
      fs.rmSync(`${copy}-wal`, { force: true });
      fs.rmSync(`${copy}-shm`, { force: true });
    }
    if (sqlite && leftWal) {
      try {
        sqlite.run("PRAGMA journal_mode = WAL");
      } catch {
        // the next writer's open does it (openStore sets WAL mode)
      }
    }
    sqlite?.close();
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
