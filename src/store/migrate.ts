// Applies the embedded migrations in order, each once, recording what was applied in the database itself.
// (drizzle's own migrator reads a folder at run time, which a compiled binary does not have.)
import type { Database } from "bun:sqlite";
import type { Migration } from "./migrations/index.ts";

const TABLE = "__oisp_migrations";

/** Returns the tags applied by this call (empty when the database was up to date). */
export function applyMigrations(sqlite: Database, migrations: readonly Migration[]): string[] {
  sqlite.run(`CREATE TABLE IF NOT EXISTS ${TABLE} (tag TEXT PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)`);
  const isApplied = sqlite.query<{ tag: string }, [string]>(`SELECT tag FROM ${TABLE} WHERE tag = ?`);
  const record = sqlite.query(`INSERT INTO ${TABLE} (tag, applied_at) VALUES (?, ?)`);
  const applied: string[] = [];
  for (const migration of migrations) {
    // IMMEDIATE takes the write lock up front, so two processes opening a new database do not both migrate.
    sqlite.run("BEGIN IMMEDIATE");
    try {
      if (!isApplied.get(migration.tag)) {
        for (const statement of splitStatements(migration.sql)) sqlite.run(statement);
        record.run(migration.tag, Date.now());
        applied.push(migration.tag);
      }
      sqlite.run("COMMIT");
    } catch (err) {
      try {
        sqlite.run("ROLLBACK");
      } catch {
        // the failed statement may already have ended the transaction
      }
      throw err;
    }
  }
  return applied;
}

/** drizzle-kit separates statements with a breakpoint comment. */
export function splitStatements(sql: string): string[] {
  return sql
    .split("--> statement-breakpoint")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
