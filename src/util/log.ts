// One-line logs on stderr. Never content: callers pass metadata only.
export type LogLevel = "debug" | "info" | "warn" | "error";
export type Logger = (level: LogLevel, msg: string) => void;

export function createLogger(opts: { verbose: boolean; prefix?: string }): Logger {
  const prefix = opts.prefix ? `${opts.prefix}: ` : "";
  return (level, msg) => {
    if (level === "debug" && !opts.verbose) return;
    const tag = level === "info" ? "" : `${level}: `;
    process.stderr.write(`${prefix}${tag}${msg}\n`);
  };
}

export const silentLogger: Logger = () => {};
