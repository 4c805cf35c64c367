// `oisp analyze` without the CLI: a JSONL export or a sensor database in, a Report out.
import fs from "node:fs";
import { Analyzer, type AnalyzeLimits, type Report } from "./aggregate.ts";
import { scanDb } from "./db.ts";
import { scanJsonl } from "./jsonl.ts";

export { Analyzer, DEFAULT_LIMITS, type AnalyzeLimits, type Report } from "./aggregate.ts";
export { formatReport, sections, SECTION_NAMES, type Format } from "./format.ts";
export { parseTimeBound } from "./time.ts";

export interface AnalyzeOptions {
  sinceMs?: number;
  untilMs?: number;
  limits?: Partial<AnalyzeLimits>;
  /** Progress: `done` of `total` (bytes for JSONL, rows for a database). */
  onProgress?: (done: number, total: number, unit: "bytes" | "rows") => void;
}

/** "SQLite format 3\0": the first 16 bytes of every SQLite database. */
export function isSqliteFile(path: string): boolean {
  const fd = fs.openSync(path, "r");
  try {
    const head = Buffer.alloc(16);
    const n = fs.readSync(fd, head, 0, 16, 0);
    return n === 16 && head.toString("latin1") === "SQLite format 3\0";
  } finally {
    fs.closeSync(fd);
  }
}

export async function analyzeFile(path: string, opts: AnalyzeOptions = {}): Promise<Report> {
  const stat = fs.statSync(path); // throws ENOENT with the path: the caller reports it
  if (!stat.isFile()) throw new Error(`${path} is not a file`);
  const analyzer = new Analyzer({ sinceMs: opts.sinceMs, untilMs: opts.untilMs }, opts.limits);
  const range = {
    ...(opts.sinceMs !== undefined && { since: new Date(opts.sinceMs).toISOString() }),
    ...(opts.untilMs !== undefined && { until: new Date(opts.untilMs).toISOString() }),
  };
  if (isSqliteFile(path)) {
    const { rows } = scanDb(path, analyzer, { sinceMs: opts.sinceMs, untilMs: opts.untilMs, onProgress: (done, total) => opts.onProgress?.(done, total, "rows") });
    return analyzer.report({ path, kind: "db", lines: rows, ...range });
  }
  const { bytes, lines } = await scanJsonl(path, analyzer, { onProgress: (done) => opts.onProgress?.(done, stat.size, "bytes") });
  return analyzer.report({ path, kind: "jsonl", bytes, lines, ...range });
}
