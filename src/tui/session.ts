// The terminal view's state and what it loads, without a terminal or timers: keys in, actions out. The
// shell (index.ts) reads the terminal, owns the timers and writes frames; this decides what each key,
// tick or log line means and which store reads that needs. Tested against a real store, no terminal.
import type { WebFilter, WebQueries } from "../store/queries.ts";
import { VERSION } from "../version.ts";
import { providerName } from "../view/describe.ts";
import { parseEventJson } from "../view/event-json.ts";
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

export const TIMELINE_PAGE = 200;
export const TIMELINE_MAX = 10_000;
/** Aggregates scan the table: at most this often while traffic flows. */
export const AGGREGATE_EVERY_MS = 5000;

/** The store reads the view makes (a read-only WebQueries in the shell). */
export type TuiStore = Pick<WebQueries, "timeline" | "windowSummary" | "event" | "related" | "distinct" | "apps" | "providers" | "models" | "processes" | "processActivity">;

/** What the shell must do after a key, a refresh or a log line. */
export type TuiAction =
  /** The user quit (q / Ctrl+C): restore the terminal and stop. */
  | { kind: "quit" }
  /** The summary panes skipped a recount: call refresh() again after this long so they catch up. */
  | { kind: "recount-in"; ms: number };

/** Where the footer's source line comes from: the feed, a held log line, or the last read's error. */
type Source = { kind: "feed" } | { kind: "log"; line: string } | { kind: "error"; message: string };

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

export class TuiSession {
  state: TuiState = initialState();
  readonly data: TuiData;
  private source: Source = { kind: "feed" };
  private readonly aggregates = new RecountClock();
  private readonly summary = new RecountClock();

  constructor(
    private readonly store: TuiStore,
    /** "live" (fed by the sensor) or "watching db" (polling another process's database). */
    private readonly feed: "live" | "watching db",
    private readonly now: () => number = Date.now,
  ) {
    this.data = { version: VERSION, timeline: [], timelineMore: false, apps: [], providers: [], models: [], processes: [], nowMs: now(), source: feed };
  }

  /** A line the process wrote to stderr while the view owns the terminal: shown in the footer. */
  log(line: string): void {
    this.source = { kind: "log", line };
    this.showSource();
  }

  /** The keys of one terminal read, on a cols×rows screen. Stops at quit. */
  keys(keys: Key[], cols: number, rows: number): TuiAction[] {
    const actions: TuiAction[] = [];
    for (const key of keys) {
      const before = this.state;
      const toOpen = key === "enter" ? selectedEventId(before, this.data) : undefined;
      let state = applyKey(before, key, itemCount(before, this.data, cols), pageRows(before, rows));
      if (state.quit) {
        this.state = state;
        actions.push({ kind: "quit" });
        return actions;
      }
      if (toOpen) state = { ...state, open: { eventId: toOpen, offset: 0 } };
      this.state = state;
      // A new view, window, filter or event (or back from one): load what it shows now.
      if (state.view !== before.view || state.window !== before.window || state.filter !== before.filter || state.open?.eventId !== before.open?.eventId) {
        if (!state.open) this.data.detail = undefined;
        actions.push(...this.refresh(true));
      }
      if (!state.open && state.view === "timeline" && state.cursors.timeline.selected >= this.data.timeline.length - 1) {
        this.loadMoreTimeline();
        state.cursors.timeline = scrollTo(state.cursors.timeline, this.data.timeline.length, listRows(rows, "timeline"));
      }
    }
    return actions;
  }

  /** Re-read what the current view shows (forced: now; else aggregates only once their interval is up). */
  refresh(force: boolean): TuiAction[] {
    const actions: TuiAction[] = [];
    try {
      const now = this.now();
      this.data.nowMs = now;
      const s = this.state;
      if (s.open) {
        if (force || this.data.detail?.row.event_id !== s.open.eventId) this.loadDetail(s.open.eventId);
      } else if (s.view === "timeline") actions.push(...this.loadTimeline(this.data.timeline.length, force));
      else if (this.aggregates.due(s.view, now, AGGREGATE_EVERY_MS, force)) {
        this.aggregates.counted(s.view, now);
        if (s.view === "inventory") {
          this.data.apps = this.store.apps();
          this.data.providers = this.store.providers();
          this.data.models = this.store.models();
        } else {
          this.data.processes = flattenTree(buildProcessTree(this.store.processes(), this.store.processActivity(undefined)));
        }
      }
      // An error shows until a read succeeds; a held log line until the next one (or an error).
      if (this.source.kind === "error") this.source = { kind: "feed" };
    } catch (err) {
      this.source = { kind: "error", message: (err as Error).message.split("\n")[0]! };
    }
    this.showSource();
    return actions;
  }

  /** The frame to draw; a bug in a view yields a two-line notice instead of throwing through the terminal. */
  frame(cols: number, rows: number): string[] {
    try {
      return render(this.state, this.data, cols, rows);
    } catch (err) {
      return [`oisp: cannot draw this view: ${(err as Error).message}`.slice(0, cols), "press t, i or p for another view, q to quit"];
    }
  }

  private showSource(): void {
    const s = this.source;
    this.data.source = s.kind === "feed" ? this.feed : s.kind === "log" ? `log: ${s.line}` : `error: ${s.message}`;
  }

  /** The activity list's filter: the window, and the `/` filter read as text, provider or process. */
  private activityFilter(): WebFilter {
    const f: WebFilter = this.state.filter
      ? filterFor(this.state.filter, { providers: this.store.distinct("provider"), processes: this.store.distinct("process_name") })
      : {};
    const since = windowSince(this.state.window, this.data.nowMs);
    return since === undefined ? f : { ...f, sinceMs: since };
  }

  private loadTimeline(atLeast: number, force: boolean): TuiAction[] {
    const page = this.store.timeline(this.activityFilter(), { limit: Math.min(Math.max(atLeast, TIMELINE_PAGE), TIMELINE_MAX) });
    this.data.timeline = page.rows;
    this.data.timelineMore = page.next !== undefined;
    // The panes read up to an hour of events (and, for long windows, many rollup rows): while traffic
    // flows they are recounted at most once a second (5 min window) or every AGGREGATE_EVERY_MS.
    const { window } = this.state;
    const now = this.data.nowMs;
    const every = window === "5m" ? 1000 : AGGREGATE_EVERY_MS;
    if (this.summary.due(window, now, every, force)) {
      this.data.summary = this.store.windowSummary(windowSince(window, now));
      this.summary.counted(window, now);
      return [];
    }
    return [{ kind: "recount-in", ms: this.summary.waitMs(now, every) }];
  }

  private loadMoreTimeline(): void {
    const d = this.data;
    const last = d.timeline[d.timeline.length - 1];
    if (!last || !d.timelineMore || d.timeline.length >= TIMELINE_MAX) return;
    const page = this.store.timeline(this.activityFilter(), { before: { tsMs: last.ts_ms, eventId: last.event_id }, limit: TIMELINE_PAGE });
    d.timeline = d.timeline.concat(page.rows);
    d.timelineMore = page.next !== undefined && d.timeline.length < TIMELINE_MAX;
  }

  /** The opened event and the events of its call (request_id and related_events), parsed for the event view. */
  private loadDetail(eventId: string): void {
    const rec = this.store.event(eventId);
    const event = rec ? parseEventJson(rec.json) : undefined;
    if (!rec || !event) {
      this.data.detail = undefined;
      return;
    }
    const linked = Array.isArray(event.related_events)
      ? event.related_events.map((r) => (r && typeof r === "object" ? (r as { event_id?: unknown }).event_id : undefined)).filter((id): id is string => typeof id === "string")
      : [];
    const related: EventDetail["related"] = [];
    for (const r of this.store.related(rec.request_id, linked, 50)) {
      if (r.event_id === eventId) continue;
      const json = this.store.event(r.event_id)?.json;
      const parsed = json ? parseEventJson(json) : undefined;
      if (parsed) related.push(parsed);
    }
    this.data.detail = { row: rec, event, related };
  }
}
