// `oisp db info | vacuum [--db FILE]`: the event database's page size and size, and its rewrite into the
// page size a new database gets (src/store/repack.ts).
import path from "node:path";
import { readRoleStatus } from "../control/role-status.ts";
import { dataDir as defaultDataDir } from "../config/paths.ts";
import { statusFilePath } from "../sensor/status-file.ts";
import { databaseInfo, vacuumDatabase, type DatabaseInfo } from "../store/repack.ts";
import { bytes } from "../sinks/exporter-line.ts";
import { parseFlags, UsageError } from "../util/args.ts";
import { configuredDbPath } from "./status.ts";

export const dbHelp = `Usage: oisp db <info|vacuum> [--db FILE] [--json]

The event database (default: <data dir>/oisp.db, or settings.json's DatabasePath).

  info                        page size, pages, free pages and size of the database
  vacuum                      rewrite it with 8 KiB pages, as a new database gets (and give back its
                              free pages): a database created before oisp chose 8 KiB has 4 KiB ones,
                              and 8 KiB makes a stored event up to ~18 % cheaper in CPU when calls come
                              in bursts (the same at a few calls a second) and the file 20-25 % smaller. Stop \`oisp up\` / \`oisp sensor\` and any dashboard
                              first (refused while another process has the database open); needs about
                              the database's size free on its disk; the original stays until the checked
                              copy replaces it. Takes about a second per 100 MB.

  --db FILE                   another database file
  --json                      print the result as JSON`;

export async function dbCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    { help: { type: "boolean", short: "h" }, db: { type: "string" }, json: { type: "boolean" } },
    "db",
    1,
  );
  const sub = positionals[0];
  if (values.help || !sub) {
    console.log(dbHelp);
    return sub || values.help ? 0 : 2;
  }
  const dir = defaultDataDir();
  const dbPath = path.resolve(values.db ?? configuredDbPath(dir));
  switch (sub) {
    case "info": {
      const info = databaseInfo(dbPath);
      console.log(values.json ? JSON.stringify(info, null, 2) : infoLine(info));
      return 0;
    }
    case "vacuum": {
      const sensor = readRoleStatus(statusFilePath(dir, "sensor"));
      if (sensor.running && path.resolve(String(sensor.snapshot?.db_path ?? dbPath)) === dbPath) {
        console.error(`oisp db vacuum: a sensor is running on ${dbPath} (pid ${sensor.snapshot?.pid ?? "?"}): stop \`oisp up\` / \`oisp sensor\` first`);
        return 1;
      }
      const result = vacuumDatabase(dbPath);
      if (values.json) console.log(JSON.stringify(result, null, 2));
      else if (result.unchanged) console.log(`${dbPath}: already ${result.before.pageSize}-byte pages, nothing to do`);
      else {
        const events = result.rows.events ?? 0;
        console.log(`${dbPath}: ${events} events kept; pages ${result.before.pageSize} → ${result.after.pageSize} bytes, ${bytes(result.before.bytes)} → ${bytes(result.after.bytes)}`);
      }
      return 0;
    }
    default:
      throw new UsageError(`oisp db: unknown subcommand "${sub}" (info, vacuum)`);
  }
}

function infoLine(i: DatabaseInfo): string {
  return `${i.path}: ${i.pageSize}-byte pages, ${i.pages} pages (${i.freePages} free), ${bytes(i.bytes)}, journal ${i.journalMode}`;
}
