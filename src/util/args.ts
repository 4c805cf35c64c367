// Flag parsing shared by every subcommand: node:util parseArgs in strict mode, with errors
// rewritten as one line a user can act on.
import { parseArgs, type ParseArgsConfig } from "node:util";

export class UsageError extends Error {}

export type FlagSpec = NonNullable<ParseArgsConfig["options"]>;

/** `maxPositionals`: words other than flags the command takes; more are an error, never silently ignored. */
export function parseFlags<T extends FlagSpec>(argv: string[], options: T, command: string, maxPositionals = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    const msg = (err as Error).message.split("\n")[0]!.replace(/^Unknown option/, "unknown flag");
    throw new UsageError(`oisp ${command}: ${msg} (see \`oisp ${command} --help\`)`);
  }
  const extra = parsed.positionals.slice(maxPositionals);
  if (extra.length > 0) throw new UsageError(`oisp ${command}: unexpected argument "${extra[0]}" (see \`oisp ${command} --help\`)`);
  return parsed;
}

/** "127.0.0.1:8080", "[::1]:8080", ":8080" or "8080" → host and port. */
export function parseListen(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:(?:\[([^\]]+)\]|([^:]*)):)?(\d+)$/.exec(value); // "8443" is a port, not host "844" + port 3
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new UsageError(`${flag}: expected HOST:PORT, got "${value}"`);
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}

/** curl-style HOST:PORT:ADDR → ["host:port", "addr[:port]"]. ADDR may be [v6] and may carry its own port. */
export function parseResolve(value: string): [string, string] {
  const m = /^([^:]+):(\d+):(.+)$/.exec(value);
  if (!m) throw new UsageError(`--resolve: expected HOST:PORT:ADDR, got "${value}"`);
  return [`${m[1]!.toLowerCase()}:${m[2]}`, m[3]!.replace(/^\[(.*)\]$/, "$1")];
}

export function asList(v: string | boolean | (string | boolean)[] | undefined): string[] {
  if (v === undefined || typeof v === "boolean") return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === "string");
}
