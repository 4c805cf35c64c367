// `oisp sensor --tui` and `oisp watch`: the terminal view over the event store, in plain ANSI/VT
// sequences (which Windows Terminal and every Unix terminal speak). Reads through its own read-only
// connection; redraws when the sensor reports new events (LiveOutput) or, from another process, when
// the database changes (PRAGMA data_version, polled).
import { openWebQueries, type WebFilter, type WebQueries } from "../store/queries.ts";
import { VERSION } from "../version.ts";
import { providerName } from "../view/describe.ts";
import { parseEventJson } from "../view/event-json.ts";
import type { LiveSource } from "../view/live.ts";
import { buildProcessTree, flattenTree } from "../view/process-tree.ts";
import type { EventDetail } from "./detail.ts";
import { RecountClock } from "./recount.ts";
import {
  applyKey,
  initialState,
  itemCount,
  listRows,
  pageRows,
  render,
  scrollTo,
  selectedEventId,
  windowSince,
  type Key,
  type TuiData,
  type TuiState,
} from "./screen.ts";

export interface TuiOptions {
  dbPath: string;
  live?: LiveSource;
  input?: NodeJS.ReadStream;
  output?: NodeJS.WriteStream;
  /** Called once when the user quits (q / Ctrl+C). */
  onQuit?: () => void;
  /** How often to look for changes when there is no live feed (default 1000 ms). */
  pollMs?: number;
  /**
   * Hold what the process writes to stderr (the sensor's log) while the view owns the terminal, show the
   * newest line in the header, and print it all after the view closes. Default: when stderr is a terminal.
   */
  captureStderr?: boolean;
}

const MAX_HELD_LOG_LINES = 200;

export interface RunningTui {
  /** Resolves when the user quits or close() is called. */
  done: Promise<void>;
  close(): void;
}

const TIMELINE_PAGE = 200;
const TIMELINE_MAX = 10_000;
/** Aggregates scan the table: at most this often while traffic flows. */
const AGGREGATE_EVERY_MS = 5000;
const MIN_REDRAW_MS = 250;

/**
 * Terminal input → keys. One read can hold several keys (pasted text, key repeat). Sequences and control
 * keys get names; any other character comes through as itself (a command, or text while typing a filter).
 */
export function decodeKeys(data: string): Key[] {
  const keys: Key[] = [];
  const seqs: Array<[string, Key]> = [
    ["\x1b[A", "up"], ["\x1bOA", "up"], ["\x1b[B", "down"], ["\x1bOB", "down"],
    ["\x1b[5~", "pageup"], ["\x1b[6~", "pagedown"],
    ["\x1b[H", "home"], ["\x1bOH", "home"], ["\x1b[1~", "home"], ["\x1b[F", "end"], ["\x1bOF", "end"], ["\x1b[4~", "end"],
    ["\r\n", "enter"], ["\r", "enter"], ["\n", "enter"], ["\x7f", "backspace"], ["\b", "backspace"], ["\x03", "ctrl-c"],
  ];
  let i = 0;
  outer: while (i < data.length) {
    for (const [seq, key] of seqs) {
      if (data.startsWith(seq, i)) {
        keys.push(key);
        i += seq.length;
        continue outer;
      }
    }
    const ch = String.fromCodePoint(data.codePointAt(i)!);
    i += ch.length;
    if (ch === "\x1b") {
      // Esc alone (or before a plain character); else an unknown escape sequence: skip its parameter and final bytes.
      const m = /^[[O][0-9;]*[A-Za-z~]?/.exec(data.slice(i));
      if (m) {
        i += m[0].length;
        keys.push("other");
      } else keys.push("esc");
      continue;
    }
    keys.push(ch < " " ? "other" : ch);
  }
  return keys;
}

/**
 * What a `/` filter means: "provider:X" / "process:X" explicitly; else a provider or process name seen in
 * the store (a provider also by its display name, "OpenAI"); else text searched in full-capture events.
 */
export function filterFor(text: string, known: { providers: string[]; processes: string[] }): WebFilter {
  const t = text.trim();
  if (!t) return {};
  const m = /^(provider|process|proc|p):\s*(.+)$/i.exec(t);
  if (m) return m[1]!.toLowerCase() === "provider" ? { provider: m[2]!.trim() } : { process: m[2]!.trim() };
  const lower = t.toLowerCase();
  const provider = known.providers.find((p) => p.toLowerCase() === lower || providerName(p).toLowerCase() === lower);
  if (provider) return { provider };
  const proc = known.processes.find((p) => p.toLowerCase() === lower);
  if (proc) return { process: proc };
  return { text: t };
}

function emptyData(): TuiData {
  return { version: VERSION, timeline: [], timelineMore: false, apps: [], providers: [], models: [], processes: [], nowMs: Date.now(), source: "" };
}

export function startTui(o: TuiOptions): RunningTui {
  const input = o.input ?? process.stdin;
  const output = o.output ?? process.stdout;
  const queries: WebQueries = openWebQueries(o.dbPath);
  let state: TuiState = initialState();
  const data = emptyData();
  data.source = o.live ? "live" : "watching db";
  const aggregates = new RecountClock();
  let dirty = true;
  let closed = false;
  let lastDraw = 0;
  let drawTimer: ReturnType<typeof setTimeout> | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  const size = () => ({ cols: Math.max(20, output.columns || 80), rows: Math.max(6, output.rows || 24) });

  /** The activity list's filter: the window, and the `/` filter read as text, provider or process. */
  const activityFilter = (): WebFilter => {
    const f: WebFilter = state.filter
      ? filterFor(state.filter, { providers: queries.distinct("provider"), processes: queries.distinct("process_name") })
      : {};
    const since = windowSince(state.window, data.nowMs);
    return since === undefined ? f : { ...f, sinceMs: since };
  };

  const summary = new RecountClock();
  let summaryTimer: ReturnType<typeof setTimeout> | undefined;
  const loadTimeline = (atLeast: number, force: boolean) => {
    const page = queries.timeline(activityFilter(), { limit: Math.min(Math.max(atLeast, TIMELINE_PAGE), TIMELINE_MAX) });
    data.timeline = page.rows;
    data.timelineMore = page.next !== undefined;
    // The panes read up to an hour of events (and, for long windows, many rollup rows): while traffic
    // flows they are recounted at most once a second (5 min window) or every AGGREGATE_EVERY_MS.
    const every = state.window === "5m" ? 1000 : AGGREGATE_EVERY_MS;
    if (summary.due(state.window, data.nowMs, every, force)) {
      data.summary = queries.windowSummary(windowSince(state.window, data.nowMs));
      summary.counted(state.window, data.nowMs);
    } else if (!summaryTimer) {
      // Skipped: recount when the interval is up, so the panes catch up with what the list shows.
      summaryTimer = setTimeout(() => {
        summaryTimer = undefined;
        changed();
      }, summary.waitMs(data.nowMs, every));
    }
  };

  /** The opened event and the events of its call (request_id and related_events), parsed for the event view. */
  const loadDetail = (eventId: string) => {
    const rec = queries.event(eventId);
    const event = rec ? parseEventJson(rec.json) : undefined;
    if (!rec || !event) {
      data.detail = undefined;
      return;
    }
    const linked = Array.isArray(event.related_events)
      ? event.related_events.map((r) => (r && typeof r === "object" ? (r as { event_id?: unknown }).event_id : undefined)).filter((id): id is string => typeof id === "string")
      : [];
    const related: EventDetail["related"] = [];
    for (const r of queries.related(rec.request_id, linked, 50)) {
      if (r.event_id === eventId) continue;
      const json = queries.event(r.event_id)?.json;
      const parsed = json ? parseEventJson(json) : undefined;
      if (parsed) related.push(parsed);
    }
    data.detail = { row: rec, event, related };
  };

  const loadMoreTimeline = () => {
    const last = data.timeline[data.timeline.length - 1];
    if (!last || !data.timelineMore || data.timeline.length >= TIMELINE_MAX) return;
    const page = queries.timeline(activityFilter(), { before: { tsMs: last.ts_ms, eventId: last.event_id }, limit: TIMELINE_PAGE });
    data.timeline = data.timeline.concat(page.rows);
    data.timelineMore = page.next !== undefined && data.timeline.length < TIMELINE_MAX;
  };

  const refresh = (force: boolean) => {
    try {
      data.nowMs = Date.now();
      if (state.open) {
        if (force || data.detail?.row.event_id !== state.open.eventId) loadDetail(state.open.eventId);
      } else if (state.view === "timeline") loadTimeline(data.timeline.length, force);
      else if (aggregates.due(state.view, Date.now(), AGGREGATE_EVERY_MS, force)) {
        aggregates.counted(state.view, Date.now());
        if (state.view === "inventory") {
          data.apps = queries.apps();
          data.providers = queries.providers();
          data.models = queries.models();
        } else {
          data.processes = flattenTree(buildProcessTree(queries.processes(), queries.processActivity(undefined)));
        }
      }
      if (!data.source.startsWith("log: ")) data.source = o.live ? "live" : "watching db";
    } catch (err) {
      data.source = `error: ${(err as Error).message.split("\n")[0]}`;
    }
  };

  const draw = () => {
    drawTimer = undefined;
    if (closed) return;
    if (dirty) refresh(false);
    dirty = false;
    lastDraw = Date.now();
    const { cols, rows } = size();
    let lines: string[];
    try {
      lines = render(state, data, cols, rows);
    } catch (err) {
      // A bug in a view must not leave the terminal in raw mode with a half-drawn screen.
      lines = [`oisp: cannot draw this view: ${(err as Error).message}`.slice(0, cols), "press t, i or p for another view, q to quit"];
    }
    // Home, each line then clear-to-end-of-line, clear below: no flicker, no leftovers after a resize.
    output.write(`\x1b[H${lines.join("\x1b[K\r\n")}\x1b[K\x1b[J`);
  };

  const schedule = () => {
    if (closed || drawTimer) return;
    drawTimer = setTimeout(draw, Math.max(0, MIN_REDRAW_MS - (Date.now() - lastDraw)));
  };

  const changed = () => {
    dirty = true;
    schedule();
  };

  const onKeys = (chunk: Buffer | string) => {
    const { cols, rows } = size();
    for (const key of decodeKeys(chunk.toString())) {
      const before = state;
      const toOpen = key === "enter" ? selectedEventId(state, data) : undefined;
      state = applyKey(state, key, itemCount(state, data, cols), pageRows(state, rows));
      if (state.quit) {
        finish();
        o.onQuit?.();
        return;
      }
      if (toOpen) state = { ...state, open: { eventId: toOpen, offset: 0 } };
      // A new view, window, filter or event (or back from one): load what it shows now.
      if (state.view !== before.view || state.window !== before.window || state.filter !== before.filter || state.open?.eventId !== before.open?.eventId) {
        if (!state.open) data.detail = undefined;
        refresh(true);
      }
      if (!state.open && state.view === "timeline" && state.cursors.timeline.selected >= data.timeline.length - 1) {
        loadMoreTimeline();
        state.cursors.timeline = scrollTo(state.cursors.timeline, data.timeline.length, listRows(rows, "timeline"));
      }
    }
    draw();
  };

  const onResize = () => draw();

  let unsubscribe: (() => void) | undefined;
  let poller: ReturnType<typeof setInterval> | undefined;
  if (o.live) unsubscribe = o.live.subscribe(changed);
  else {
    let version = queries.dataVersion();
    poller = setInterval(() => {
      try {
        const v = queries.dataVersion();
        if (v !== version) {
          version = v;
          changed();
        }
      } catch {
        // the file went away or is locked for a moment: try again next tick
      }
    }, o.pollMs ?? 1000);
  }
  // The clock in "3m ago" columns moves even without traffic.
  const tick = setInterval(changed, 30_000);

  function finish() {
    if (closed) return;
    closed = true;
    unsubscribe?.();
    if (poller) clearInterval(poller);
    clearInterval(tick);
    if (drawTimer) clearTimeout(drawTimer);
    if (summaryTimer) clearTimeout(summaryTimer);
    input.off("data", onKeys);
    output.off("resize", onResize);
    if (input.isTTY) input.setRawMode(false);
    input.pause();
    output.write("\x1b[?25h\x1b[?1049l");
    if (captureStderr) {
      process.stderr.write = originalStderrWrite;
      if (heldDropped) process.stderr.write(`(${heldDropped} earlier log lines not kept)\n`);
      for (const line of held) process.stderr.write(`${line}\n`);
    }
    queries.close();
    resolveDone();
  }

  // Log lines would scribble over the screen: hold them (bounded) and show the newest in the header.
  const held: string[] = [];
  let heldDropped = 0;
  const originalStderrWrite = process.stderr.write;
  const captureStderr = o.captureStderr ?? (process.stderr.isTTY === true && output.isTTY === true);
  if (captureStderr) {
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
      for (const line of text.split("\n")) {
        if (!line) continue;
        held.push(line);
        if (held.length > MAX_HELD_LOG_LINES) {
          held.shift();
          heldDropped++;
        }
        data.source = `log: ${line}`;
      }
      changed();
      const done = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      done?.();
      return true;
    }) as typeof process.stderr.write;
  }

  output.write("\x1b[?1049h\x1b[?25l");
  if (input.isTTY) input.setRawMode(true);
  input.setEncoding("utf8");
  input.on("data", onKeys);
  input.resume();
  output.on("resize", onResize);
  refresh(true);
  dirty = false;
  draw();

  return { done, close: finish };
}
