// `oisp analyze FILE.jsonl | FILE.db`: what was spent, on which models, from which apps and accounts.
import { analyzeFile, formatReport, parseTimeBound, SECTION_NAMES, type Format } from "../analyze/index.ts";
import { parseFlags, UsageError, type FlagSpec } from "../util/args.ts";

const flags = {
  since: { type: "string" },
  until: { type: "string" },
  format: { type: "string", short: "f" },
  section: { type: "string" },
  "no-progress": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} satisfies FlagSpec;

export const analyzeHelp = `Usage: oisp analyze FILE.jsonl | FILE.db [flags]

Reports on captured AI calls: providers, models (requests, tokens, cost), apps, accounts (API key
fingerprints), errors and rate limits, latency and time-to-first-token percentiles, tool calls.
Reads a JSONL export of any size as a stream, or a sensor database. Malformed lines are counted and
listed by line number; they never stop the report.

  --since TIME        only events at or after TIME: 2026-01-31, 2026-01-31T10:00:00Z, or 30m / 24h / 7d ago
  --until TIME        only events before TIME (same forms)
  -f, --format FMT    table (default on a terminal), json or csv
  --section NAME      only one section: ${SECTION_NAMES.join(", ")}
  --no-progress       no progress bar on stderr
  -h, --help          this help

Input tokens include cache reads and writes for every provider (Anthropic reports them apart; they are
added back). Costs are summed over responses whose model has a known price; models without one are
listed as unknown, never counted as free. Percentiles come from a bounded reservoir sample (exact up to 8192 values).`;

export async function analyzeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, flags, "analyze", Infinity);
  if (values.help) return console.log(analyzeHelp), 0;
  if (positionals.length !== 1) throw new UsageError("oisp analyze: expected one FILE.jsonl or FILE.db (see `oisp analyze --help`)");
  const format = (values.format ?? "table") as Format;
  if (!["table", "json", "csv"].includes(format)) throw new UsageError(`--format: expected table, json or csv, got "${values.format}"`);
  if (values.section !== undefined && !SECTION_NAMES.includes(values.section)) {
    throw new UsageError(`--section: expected one of ${SECTION_NAMES.join(", ")}, got "${values.section}"`);
  }
  const now = Date.now();
  const bound = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const ms = parseTimeBound(v, now);
    if (ms === undefined) throw new UsageError(`--${flag}: expected a date, a time or a duration such as 24h, got "${v}"`);
    return ms;
  };
  const sinceMs = bound("since", values.since);
  const untilMs = bound("until", values.until);

  const progress = process.stderr.isTTY && !values["no-progress"] ? progressBar() : undefined;
  let report;
  try {
    report = await analyzeFile(positionals[0]!, { sinceMs, untilMs, onProgress: progress?.update });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(e.code === "ENOENT" ? `analyze: no such file: ${positionals[0]}` : `analyze: ${e.message}`);
  } finally {
    progress?.done();
  }
  process.stdout.write(formatReport(report, format, values.section));
  if (report.malformed.count > 0 && format !== "table") {
    process.stderr.write(`oisp analyze: ${report.malformed.count} malformed line(s) skipped (see the malformed section)\n`);
  }
  return 0;
}

/** One stderr line rewritten at most 5 times a second: done / total, percent, throughput. */
function progressBar() {
  const start = performance.now();
  let last = 0;
  let shown = false;
  const size = (n: number, unit: string) => (unit === "bytes" ? `${(n / 1048576).toFixed(1)} MB` : `${n.toLocaleString("en-US")} rows`);
  return {
    update(done: number, total: number, unit: "bytes" | "rows") {
      const now = performance.now();
      if (now - last < 200 && done < total) return;
      last = now;
      const pct = total > 0 ? Math.min(100, (done / total) * 100) : 100;
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      const rate = done / Math.max(0.001, (now - start) / 1000);
      process.stderr.write(
        `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${pct.toFixed(0).padStart(3)}%  ${size(done, unit)} / ${size(total, unit)}  ${size(rate, unit)}/s `,
      );
      shown = true;
    },
    done() {
      if (shown) process.stderr.write("\r\x1b[K");
    },
  };
}
