#!/usr/bin/env bun
// Entry point: `oisp <command> [flags]`. Each command lives in src/commands/.
import { versionLine } from "./commands/version.ts";
import { UsageError } from "./util/args.ts";

// Each command's module loads when that command runs: `oisp up` need not carry `oisp analyze` or the
// terminal view in memory (a few MB of heap each).
const commands: Record<string, { run: (argv: string[]) => Promise<number>; summary: string }> = {
  up: { run: async (argv) => (await import("./commands/up.ts")).upCommand(argv), summary: "run proxy + sensor in one process (start here)" },
  // The seed's `oisp-sensor record [--output F] [--web] [--verbose]`: the same as `oisp up`.
  record: { run: async (argv) => (await import("./commands/up.ts")).upCommand(argv), summary: "the same as `oisp up` (the seed's `oisp-sensor record`)" },
  redirect: { run: async (argv) => (await import("./commands/redirect.ts")).redirectCommand(argv), summary: "capture role: proxy that taps AI traffic" },
  sensor: { run: async (argv) => (await import("./commands/sensor.ts")).sensorCommand(argv), summary: "decode captured traffic into OISP events and store them" },
  status: { run: async (argv) => (await import("./commands/status.ts")).statusCommand(argv), summary: "is capture working? sensor, redirector, exporters, CA, database (exit 3: not running)" },
  pause: { run: async (argv) => (await import("./commands/pause.ts")).pauseCommand("pause", argv), summary: "relay without recording until `oisp resume` (kept across restarts)" },
  resume: { run: async (argv) => (await import("./commands/pause.ts")).pauseCommand("resume", argv), summary: "record again after `oisp pause`" },
  unpin: { run: async (argv) => (await import("./commands/unpin.ts")).unpinCommand(argv), summary: "intercept hosts again whose clients once refused the OISP certificate" },
  watch: { run: async (argv) => (await import("./commands/watch.ts")).watchCommand(argv), summary: "terminal view of captured AI traffic (timeline, inventory, processes)" },
  ca: { run: async (argv) => (await import("./commands/ca.ts")).caCommand(argv), summary: "manage the local CA (init, path, export, install, uninstall)" },
  db: { run: async (argv) => (await import("./commands/db.ts")).dbCommand(argv), summary: "the event database: page size and size (info), rewrite in 8 KiB pages (vacuum)" },
  analyze: { run: async (argv) => (await import("./commands/analyze.ts")).analyzeCommand(argv), summary: "report on a JSONL export or database: costs, models, apps, accounts, errors" },
  tray: { run: async (argv) => (await import("./commands/tray.ts")).trayCommand(argv), summary: "Windows: notification-area icon and menu (start/stop/pause capture, CA, dashboard, logs)" },
  version: { run: async () => (console.log(versionLine()), 0), summary: "print version, commit and spec bundle date" },
};

const help = `oisp — see every AI API call made on this machine

Usage: oisp <command> [flags]

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join("\n")}

Run \`oisp <command> --help\` for a command's flags. Data directory: \`oisp --data-dir DIR <command>\`,
else $OISP_HOME, else the OS default.`;

async function main(argv: string[]): Promise<number> {
  // `oisp --data-dir DIR <command>`: the same as OISP_HOME=DIR. For processes that cannot be given an
  // environment: an elevated `oisp redirect` started through UAC, the tray's Run key at logon.
  if (argv[0] === "--data-dir") {
    if (!argv[1]) throw new UsageError("oisp --data-dir: name the directory");
    process.env.OISP_HOME = argv[1];
    argv = argv.slice(2);
  }
  if (argv.length === 0 && process.platform === "win32" && (await import("./commands/tray.ts").then((m) => m.startedByDoubleClick(argv)))) {
    return commands.tray!.run([]);
  }
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
