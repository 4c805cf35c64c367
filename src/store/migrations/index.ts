// The SQL migrations, embedded at build time (a compiled binary has no migrations folder to read).
// After `node_modules/.bin/drizzle-kit generate`, add the new file here; test/unit/store.test.ts checks
// this list against drizzle-kit's journal.
import init from "./0000_init.sql" with { type: "text" };
import rollup from "./0001_rollup.sql" with { type: "text" };
import credentialColumns from "./0002_credential_columns.sql" with { type: "text" };
import callModel from "./0003_call_model.sql" with { type: "text" };
import rollupsInStore from "./0004_rollups_in_store.sql" with { type: "text" };
import filterValues from "./0005_filter_values.sql" with { type: "text" };
import rollupFirstMs from "./0006_rollup_first_ms.sql" with { type: "text" };

export interface Migration {
  /** drizzle-kit's tag, e.g. "0000_init": also the key recorded in the database. */
  tag: string;
  sql: string;
}

export const migrations: readonly Migration[] = [
  { tag: "0000_init", sql: init },
  { tag: "0001_rollup", sql: rollup },
  { tag: "0002_credential_columns", sql: credentialColumns },
  { tag: "0003_call_model", sql: callModel },
  { tag: "0004_rollups_in_store", sql: rollupsInStore },
  { tag: "0005_filter_values", sql: filterValues },
  { tag: "0006_rollup_first_ms", sql: rollupFirstMs },
];
