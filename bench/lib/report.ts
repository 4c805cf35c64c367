// Formatting helpers shared by the benchmarks: fixed-width tables and figure rounding.
import { percentile, reqPerSec, errorCount, type ScenarioResult } from "./loadgen.ts";

export function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(cells[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

export const ms = (v: number, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : "-");

export interface Summary {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  ok: number;
  chunkP50?: number;
  chunkP99?: number;
  chunkMax?: number;
}

export function summarize(r: ScenarioResult): Summary {
  const s: Summary = { rps: reqPerSec(r), p50: percentile(r.latenciesMs, 50), p99: percentile(r.latenciesMs, 99), errors: errorCount(r), ok: r.ok };
  if (r.chunkDelaysMs.length) {
    s.chunkP50 = percentile(r.chunkDelaysMs, 50);
    s.chunkP99 = percentile(r.chunkDelaysMs, 99);
    s.chunkMax = Math.max(...r.chunkDelaysMs);
  }
  return s;
}

export function verdict(ok: boolean): string {
  return ok ? "met" : "NOT met";
}
