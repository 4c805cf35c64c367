// The dashboard's reading pages: timeline (and its live rows and stream), one event, inventory, processes,
// usage, and the export downloads. Request → response over the read-only queries.
import { Hono, type Context } from "hono";
import { parseEventJson, relatedIds } from "../../view/event-json.ts";
import { localOffsetMs } from "../../view/format.ts";
import { buildProcessTree } from "../../view/process-tree.ts";
import { exportResponse } from "../export.ts";
import { parseCursor, parseFilterForm, toWebFilter, type FilterForm } from "../filters.ts";
import { buildChart, type UsageMetric } from "../usage-chart.ts";
import { EventDetailPage, type ParsedEvent } from "../views/event-detail.tsx";
import { InventoryPage, LIST_DEFAULT_RANGE } from "../views/inventory.tsx";
import { ProcessesPage } from "../views/processes.tsx";
import { TimelinePage, TimelineRows } from "../views/timeline.tsx";
import { UsagePage, USAGE_RANGES, type UsageControls, type UsageRange } from "../views/usage.tsx";
import type { RouteKit, WebEnv } from "./kit.ts";

const PAGE_SIZE = 100;
const DAY = 86_400_000;

export function browseRoutes(kit: RouteKit): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  const { d, now, ctx, page, notFound, filterOptions } = kit;

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
    c.env?.server?.timeout(c.req.raw, 0);
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
  const listFilter = (c: Context<WebEnv>): { form: FilterForm; filter: ReturnType<typeof toWebFilter> } => {
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

  for (const format of ["jsonl", "csv"] as const) {
    app.get(`/export/events.${format}`, (c) => exportResponse(d.queries, toWebFilter(parseFilterForm(c.req.query()), now()), format, now()));
  }

  return app;
}
