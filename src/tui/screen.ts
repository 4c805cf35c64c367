// The terminal view as pure functions: what is loaded (TuiData), where the user is (TuiState), how a key
// moves them (applyKey), and the screen as exactly `rows` lines of at most `cols` columns (render).
// No I/O here, so every frame can be checked in a unit test; index.ts does the terminal.
import type { AppUsage, ModelUsage, ProviderUsage, TimelineRow } from "../store/queries.ts";
import { fmtAgo, fmtCost, fmtMs, fmtTime, fmtTokens } from "../view/format.ts";
import type { FlatProcess } from "../view/process-tree.ts";
import { layout, padRight, row, truncate, type Column } from "./text.ts";

export type ViewKey = "timeline" | "inventory" | "processes";

export interface TuiData {
  timeline: TimelineRow[];
  /** More (older) events exist beyond the loaded ones. */
  timelineMore: boolean;
  apps: AppUsage[];
  providers: ProviderUsage[];
  models: ModelUsage[];
  processes: FlatProcess[];
  nowMs: number;
  /** "live", "polling db", or an error to show in the footer. */
  source: string;
}

export interface Cursor {
  selected: number;
  offset: number;
}

export interface TuiState {
  view: ViewKey;
  cursors: Record<ViewKey, Cursor>;
  quit: boolean;
  help: boolean;
}

export function initialState(): TuiState {
  const c = (): Cursor => ({ selected: 0, offset: 0 });
  return { view: "timeline", cursors: { timeline: c(), inventory: c(), processes: c() }, quit: false, help: false };
}

/** Header, column titles, detail line and footer: the rest of the screen lists rows. */
export const CHROME_ROWS = 4;

export function listRows(screenRows: number): number {
  return Math.max(1, screenRows - CHROME_ROWS);
}

/** Names of keys as index.ts decodes them from terminal input. */
export type Key = "t" | "i" | "p" | "q" | "j" | "k" | "down" | "up" | "pagedown" | "pageup" | "home" | "end" | "?" | "other";

/** Moves the cursor; `count` = items in the current view, `page` = list rows on screen. */
export function applyKey(state: TuiState, key: Key, count: number, page: number): TuiState {
  const s: TuiState = { ...state, cursors: { ...state.cursors } };
  switch (key) {
    case "q":
      return { ...s, quit: true };
    case "t":
      return { ...s, view: "timeline", help: false };
    case "i":
      return { ...s, view: "inventory", help: false };
    case "p":
      return { ...s, view: "processes", help: false };
    case "?":
      return { ...s, help: !s.help };
  }
  const c = { ...s.cursors[s.view] };
  const last = Math.max(0, count - 1);
  if (key === "j" || key === "down") c.selected = Math.min(last, c.selected + 1);
  else if (key === "k" || key === "up") c.selected = Math.max(0, c.selected - 1);
  else if (key === "pagedown") {
    // A page turns the view as well as the selection, like a pager.
    c.selected = Math.min(last, c.selected + page);
    c.offset += page;
  } else if (key === "pageup") {
    c.selected = Math.max(0, c.selected - page);
    c.offset = Math.max(0, c.offset - page);
  }
  else if (key === "home") c.selected = 0;
  else if (key === "end") c.selected = last;
  s.cursors[s.view] = scrollTo(c, count, page);
  return s;
}

/** Keeps the selection on screen and in range (the list may have shrunk or grown since). */
export function scrollTo(c: Cursor, count: number, page: number): Cursor {
  const selected = Math.min(Math.max(0, c.selected), Math.max(0, count - 1));
  let offset = Math.max(0, Math.min(c.offset, selected));
  if (selected >= offset + page) offset = selected - page + 1;
  offset = Math.max(0, Math.min(offset, Math.max(0, count - page)));
  return { selected, offset };
}

// --- styling (SGR); applied after fitting text to width, so it never changes the layout -------------------
const SGR = { reset: "\x1b[0m", inverse: "\x1b[7m", bold: "\x1b[1m", dim: "\x1b[2m", red: "\x1b[31m", green: "\x1b[32m", cyan: "\x1b[36m" };
const style = (codes: string, text: string) => `${codes}${text}${SGR.reset}`;

/** A list view: column titles and one line per item, plus the detail line for the selected item. */
interface ListView {
  columns: Column[];
  lines: string[];
  /** Lines that are section titles (inventory), drawn bold. */
  sections?: Set<number>;
  detail: (index: number) => string;
  empty: string;
}

function shortType(t: string): string {
  if (t === "process.exec") return "exec";
  if (t === "file.write") return "write";
  return t === "ai.request" ? "request" : t === "ai.response" ? "response" : t.replace(/^agent\./, "");
}

/** Cost in at most 8 columns: $0.00029, $0.0123, $12.34, $1234. */
export function shortCost(usd: number | null): string {
  if (usd === null || !Number.isFinite(usd)) return "";
  if (usd === 0) return "$0";
  if (usd >= 1000) return `$${Math.round(usd)}`;
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  if (usd >= 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(5)}`;
}

function captureMark(c: string | null): string {
  return c === "full" ? "F" : c === "redacted" || c === "partial" ? "R" : c === "metadata_only" ? "M" : "?";
}

function statusMark(success: number | null, code: number | null): string {
  if (success === 1) return code ? String(code) : "ok";
  if (success === 0) return code ? String(code) : "err";
  return "";
}

function timelineView(d: TuiData, cols: number): ListView {
  const columns = layout(cols, [
    { title: "Time", width: 8 },
    { title: "Type", width: 8 },
    { title: "Provider", width: 9 },
    { title: "Model", width: 10, flex: true, min: 8 },
    { title: "Process", width: 8, flex: true, min: 6 },
    { title: "In/Out", width: 9, align: "right" },
    { title: "Cost", width: 8, align: "right" },
    { title: "St", width: 3, align: "right" },
    { title: "C", width: 1 },
  ]);
  const lines = d.timeline.map((r) =>
    row(
      [
        fmtTime(r.ts_ms, d.nowMs).slice(-12, -4) || "",
        shortType(r.event_type),
        r.provider ?? "",
        r.model ?? "",
        r.process_name ?? (r.pid !== null ? String(r.pid) : ""),
        r.input_tokens !== null || r.output_tokens !== null ? `${fmtTokens(r.input_tokens) || "-"}/${fmtTokens(r.output_tokens) || "-"}` : "",
        shortCost(r.cost_usd),
        statusMark(r.success, r.status_code),
        captureMark(r.completeness),
      ],
      columns,
    ),
  );
  return {
    columns,
    lines,
    detail: (i) => {
      const r = d.timeline[i];
      if (!r) return "";
      const parts = [
        r.ts,
        r.pid !== null ? `pid ${r.pid}` : "",
        r.detail ?? "",
        r.success === 0 ? "FAILED" : "",
        r.latency_ms !== null ? `latency ${fmtMs(r.latency_ms)}` : "",
        r.request_id ?? "",
        r.event_id,
      ];
      return parts.filter(Boolean).join("  ");
    },
    empty: "No AI traffic captured yet. Run `oisp up`, export what it prints, and use your AI tool.",
  };
}

function inventoryView(d: TuiData, cols: number): ListView {
  const columns = layout(cols, [
    { title: "Name", width: 16, flex: true, min: 10 },
    { title: "Requests", width: 8, align: "right" },
    { title: "Errors", width: 6, align: "right" },
    { title: "Tokens in", width: 9, align: "right" },
    { title: "Tokens out", width: 10, align: "right" },
    { title: "Cost", width: 9, align: "right" },
    { title: "Last", width: 8, align: "right" },
  ]);
  const lines: string[] = [];
  const details: string[] = [];
  const sections = new Set<number>();
  const section = (title: string) => {
    sections.add(lines.length);
    lines.push(padRight(title, cols));
    details.push("");
  };
  const add = (name: string, g: { requests: number; errors: number; input_tokens: number; output_tokens: number; cost_usd: number; last_ms: number }, detail: string) => {
    lines.push(row([`  ${name}`, String(g.requests), String(g.errors), fmtTokens(g.input_tokens), fmtTokens(g.output_tokens), fmtCost(g.cost_usd), fmtAgo(g.last_ms, d.nowMs)], columns));
    details.push(detail);
  };
  section(`Apps using AI (${d.apps.length})`);
  for (const a of d.apps) add(a.process_name, a, `${a.process_name}: ${a.pids} process${a.pids === 1 ? "" : "es"}, ${a.events} events`);
  section(`Providers (${d.providers.length})`);
  for (const p of d.providers) add(p.provider, p, `${p.provider}: ${p.events} events`);
  section(`Models (${d.models.length})`);
  // A call counts under the model it asked for; the model(s) that answered it are shown beside.
  for (const m of d.models) {
    const answered = m.answered_by.length ? ` (${m.answered_by.join(", ")})` : "";
    const by = m.answered_by.length ? `, answered by ${m.answered_by.join(", ")}` : "";
    add(`${m.model}${answered}`, m, `${m.model} (${m.provider ?? "?"}): ${m.events} events${by}`);
  }
  return { columns, lines, sections, detail: (i) => details[i] ?? "", empty: "" };
}

function processesView(d: TuiData, cols: number): ListView {
  const columns = layout(cols, [
    { title: "Process", width: 20, flex: true, min: 12 },
    { title: "PID", width: 7, align: "right" },
    { title: "Requests", width: 8, align: "right" },
    { title: "Cost", width: 9, align: "right" },
    { title: "Providers", width: 16, flex: true, min: 8 },
  ]);
  // ├ when a sibling follows, └ for the last child.
  const lastChild = d.processes.map(({ depth }, i) => {
    for (let j = i + 1; j < d.processes.length; j++) {
      const dj = d.processes[j]!.depth;
      if (dj < depth) return true;
      if (dj === depth) return false;
    }
    return true;
  });
  const lines = d.processes.map(({ node, depth }, i) =>
    row(
      [
        `${"  ".repeat(Math.max(0, Math.min(depth - 1, 8)))}${depth ? (lastChild[i] ? "└ " : "├ ") : ""}${
          node.seen ? node.name : node.name && node.name !== "?" ? `${node.name} (parent)` : "(parent, not seen)"
        }`,
        String(node.pid),
        node.requests ? String(node.requests) : "",
        node.costUsd ? fmtCost(node.costUsd) : "",
        node.providers.map((p) => p.provider).join(", "),
      ],
      columns,
    ),
  );
  return {
    columns,
    lines,
    detail: (i) => {
      const p = d.processes[i]?.node;
      return p ? [`pid ${p.pid}`, p.ppid !== null ? `ppid ${p.ppid}` : "", p.exe ?? "", p.lastMs ? `last ${fmtAgo(p.lastMs, d.nowMs)}` : ""].filter(Boolean).join("  ") : "";
    },
    empty: "No processes seen yet.",
  };
}

export function viewOf(state: TuiState, d: TuiData, cols: number): ListView {
  return state.view === "timeline" ? timelineView(d, cols) : state.view === "inventory" ? inventoryView(d, cols) : processesView(d, cols);
}

export function itemCount(state: TuiState, d: TuiData, cols: number): number {
  return viewOf(state, d, cols).lines.length;
}

const HELP = [
  "Keys",
  "  t  timeline (newest first)      i  inventory: apps, providers, models",
  "  p  process tree                 q  quit (Ctrl+C too)",
  "  j / k, arrows        move one row",
  "  space / b, PgDn / PgUp   move one page",
  "  g / G, Home / End    first / last row",
  "  ?  this help",
  "",
  "Capture marks: F full content, R redacted, M metadata only.",
];

/** The whole screen: exactly `rows` lines, each at most `cols` columns wide (plus SGR codes). */
export function render(state: TuiState, d: TuiData, cols: number, rows: number): string[] {
  const view = viewOf(state, d, cols);
  const page = listRows(rows);
  const cur = scrollTo(state.cursors[state.view], view.lines.length, page);
  const tabs = (["timeline", "inventory", "processes"] as const)
    .map((v) => (v === state.view ? `[${v[0]}]${v.slice(1)}` : ` ${v[0]} ${v.slice(1)}`))
    .join(" ");
  const title = ` OISP Sensor  ${tabs}`;
  const right = `${d.source} `;
  const header = padRight(title, Math.max(0, cols - right.length)) + right;
  const out: string[] = [style(SGR.inverse, truncate(header, cols))];

  if (state.help) {
    out.push("");
    for (let i = 0; i < page; i++) out.push(HELP[i] !== undefined ? truncate(HELP[i]!, cols) : "");
  } else {
    out.push(style(SGR.bold, truncate(row(view.columns.map((c) => c.title), view.columns), cols)));
    for (let i = 0; i < page; i++) {
      const idx = cur.offset + i;
      const line = view.lines[idx];
      if (line === undefined) {
        out.push(i === 0 && view.lines.length === 0 ? style(SGR.dim, truncate(view.empty, cols)) : "");
        continue;
      }
      const fitted = padRight(line, cols);
      if (idx === cur.selected) out.push(style(SGR.inverse, fitted));
      else if (view.sections?.has(idx)) out.push(style(SGR.bold + SGR.cyan, fitted));
      else out.push(fitted);
    }
  }
  out.push(style(SGR.dim, truncate(view.detail(cur.selected), cols)));
  const more = state.view === "timeline" && d.timelineMore ? "+" : "";
  const position = view.lines.length ? `${cur.selected + 1}/${view.lines.length}${more}` : "0/0";
  const keys = " t i p views  j/k move  space/b page  ? help  q quit";
  out.push(style(SGR.inverse, padRight(keys, Math.max(0, cols - position.length - 1)) + `${position} `));
  return out.map((l) => l);
}
