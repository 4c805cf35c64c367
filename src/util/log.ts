// One-line logs on stderr, and in the role's log file when given one (src/util/log-file.ts).
// Never content: callers pass metadata only.
export type LogLevel = "debug" | "info" | "warn" | "error";
export type Logger = (level: LogLevel, msg: string) => void;

export function createLogger(opts: { verbose: boolean; prefix?: string; file?: { write(line: string): void } }): Logger {
  const prefix = opts.prefix ? `${opts.prefix}: ` : "";
  const file = opts.file;
  return (level, msg) => {
    if (level === "debug" && !opts.verbose) return;
    const tag = level === "info" ? "" : `${level}: `;
    process.stderr.write(`${prefix}${tag}${msg}\n`);
    // The file has no terminal around it: each line carries its time and level.
    file?.write(`${new Date().toISOString()} ${level.padEnd(5)} ${prefix}${msg}`);
  };
}

export const silentLogger: Logger = () => {};
