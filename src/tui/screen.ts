// The terminal view as pure functions: what is loaded (TuiData), where the user is (TuiState), how a key
// moves them (applyKey), and the screen as exactly `rows` lines of at most `cols` columns (render).
// No I/O here, so every frame can be checked in a unit test; index.ts does the terminal.
// The main screen is the seed's: the AI activity list over three summary panes (providers, apps using AI,
// confidence) for a window of time; Enter opens an event, `/` filters, `w` changes the window.
import type { AppUsage, ModelUsage, ProviderUsage, TimelineRow, WindowSummary } from "../store/queries.ts";
import { captureLabel, describeEvent, describeProcess, providerName, typeLabel } from "../view/describe.ts";
import { fmtAgo, fmtCost, fmtMs, fmtTime, fmtTokens } from "../view/format.ts";
import type { FlatProcess } from "../view/process-tree.ts";
import { detailLines, type EventDetail } from "./detail.ts";
import { layout, padRight, row, truncate, width, type Column } from "./text.ts";

export type ViewKey = "timeline" | "inventory" | "processes";

/** The main screen's time windows, in the order `w` cycles through them. */
export const WINDOWS = [
  { key: "5m", label: "last 5 min", ms: 5 * 60_000 },
  { key: "1h", label: "last hour", ms: 3_600_000 },
  { key: "24h", label: "last 24 h", ms: 86_400_000 },
  { key: "all", label: "all time", ms: undefined },
] as const;
export type WindowKey = (typeof WINDOWS)[number]["key"];

/** Start of a window at `nowMs` (undefined: all time). */
export function windowSince(key: WindowKey, nowMs: number): number | undefined {
  const w = WINDOWS.find((x) => x.key === key)!;
  return w.ms === undefined ? undefined : nowMs - w.ms;
}

export interface TuiData {
  /** Version shown in the title. */
  version?: string;
  /** The main screen's panes, for the selected window. */
  summary?: WindowSummary;
  /** The event opened with Enter, once loaded. */
  detail?: EventDetail;
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
  /** The main screen's time window. */
  window: WindowKey;
  /** The applied `/` filter ("" = none): text, or a provider or process name (index.ts decides which). */
  filter: string;
  /** The filter being typed after `/`, until Enter applies it or Esc drops it. */
  editing: string | null;
  /** The event opened with Enter (its id; index.ts loads it into TuiData.detail), and how far it is scrolled. */
  open: { eventId: string; offset: number } | null;
}

export function initialState(): TuiState {
  const c = (): Cursor => ({ selected: 0, offset: 0 });
  return {
    view: "timeline",
    cursors: { timeline: c(), inventory: c(), processes: c() },
    quit: false,
    help: false,
    window: "5m",
    filter: "",
    editing: null,
    open: null,
  };
}

/** Header, column titles, detail line and footer: the rest of the screen lists rows. */
export const CHROME_ROWS = 4;

/** Lines of each summary pane on the main screen (below its title): more on taller terminals, none on tiny ones. */
export function paneRows(screenRows: number): number {
  if (screenRows < 14) return 0;
  return Math.min(10, Math.max(3, Math.floor(screenRows / 6)));
}

/** List rows on screen; the main screen (timeline) also gives room to its panes (title + paneRows). */
export function listRows(screenRows: number, view: ViewKey = "inventory"): number {
  const panes = view === "timeline" && paneRows(screenRows) ? paneRows(screenRows) + 1 : 0;
  return Math.max(1, screenRows - CHROME_ROWS - panes);
}

/**
 * Keys as index.ts decodes them from terminal input: named keys, or one typed character (which means a
 * command normally and text while a `/` filter is being typed).
 */
export type Key =
  | "down" | "up" | "pagedown" | "pageup" | "home" | "end" | "enter" | "esc" | "backspace" | "ctrl-c" | "other"
  | (string & { readonly __char?: never });

/** Moves the cursor; `count` = items in the current view, `page` = list rows on screen. */
export function applyKey(state: TuiState, key: Key, count: number, page: number): TuiState {
  const s: TuiState = { ...state, cursors: { ...state.cursors } };
  if (key === "ctrl-c") return { ...s, quit: true };
  if (s.editing !== null) {
    // Typing a filter: every printable character is text.
    if (key === "enter") return { ...s, filter: s.editing.trim(), editing: null, cursors: { ...s.cursors, timeline: { selected: 0, offset: 0 } } };
    if (key === "esc") return { ...s, editing: null };
    if (key === "backspace") return { ...s, editing: [...s.editing].slice(0, -1).join("") };
    if (key.length >= 1 && [...key].length === 1 && key >= " ") return { ...s, editing: (s.editing + key).slice(0, 200) };
    return s;
  }
  if (s.open) {
    // The event view: Esc (or Backspace, Enter) returns to the list; movement scrolls.
    if (key === "esc" || key === "backspace" || key === "enter") return { ...s, open: null };
    if (key === "q" || key === "Q") return { ...s, quit: true };
    const step = key === "j" || key === "down" ? 1 : key === "k" || key === "up" ? -1 : key === "pagedown" || key === " " || key === "f" ? page : key === "pageup" || key === "b" ? -page : 0;
    if (key === "home" || key === "g") return { ...s, open: { ...s.open, offset: 0 } };
    return { ...s, open: { ...s.open, offset: Math.max(0, Math.min(Math.max(0, count - page), s.open.offset + step)) } };
  }
  const named: Record<string, Key> = { " ": "pagedown", f: "pagedown", b: "pageup", g: "home", G: "end", h: "?", Q: "q" };
  key = named[key] ?? key;
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
    case "w": {
      const i = WINDOWS.findIndex((w) => w.key === s.window);
      return { ...s, view: "timeline", help: false, window: WINDOWS[(i + 1) % WINDOWS.length]!.key, cursors: { ...s.cursors, timeline: { selected: 0, offset: 0 } } };
    }
    case "/":
      return { ...s, view: "timeline", help: false, editing: s.filter };
    case "esc":
      return s.help ? { ...s, help: false } : s.filter ? { ...s, filter: "", cursors: { ...s.cursors, timeline: { selected: 0, offset: 0 } } } : s;
  }
  if (key === "enter") return s; // opening an event needs the row: index.ts sets `open` (openSelected)
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

/** Cost in at most 8 columns: $0.00029, $0.0123, $12.34, $1234. */
export function shortCost(usd: number | null): string {
  if (usd === null || !Number.isFinite(usd)) return "";
  if (usd === 0) return "$0";
  if (usd >= 1000) return `$${Math.round(usd)}`;
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  if (usd >= 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(5)}`;
}

function statusMark(success: number | null, code: number | null): string {
  if (success === 1) return code ? String(code) : "ok";
  if (success === 0) return code ? String(code) : "err";
  return "";
}

/** Wide terminals get the call's figures in their own columns; 80 columns show them on the detail line. */
const WIDE_COLS = 120;

/** The activity list: what happened, by which process, with the capture mark. */
function timelineView(d: TuiData, cols: number, filter = ""): ListView {
  const wide = cols >= WIDE_COLS;
  const columns = layout(
    cols,
    wide
      ? [
          { title: "Time", width: 8 },
          { title: "Type", width: 15 },
          { title: "What happened", width: 20, flex: true, weight: 3 },
          { title: "Process", width: 12, flex: true, weight: 1, min: 10 },
          { title: "In/Out", width: 11, align: "right" },
          { title: "Cost", width: 8, align: "right" },
          { title: "Latency", width: 8, align: "right" },
          { title: "St", width: 3, align: "right" },
          { title: "Capture", width: 7 },
        ]
      : [
          { title: "Time", width: 8 },
          { title: "Type", width: 12 },
          { title: "What happened", width: 20, flex: true, weight: 2, min: 12 },
          { title: "Process", width: 10, flex: true, weight: 1, min: 8 },
          { title: "Capture", width: 7 },
        ],
  );
  const lines = d.timeline.map((r) => {
    const mark = captureLabel(r.completeness);
    const cells = [fmtTime(r.ts_ms, d.nowMs).slice(-12, -4) || "", typeLabel(r.event_type, !wide), describeEvent(r), describeProcess(r)];
    if (wide) {
      cells.push(
        r.input_tokens !== null || r.output_tokens !== null ? `${fmtTokens(r.input_tokens) || "-"}/${fmtTokens(r.output_tokens) || "-"}` : "",
        shortCost(r.cost_usd),
        r.latency_ms !== null ? fmtMs(r.latency_ms) : "",
        statusMark(r.success, r.status_code),
      );
    }
    cells.push(mark ? `[${mark}]` : "");
    return row(cells, columns);
  });
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
        r.input_tokens !== null || r.output_tokens !== null ? `tokens ${fmtTokens(r.input_tokens) || "-"}/${fmtTokens(r.output_tokens) || "-"}` : "",
        r.cost_usd !== null ? fmtCost(r.cost_usd) : "",
        r.latency_ms !== null ? `latency ${fmtMs(r.latency_ms)}` : "",
        r.status_code !== null ? `status ${r.status_code}` : "",
        "Enter: open",
      ];
      return parts.filter(Boolean).join("  ");
    },
    empty: filter
      ? `Nothing matches "${filter}" in this window. Esc clears the filter; w widens the window.`
      : "No AI activity in this window. Press w for a longer one; run `oisp up` and use your AI tool to capture some.",
  };
}

/** The three panes under the activity list, each a third of the width: `rows` lines plus a title. */
export function summaryPanes(summary: WindowSummary | undefined, cols: number, rows: number): string[] {
  const w = Math.max(8, Math.floor((cols - 2) / 3));
  const lastW = Math.max(8, cols - 2 * (w + 1));
  // Name and figure close together (at most 26 columns) however wide the pane is.
  const entry = (name: string, value: string, cw: number) => {
    const v = ` ${value}`;
    return padRight(name, Math.max(1, Math.min(cw, 26) - width(v) - 1)) + v;
  };
  const s = summary ?? { providers: [], apps: [], confidence: { full: 0, metadata: 0, redacted: 0, total: 0 } };
  const list = <T>(items: T[], f: (x: T) => [string, string], cw: number): string[] => {
    const shown = items.length > rows ? items.slice(0, rows - 1) : items;
    const out = shown.map((x) => entry(...f(x), cw));
    if (items.length > rows) out.push(`+${items.length - shown.length} more`);
    return out;
  };
  const providers = list(s.providers, (p) => [providerName(p.provider), String(p.requests)], w);
  const apps = list(s.apps, (a) => [a.process_name, String(a.requests)], w);
  const c = s.confidence;
  const pct = (n: number) => (c.total ? `${Math.round((n / c.total) * 100)}%` : "-");
  const conf = [entry("Full", pct(c.full), lastW), entry("Metadata", pct(c.metadata), lastW), entry("Redacted", pct(c.redacted), lastW)].slice(0, rows);
  const title = `${padRight("PROVIDERS", w)} ${padRight("APPS USING AI", w)} ${truncate(`CONFIDENCE (${c.sampled ? `newest ${c.total.toLocaleString("en-US")}` : `${c.total} AI events`})`, lastW)}`;
  const out = [title];
  for (let i = 0; i < rows; i++) {
    out.push(`${padRight(providers[i] ?? (i === 0 && !s.providers.length ? "none" : ""), w)} ${padRight(apps[i] ?? (i === 0 && !s.apps.length ? "none" : ""), w)} ${conf[i] ?? ""}`);
  }
  return out;
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
  for (const p of d.providers) add(providerName(p.provider), p, `${providerName(p.provider)} (${p.provider}): ${p.events} events`);
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
  const lines: string[] = [];
  const details: string[] = [];
  d.processes.forEach(({ node, depth }, i) => {
    const indent = "  ".repeat(Math.max(0, Math.min(depth - 1, 8)));
    lines.push(
      row(
        [
          `${indent}${depth ? (lastChild[i] ? "└ " : "├ ") : ""}${
            node.seen ? node.name : node.name && node.name !== "?" ? `${node.name} (parent)` : "(parent, not seen)"
          }`,
          String(node.pid),
          node.requests ? String(node.requests) : "",
          node.costUsd ? fmtCost(node.costUsd) : "",
          node.providers.map((p) => providerName(p.provider)).join(", "),
        ],
        columns,
      ),
    );
    details.push(
      [`pid ${node.pid}`, node.ppid !== null ? `ppid ${node.ppid}` : "", node.exe ?? "", node.lastMs ? `last ${fmtAgo(node.lastMs, d.nowMs)}` : ""].filter(Boolean).join("  "),
    );
    // What it ran and wrote (process.exec / file.write), one line each under it.
    const under = `${"  ".repeat(Math.max(0, Math.min(depth, 8)))}${depth ? "  " : ""}↳ `;
    for (const a of node.activity) {
      lines.push(padRight(`${under}${typeLabel(a.event_type)} ${describeEvent(a)}`, cols));
      details.push([a.ts, typeLabel(a.event_type), describeEvent(a)].join("  "));
    }
  });
  return { columns, lines, detail: (i) => details[i] ?? "", empty: "No processes seen yet." };
}

export function viewOf(state: TuiState, d: TuiData, cols: number): ListView {
  return state.view === "timeline" ? timelineView(d, cols, state.filter) : state.view === "inventory" ? inventoryView(d, cols) : processesView(d, cols);
}

/** Items the movement keys move through: the list's rows, or the open event's lines. */
export function itemCount(state: TuiState, d: TuiData, cols: number): number {
  if (state.open) return d.detail ? detailLines(d.detail, cols).length : 0;
  return viewOf(state, d, cols).lines.length;
}

/** Rows the movement keys page by in the current state. */
export function pageRows(state: TuiState, screenRows: number): number {
  return state.open ? Math.max(1, screenRows - 2) : listRows(screenRows, state.view);
}

/** The event to open on Enter: the selected activity row's (undefined elsewhere or on an empty list). */
export function selectedEventId(state: TuiState, d: TuiData): string | undefined {
  if (state.view !== "timeline" || state.open || state.editing !== null || state.help) return undefined;
  return d.timeline[state.cursors.timeline.selected]?.event_id;
}

const HELP = [
  "Keys",
  "  t  AI activity (main screen)    i  inventory: apps, providers, models",
  "  p  process tree                 q  quit (Ctrl+C too)",
  "  w  window: 5 min, 1 h, 24 h, all time",
  "  /  filter: text, a provider or a process (provider:NAME, process:NAME); Esc clears",
  "  Enter  open the selected event (request and response side by side); Esc returns",
  "  j / k, arrows        move one row",
  "  space / b, PgDn / PgUp   move one page",
  "  g / G, Home / End    first / last row",
  "  ?  this help",
  "",
  "Capture marks: [FULL] content kept, [RED] redacted, [META] metadata only.",
];

const TABS: Array<[ViewKey, string]> = [
  ["timeline", "timeline"],
  ["inventory", "inventory"],
  ["processes", "process tree"],
];

/** The whole screen: exactly `rows` lines, each at most `cols` columns wide (plus SGR codes). */
export function render(state: TuiState, d: TuiData, cols: number, rows: number): string[] {
  const win = WINDOWS.find((w) => w.key === state.window)!;
  const where = state.open
    ? "EVENT"
    : state.view === "timeline"
      ? `AI ACTIVITY (${win.label})${state.filter ? ` filter: ${state.filter}` : ""}`
      : state.view === "inventory"
        ? "INVENTORY"
        : "PROCESS TREE";
  const title = ` OISP Sensor${d.version ? ` v${d.version}` : ""}  ${where}`;
  const right = `${d.source} `;
  const header = padRight(title, Math.max(0, cols - width(right))) + right;
  const out: string[] = [style(SGR.inverse, truncate(header, cols))];

  if (state.open) {
    // The event view: its lines, scrolled, then a footer.
    const lines = d.detail ? detailLines(d.detail, cols) : ["loading…"];
    const page = rows - 2;
    const offset = Math.min(state.open.offset, Math.max(0, lines.length - page));
    for (let i = 0; i < page; i++) out.push(truncate(lines[offset + i] ?? "", cols));
    const pos = `${Math.min(lines.length, offset + page)}/${lines.length}`;
    out.push(style(SGR.inverse, padRight(" Esc back  j/k scroll  space/b page  q quit", Math.max(0, cols - pos.length - 1)) + `${pos} `));
    return out;
  }

  const view = viewOf(state, d, cols);
  const page = listRows(rows, state.view);
  const cur = scrollTo(state.cursors[state.view], view.lines.length, page);
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
  if (state.view === "timeline" && paneRows(rows)) {
    const panes = summaryPanes(d.summary, cols, paneRows(rows));
    out.push(style(SGR.bold, truncate(panes[0]!, cols)));
    for (const l of panes.slice(1)) out.push(truncate(l, cols));
  }
  if (state.editing !== null) out.push(style(SGR.bold, truncate(`/${state.editing}▏  Enter apply  Esc cancel  (text, provider or process)`, cols)));
  else out.push(style(SGR.dim, truncate(view.detail(cur.selected), cols)));
  const more = state.view === "timeline" && d.timelineMore ? "+" : "";
  const position = view.lines.length ? `${cur.selected + 1}/${view.lines.length}${more}` : "0/0";
  const tabs = TABS.map(([v, name]) => (v === state.view ? `[${name[0]!.toUpperCase()}]${name.slice(1)}` : `[${name[0]}]${name.slice(1)}`)).join(" ");
  const keys = ` ${tabs} [/]filter [w]indow [q]uit`;
  out.push(style(SGR.inverse, padRight(keys, Math.max(0, cols - position.length - 1)) + `${position} `));
  return out;
}
