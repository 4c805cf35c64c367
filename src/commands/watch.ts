// `oisp watch`: the terminal view over the event store of a sensor running elsewhere (or any database).
import fs from "node:fs";
import path from "node:path";
import { dataDir as defaultDataDir, defaultDbPath } from "../config/paths.ts";
import { readSettingsFile } from "../config/settings.ts";
import { startTui } from "../tui/index.ts";
import { parseFlags, UsageError } from "../util/args.ts";

export const watchHelp = `Usage: oisp watch [--db FILE]

Show captured AI traffic in the terminal: timeline, inventory (apps, providers, models) and process
tree, updated while the sensor writes. Keys: t i p switch views, j k move, space b page, q quit.

  --db FILE               SQLite database (default: the sensor's, <data dir>/oisp.db)
  -h, --help              this help`;

export async function watchCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { db: { type: "string" }, help: { type: "boolean", short: "h" } }, "watch");
  if (values.help) {
    console.log(watchHelp);
    return 0;
  }
  const dir = defaultDataDir();
  let dbPath = values.db;
  if (dbPath === undefined) {
    try {
      dbPath = readSettingsFile(dir).DatabasePath;
    } catch {
      // a broken settings file is the sensor's to report; the default path still works
    }
  }
  dbPath = path.resolve(dbPath ?? defaultDbPath(dir));
  if (!fs.existsSync(dbPath)) throw new UsageError(`oisp watch: no database at ${dbPath} (start \`oisp up\` or \`oisp sensor\` first, or pass --db)`);
  if (!process.stdout.isTTY) throw new UsageError("oisp watch: needs a terminal (stdout is not a TTY)");
  const tui = startTui({ dbPath });
  await tui.done;
  return 0;
}
