// The report as a terminal table, JSON or CSV. Tables and CSV share one description of each section,
// so they always show the same rows; JSON is the report object itself.
import type { Percentiles } from "./reservoir.ts";
import type { Report, UsageTotals } from "./aggregate.ts";
import { csvField } from "../util/csv.ts";

export type Format = "table" | "json" | "csv";
type Cell = string | number | boolean | null;

export interface Section {
  name: string;
  title: string;
  columns: string[];
  rows: Cell[][];
}

const LATENCY_COLUMNS = ["metric", "provider", "count", "min", "p50", "p90", "p95", "p99", "max", "exact"];

export function sections(r: Report): Section[] {
  const s = r.summary;
  const usageCols = ["input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "cost_usd", "unpriced_responses"];
  const usage = (u: UsageTotals): Cell[] => [
    u.input_tokens,
    u.output_tokens,
    u.cached_tokens,
    u.reasoning_tokens,
    // null, not 0, when nothing was priced: an unknown cost is not free
    u.priced_responses > 0 ? u.cost_usd : null,
    u.unpriced_responses,
  ];
  const pct = (metric: string, provider: string, p: Percentiles): Cell[] => [metric, provider, p.count, p.min, p.p50, p.p90, p.p95, p.p99, p.max, p.exact];
  const latencyRows: Cell[][] = [];
  for (const [metric, block] of [["latency_ms", r.latency_ms], ["ttft_ms", r.ttft_ms]] as const) {
    if (block.overall) latencyRows.push(pct(metric, "(all)", block.overall));
    for (const row of block.by_provider) latencyRows.push(pct(metric, row.provider, row));
  }
  return [
    {
      name: "summary",
      title: "Summary",
      columns: ["metric", "value"],
      rows: [
        ["events", s.events],
        ...Object.entries(s.by_type).map(([t, n]): Cell[] => [`events.${t}`, n]),
        ["requests", s.requests],
        ["responses", s.responses],
        ["errors", s.errors],
        ["rate_limited", s.rate_limited],
        ["tool_calls", s.tool_calls],
        ["input_tokens", s.input_tokens],
        ["output_tokens", s.output_tokens],
        ["cached_tokens", s.cached_tokens],
        ["reasoning_tokens", s.reasoning_tokens],
        ["cost_usd", s.priced_responses > 0 ? s.cost_usd : null],
        ["priced_responses", s.priced_responses],
        ["unpriced_responses", s.unpriced_responses],
        ["first_ts", s.first_ts ?? null],
        ["last_ts", s.last_ts ?? null],
        ["out_of_range", s.out_of_range],
        ["malformed_lines", r.malformed.count],
        ["responses_without_account", r.bounds.responses_without_account],
        ["keys_merged_into_other", r.bounds.keys_merged_into_other],
      ],
    },
    {
      name: "providers",
      title: "Providers",
      columns: ["provider", "requests", "responses", "errors", "models", "endpoints", ...usageCols, "first_seen", "last_seen"],
      rows: r.providers.map((p) => [p.provider, p.requests, p.responses, p.errors, p.models, p.endpoints.join(" "), ...usage(p), p.first_seen ?? null, p.last_seen ?? null]),
    },
    {
      name: "models",
      title: "Models",
      columns: ["provider", "model", "answered_by", "requests", "responses", "errors", ...usageCols],
      rows: r.models.map((m) => [m.provider, m.model, m.answered_by.join(" "), m.requests, m.responses, m.errors, ...usage(m)]),
    },
    {
      name: "unknown_prices",
      title: "Models with unknown prices (cost not counted)",
      columns: ["provider", "model", "responses"],
      rows: r.unknown_price_models.map((m) => [m.provider, m.model, m.responses]),
    },
    {
      name: "apps",
      title: "Apps (process names)",
      columns: ["app", "requests", "responses", "errors", ...usageCols],
      rows: r.apps.map((a) => [a.app, a.requests, a.responses, a.errors, ...usage(a)]),
    },
    {
      name: "accounts",
      title: "Accounts (API key fingerprints)",
      columns: ["provider", "key_prefix", "key_hash", "auth_type", "requests", "responses", ...usageCols],
      rows: r.accounts.map((a) => [a.provider, a.key_prefix, a.key_hash, a.auth_type, a.requests, a.responses, ...usage(a)]),
    },
    {
      name: "errors",
      title: "Errors and rate limits",
      columns: ["provider", "model", "status_code", "error_type", "rate_limit", "count"],
      rows: r.errors.map((e) => [e.provider, e.model, e.status_code, e.error_type, e.rate_limit, e.count]),
    },
    { name: "latency", title: "Latency and time to first token (ms)", columns: LATENCY_COLUMNS, rows: latencyRows },
    { name: "tools", title: "Tool calls by name", columns: ["name", "calls"], rows: r.tools.map((t) => [t.name, t.calls]) },
    {
      name: "malformed",
      title: `Malformed lines (${r.malformed.count}${r.malformed.count > r.malformed.first.length ? `, first ${r.malformed.first.length} listed` : ""})`,
      columns: ["line", "reason"],
      rows: r.malformed.first.map((m) => [m.line, m.reason]),
    },
  ];
}

export function formatReport(r: Report, format: Format, only?: string): string {
  if (format === "json") return `${JSON.stringify(r, null, 2)}\n`;
  const list = sections(r).filter((s) => !only || s.name === only);
  return format === "csv" ? list.map(csvSection).join("\n") : list.map(tableSection).filter(Boolean).join("\n");
}

export const SECTION_NAMES = ["summary", "providers", "models", "unknown_prices", "apps", "accounts", "errors", "latency", "tools", "malformed"];

/** CSV: one block per section, its first column naming the section, blocks separated by a blank line. */
function csvSection(s: Section): string {
  const lines = [["section", ...s.columns], ...s.rows.map((row) => [s.name, ...row])].map((row) => row.map(csvField).join(","));
  return `${lines.join("\n")}\n`;
}

/** Aligned columns, numbers right-aligned; empty sections other than the summary are left out. */
function tableSection(s: Section): string {
  if (s.rows.length === 0) return "";
  // In the summary the metric names the unit (cost_usd), not the column.
  const cells = s.rows.map((row) => row.map((c, i) => tableCell(c, s.name === "summary" ? String(row[0]) : s.columns[i]!)));
  const widths = s.columns.map((h, i) => Math.min(60, Math.max(h.length, ...cells.map((row) => row[i]!.length))));
  const numeric = s.columns.map((_, i) => s.rows.every((row) => typeof row[i] === "number" || row[i] === null));
  const line = (row: string[]) =>
    row
      .map((c, i) => {
        const text = c.length > widths[i]! ? `${c.slice(0, widths[i]! - 1)}…` : c;
        return numeric[i] ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
      })
      .join("  ")
      .trimEnd();
  return [`${s.title}`, line(s.columns), line(widths.map((w) => "-".repeat(w))), ...cells.map(line), ""].join("\n");
}

function tableCell(c: Cell, column: string): string {
  if (c === null) return column.includes("cost") ? "unknown" : "-";
  if (typeof c === "boolean") return c ? "yes" : "no";
  if (typeof c === "number") {
    if (column.includes("cost")) return `$${c >= 1 ? c.toFixed(2) : c.toFixed(6)}`;
    return Number.isInteger(c) ? c.toLocaleString("en-US") : c.toFixed(1);
  }
  return c;
}
