// A database as the store created it before new ones got 8 KiB pages (SQLite's 4 KiB, WAL mode, every
// migration applied), for `oisp db vacuum`'s test and bench.
import { Database } from "bun:sqlite";
import fs from "node:fs";
import { applyMigrations } from "../../src/store/migrate.ts";
import { migrations } from "../../src/store/migrations/index.ts";

/** Creates `file` (owner-only, as the store's) as an empty 4 KiB-page database; the store opens it as it is. */
export function createFourKibDatabase(file: string): void {
  fs.closeSync(fs.openSync(file, "a", 0o600));
  const raw = new Database(file);
  try {
    raw.run("PRAGMA page_size = 4096");
    raw.run("PRAGMA journal_mode = WAL");
    applyMigrations(raw, migrations);
  } finally {
    raw.close();
  }
}
