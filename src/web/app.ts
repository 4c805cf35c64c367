// The dashboard's routes. Pure request → response over the read-only queries: no sockets here, so tests
// drive it with app.request(). server.ts binds it to Bun.serve.
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { HtmlEscapedString } from "hono/utils/html";
import { formatZodIssues, readSettingsFile, SettingsError, writeSettingsFile } from "../config/settings.ts";
import { settingsPath } from "../config/paths.ts";
import type { WebQueries } from "../store/queries.ts";
import { ASSETS } from "./assets.ts";
import { parseEventJson, relatedIds } from "../view/event-json.ts";
import { exportResponse } from "./export.ts";
import { parseCursor, parseFilterForm, toWebFilter, type FilterForm } from "./filters.ts";
import { localOffsetMs } from "../view/format.ts";
import type { LiveHub } from "./live.ts";
import { buildProcessTree } from "../view/process-tree.ts";
import { securityMiddleware } from "./security.ts";
import { formToCandidate, settingsFields, settingsToForm, validateSettings } from "./settings-form.ts";
import { buildChart, type UsageMetric } from "./usage-chart.ts";
import { ControlPage, CaptureSection, CaSection, SettingsSection, type ActionResult, type SettingsSectionProps } from "./views/control.tsx";
import { EventDetailPage, type ParsedEvent } from "./views/event-detail.tsx";
import { InventoryPage, LIST_DEFAULT_RANGE } from "./views/inventory.tsx";
import { Layout, type PageContext } from "./views/layout.tsx";
import { Empty } from "./views/components.tsx";
import { ProcessesPage } from "./views/processes.tsx";
import { TimelinePage, TimelineRows, type FilterOptions } from "./views/timeline.tsx";
import { UsagePage, USAGE_RANGES, type UsageControls, type UsageRange } from "./views/usage.tsx";

/** Install / remove / inspect the local CA; src/ca provides the real one, see server.ts. */
export interface CaControl {
  status(): Promise<Record<string, unknown>> | Record<string, unknown>;
  install(): Promise<ActionResult> | ActionResult;
  uninstall(): Promise<ActionResult> | ActionResult;
}

/** What the redirector's status file says, plus whether this dashboard asked it to stop. */
export interface RedirectorState {
  state: "running" | "stopping" | "stopped";
  pid?: number;
  detail: string;
}

/**
 * Starts capture (Windows: `oisp redirect` elevated through UAC) and stops a running `oisp redirect`
 * (SIGINT on POSIX, a request file on Windows); see captureControlFor() in ./ca-control.ts.
 */
export interface CaptureControl {
  start(): Promise<ActionResult> | ActionResult;
  stop(): Promise<ActionResult> | ActionResult;
  redirector(): RedirectorState;
  /** Pause / resume recording (src/control/pause.ts, shared with `oisp pause` and the tray). */
  pause(): Promise<ActionResult> | ActionResult;
  resume(): Promise<ActionResult> | ActionResult;
  pauseState(): PauseView;
}

export interface PauseView {
  paused: boolean;
  since?: string;
  by?: string;
  error?: string;
}

export interface WebAppDeps {
  queries: WebQueries;
  dataDir: string;
  csrfToken: string;
  allowedHosts: ReadonlySet<string>;
  accessToken?: string;
  hub: LiveHub;
  status?: () => Record<string, unknown>;
  ca?: CaControl;
  capture?: CaptureControl;
  now?: () => number;
}

const PAGE_SIZE = 100;
const DAY = 86_400_000;

async function page(c: Context, el: HtmlEscapedString | Promise<HtmlEscapedString>, status: 200 | 404 = 200): Promise<Response> {
  return c.html(`<!DOCTYPE html>${await el}`, status);
}

export function createWebApp(d: WebAppDeps): Hono {
  const app = new Hono();
  const now = d.now ?? Date.now;
  const ctx = (): PageContext => ({ csrf: d.csrfToken, nowMs: now() });
  const fields = settingsFields();

  // The limit wraps the body first: the CSRF check may read a form body, and must read it through the limit.
  app.use("*", bodyLimit({ maxSize: 64 * 1024, onError: (c) => c.text("413 request body too large", 413) }));
  app.use("*", securityMiddleware({ allowedHosts: d.allowedHosts, csrfToken: d.csrfToken, accessToken: d.accessToken }));

  app.get("/static/:name", (c) => {
    const a = ASSETS[c.req.param("name")];
    if (!a) return c.notFound();
    // URLs carry the content hash, so the file can be cached for good.
    return c.body(a.body, 200, { "Content-Type": a.type, "Cache-Control": "public, max-age=31536000, immutable" });
  });

  const filterOptions = (): FilterOptions => ({
    providers: d.queries.distinct("provider"),
    models: d.queries.distinct("model"),
    processes: d.queries.distinct("process_name"),
    types: d.queries.distinct("event_type"),
  });

  app.get("/", (c) => {
    const form = parseFilterForm(c.req.query());
    const before = parseCursor(c.req.query("before"));
    const filter = toWebFilter(form, now());
    const liveCursor = d.queries.lastRowid();
    const result = d.queries.timeline(filter, { before, limit: PAGE_SIZE });
    return page(c, TimelinePage({ ctx: ctx(), form, options: filterOptions(), page: result, paged: before !== undefined, liveCursor }));
  });

  // Rows that arrived after the page's cursor (a rowid), for the live view; the new cursor rides in a header.
  app.get("/timeline/rows", async (c) => {
    const form = parseFilterForm(c.req.query());
    const after = Number(c.req.query("after"));
    const cursor = d.queries.lastRowid();
    const rows = Number.isSafeInteger(after) && after >= 0 ? d.queries.arrivedAfter(toWebFilter(form, now()), after, 200) : [];
    c.header("X-Oisp-Cursor", String(cursor));
    return c.html(await TimelineRows({ rows, nowMs: now(), fresh: true }));
  });

  app.get("/events/stream", (c) => {
    const res = d.hub.open();
    if (!res) return c.text("503 too many live connections", 503);
    // Bun closes idle connections after a few seconds; a live stream is idle by nature.
    (c.env as { server?: { timeout?(req: Request, seconds: number): void } } | undefined)?.server?.timeout?.(c.req.raw, 0);
    return res;
  });

  app.get("/event/:id", async (c) => {
    const id = c.req.param("id");
    const rec = id.length <= 128 ? d.queries.event(id) : null;
    const json = rec ? parseEventJson(rec.json) : undefined;
    if (!rec || !json) return notFound(c, "No such event.");
    const event: ParsedEvent = { record: rec, json };
    const related = d.queries.related(rec.request_id, relatedIds(json).map((r) => r.id));
    const load = (eventType: string): ParsedEvent | undefined => {
      if (rec.event_type === eventType) return event;
      const row = related.find((r) => r.event_type === eventType && r.request_id !== null && r.request_id === rec.request_id) ??
        related.find((r) => r.event_type === eventType);
      const other = row ? d.queries.event(row.event_id) : null;
      const otherJson = other ? parseEventJson(other.json) : undefined;
      return other && otherJson ? { record: other, json: otherJson } : undefined;
    };
    return page(
      c,
      EventDetailPage({ ctx: ctx(), event, request: load("ai.request"), response: load("ai.response"), related: related.filter((r) => r.event_id !== rec.event_id) }),
    );
  });

  // The timeline's filter parsing; status and free text are dropped (the rollups behind these lists have
  // neither), so a shared link that carries them still opens.
  const listFilter = (c: Context): { form: FilterForm; filter: ReturnType<typeof toWebFilter> } => {
    const form: FilterForm = { ...parseFilterForm(c.req.query(), LIST_DEFAULT_RANGE), status: "", q: "" };
    return { form, filter: toWebFilter(form, now()) };
  };

  app.get("/inventory", (c) => {
    const { form, filter } = listFilter(c);
    const q = d.queries;
    return page(
      c,
      InventoryPage({ ctx: ctx(), form, options: filterOptions(), providers: q.providers(filter), models: q.models(filter), apps: q.apps(filter), accounts: q.accounts(filter) }),
    );
  });

  app.get("/processes", (c) => {
    const { form, filter } = listFilter(c);
    const rows = d.queries.processes(filter);
    const roots = buildProcessTree(rows, d.queries.processActivity(filter));
    return page(c, ProcessesPage({ ctx: ctx(), form, options: filterOptions(), roots, count: new Set(rows.map((r) => r.pid)).size }));
  });

  app.get("/usage", (c) => {
    const q = c.req.query();
    const range: UsageRange = Object.hasOwn(USAGE_RANGES, q.range ?? "") ? (q.range as UsageRange) : "7d";
    const spanMs = { "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "90d": 90 * DAY }[range];
    // Hourly bars over more than a week would be too thin to read: switch to days.
    const bucket = spanMs > 7 * DAY || q.bucket === "day" ? "day" : "hour";
    const controls: UsageControls = {
      metric: q.metric === "tokens" || q.metric === "cost" ? (q.metric as UsageMetric) : "requests",
      bucket,
      by: q.by === "model" ? "model" : "provider",
      range,
    };
    const nowMs = now();
    const bucketMs = bucket === "hour" ? 3_600_000 : DAY;
    const offsetMs = bucket === "day" ? localOffsetMs(nowMs) : 0;
    const sinceMs = nowMs - spanMs;
    const rows = d.queries.usage(controls.by, bucketMs, sinceMs, offsetMs);
    const chart = buildChart(rows, { metric: controls.metric, bucketMs, sinceMs, nowMs, offsetMs });
    return page(c, UsagePage({ ctx: ctx(), controls, chart }));
  });

  // --- control -------------------------------------------------------------------------------------------

  const currentSettings = (): Omit<SettingsSectionProps, "ctx"> => {
    const path = settingsPath(d.dataDir);
    try {
      return { fields, values: settingsToForm(readSettingsFile(d.dataDir), fields), errors: {}, path };
    } catch (err) {
      return { fields, values: settingsToForm({}, fields), errors: {}, path, loadError: err instanceof SettingsError ? err.message : String(err) };
    }
  };

  const caStatus = async (): Promise<Record<string, unknown> | { error: string }> => {
    if (!d.ca) return { status: "CA management is not available in this build" };
    try {
      return await d.ca.status();
    } catch (err) {
      return { error: (err as Error).message };
    }
  };

  const renderControl = async (c: Context, settings = currentSettings(), exportForm: FilterForm = parseFilterForm({})) =>
    page(
      c,
      ControlPage({
        ctx: ctx(),
        capture: safeStatus(d.status),
        redirector: redirectorState(),
        pause: pauseState(),
        ca: await caStatus(),
        settings,
        exportForm,
        options: filterOptions(),
      }),
    );

  app.get("/control", (c) => renderControl(c));

  app.post("/control/settings", async (c) => {
    const body = await c.req.parseBody();
    const { values, candidate } = formToCandidate(body, fields);
    const result = validateSettings(candidate);
    const path = settingsPath(d.dataDir);
    let state: Omit<SettingsSectionProps, "ctx">;
    if (result.ok && result.settings) {
      try {
        writeSettingsFile(d.dataDir, result.settings);
        state = { fields, values: settingsToForm(result.settings, fields), errors: {}, path, saved: true };
      } catch (err) {
        const message = err instanceof Error && "issues" in err ? formatZodIssues(err as never) : (err as Error).message;
        state = { fields, values, errors: { "": [`could not write ${path}: ${message}`] }, path };
      }
    } else {
      state = { fields, values, errors: result.errors, path };
    }
    if (c.req.header("HX-Request")) return c.html(await SettingsSection({ ctx: ctx(), ...state }), result.ok ? 200 : 422);
    return renderControl(c, state);
  });

  const caAction = (action: "install" | "uninstall") => async (c: Context) => {
    let result: ActionResult;
    if (!d.ca) result = { ok: false, message: "CA management is not available in this build" };
    else {
      try {
        result = await d.ca[action]();
      } catch (err) {
        result = { ok: false, message: (err as Error).message };
      }
    }
    if (c.req.header("HX-Request")) return c.html(await CaSection({ ctx: ctx(), status: await caStatus(), result }));
    return c.redirect("/control", 303);
  };
  const redirectorState = (): RedirectorState | undefined => {
    try {
      return d.capture?.redirector();
    } catch (err) {
      return { state: "stopped", detail: `cannot read the redirector's status: ${(err as Error).message}` };
    }
  };
  const pauseState = (): PauseView | undefined => {
    try {
      return d.capture?.pauseState();
    } catch (err) {
      return { paused: false, error: (err as Error).message };
    }
  };
  const captureSection = (result?: ActionResult) =>
    CaptureSection({ ctx: ctx(), status: safeStatus(d.status), redirector: redirectorState(), pause: pauseState(), result });

  const captureAction = (action: "start" | "stop" | "pause" | "resume") => async (c: Context) => {
    let result: ActionResult;
    try {
      result = d.capture ? await d.capture[action]() : { ok: false, message: `${action} capture is not available in this process` };
    } catch (err) {
      result = { ok: false, message: (err as Error).message };
    }
    if (c.req.header("HX-Request")) return c.html(await captureSection(result));
    return c.redirect("/control", 303);
  };
  app.post("/control/capture/start", captureAction("start"));
  app.post("/control/capture/stop", captureAction("stop"));
  app.post("/control/capture/pause", captureAction("pause"));
  app.post("/control/capture/resume", captureAction("resume"));
  // The section alone: while stopping, it reloads itself from here until the redirector has stopped.
  app.get("/control/capture", async (c) => c.html(await captureSection()));

  app.post("/control/ca/install", caAction("install"));
  app.post("/control/ca/uninstall", caAction("uninstall"));

  for (const format of ["jsonl", "csv"] as const) {
    app.get(`/export/events.${format}`, (c) => exportResponse(d.queries, toWebFilter(parseFilterForm(c.req.query()), now()), format, now()));
  }

  app.notFound((c) => notFound(c, "No such page."));

  app.onError((err, c) => {
    // Never echo request content; the message names what failed (e.g. "database is locked").
    const message = err instanceof Error ? err.message.split("\n")[0] : "internal error";
    return c.text(`500 ${message}`, 500);
  });

  function notFound(c: Context, message: string): Promise<Response> {
    return page(c, Layout({ ctx: ctx(), title: "Not found", active: "event", children: Empty({ children: message }) }), 404);
  }

  return app;
}

function safeStatus(status?: () => Record<string, unknown>): Record<string, unknown> {
  if (!status) return { capture: "not reported by this process" };
  try {
    return status();
  } catch (err) {
    return { error: (err as Error).message };
  }
}
