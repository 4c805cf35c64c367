#!/usr/bin/env bun
// Entry point: `oisp <command> [flags]`. Each command lives in src/commands/.
import { analyzeCommand } from "./commands/analyze.ts";
import { caCommand } from "./commands/ca.ts";
import { redirectCommand } from "./commands/redirect.ts";
import { sensorCommand } from "./commands/sensor.ts";
import { statusCommand } from "./commands/status.ts";
import { unpinCommand } from "./commands/unpin.ts";
import { upCommand } from "./commands/up.ts";
import { versionLine } from "./commands/version.ts";
import { watchCommand } from "./commands/watch.ts";
import { UsageError } from "./util/args.ts";

const commands: Record<string, { run: (argv: string[]) => Promise<number>; summary: string }> = {
  up: { run: upCommand, summary: "run proxy + sensor in one process (start here)" },
  redirect: { run: redirectCommand, summary: "capture role: proxy that taps AI traffic" },
  sensor: { run: sensorCommand, summary: "decode captured traffic into OISP events and store them" },
  status: { run: statusCommand, summary: "is capture working? sensor, redirector, exporters, CA, database (exit 3: not running)" },
  unpin: { run: unpinCommand, summary: "intercept hosts again whose clients once refused the OISP certificate" },
  watch: { run: watchCommand, summary: "terminal view of captured AI traffic (timeline, inventory, processes)" },
  ca: { run: caCommand, summary: "manage the local CA (init, path, export, install, uninstall)" },
  analyze: { run: analyzeCommand, summary: "report on a JSONL export or database: costs, models, apps, accounts, errors" },
  version: { run: async () => (console.log(versionLine()), 0), summary: "print version, commit and spec bundle date" },
};

const help = `oisp — see every AI API call made on this machine

Usage: oisp <command> [flags]

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join("\n")}

Run \`oisp <command> --help\` for a command's flags. Data directory: $OISP_HOME, else the OS default.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(help);
    return name ? 0 : 2;
  }
  if (name === "--version" || name === "-V") return commands.version!.run([]);
  const command = commands[name];
  if (!command) throw new UsageError(`oisp: unknown command "${name}" (run \`oisp --help\`)`);
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    // Every failure is one line a user can act on; OISP_DEBUG=1 shows the stack for bug reports.
    console.error(process.env.OISP_DEBUG ? err.stack : `oisp: ${err.message.replace(/^oisp: /, "")}`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
