// Command lines in safe (and minimal) mode: `curl -d '{"messages":[…]}'` or `ask.py "my question"` carry
// prompt text, which safe mode never stores. What stays says what ran: the executable, the flags (their
// names), file names, paths and URLs without a query, and credentials already masked ("[REDACTED:…]").
// Everything else is replaced by a hash of it, one per run of removed words, so equal command lines
// still correlate.
import { contentHash } from "./hash.ts";

/** A file name or path ("agent.py", "/usr/bin/x", "C:\\a\\b", "https://host/path"), no query, no spaces. */
const PATH_LIKE = /^["']?[A-Za-z0-9_.~/\\:@%+,=-]+["']?$/;
const HAS_PATH_PART = /[/\\]|\.[A-Za-z0-9]{1,5}["']?$/;

/** A word this module already replaced: kept as it is, so reducing twice changes nothing. */
const HASH_MARKER = /^\[sha256:[0-9a-f]+\]$/;

function keepsWord(word: string): boolean {
  if (word.includes("[REDACTED:") || HASH_MARKER.test(word)) return true;
  return PATH_LIKE.test(word) && HAS_PATH_PART.test(word) && !/^\d+(?:\.\d+)*$/.test(word);
}

/** "-d", "--data", "--model=gpt-4o" (the value after "=" is judged on its own). */
const FLAG = /^--?[A-Za-z0-9][A-Za-z0-9_.-]*(?:=|$)/;

const hashed = (text: string) => `[${contentHash(text)}]`;

/**
 * Command lines reduced recently. Every event of a process carries the same command line, and reducing it
 * (split, regexes, one sha256 per run of words) was ~1.5 % of the sensor's CPU per call (bench/sensor.ts
 * profile). Bounded: cleared when full; long command lines are not kept.
 */
const reduced = new Map<string, string>();
const REDUCED_MAX_ENTRIES = 256;
const REDUCED_MAX_LENGTH = 2048;

/** The command line with everything but executable, flags, paths and masked credentials hashed. */
export function safeCommandLine(cmdline: string): string {
  const known = reduced.get(cmdline);
  if (known !== undefined) return known;
  const out = reduceCommandLine(cmdline);
  if (cmdline.length <= REDUCED_MAX_LENGTH) {
    if (reduced.size >= REDUCED_MAX_ENTRIES) reduced.clear();
    reduced.set(cmdline, out);
  }
  return out;
}

function reduceCommandLine(cmdline: string): string {
  const trimmed = cmdline.trim();
  if (trimmed === "") return cmdline;
  // The executable: a quoted Windows path ("C:\Program Files\x.exe") or the first word.
  const quoted = /^"[^"]*"/.exec(trimmed);
  const exe = quoted ? quoted[0] : trimmed.split(/\s+/, 1)[0]!;
  const words = trimmed.slice(exe.length).split(/\s+/).filter((w) => w !== "");
  const out = [exe];
  let run: string[] = [];
  const flush = () => {
    if (run.length > 0) out.push(hashed(run.join(" ")));
    run = [];
  };
  for (const word of words) {
    if (FLAG.test(word) || keepsWord(word)) {
      flush();
      out.push(safeWord(word));
    } else run.push(word);
  }
  flush();
  return out.join(" ");
}

/** cmdline_args the same way: argv[0], flags, paths and masked credentials stay; other arguments are hashed one by one. */
export function safeCommandArgs(args: readonly unknown[]): unknown[] {
  return args.map((a, i) => (typeof a !== "string" || i === 0 ? a : safeWord(a)));
}

function safeWord(word: string): string {
  if (FLAG.test(word)) {
    const eq = word.indexOf("=");
    if (eq === -1 || eq === word.length - 1) return word;
    const value = word.slice(eq + 1);
    return keepsWord(value) ? word : `${word.slice(0, eq + 1)}${hashed(value)}`;
  }
  return keepsWord(word) ? word : hashed(word);
}
