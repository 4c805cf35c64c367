// The dashboard: the route modules (routes/browse.ts, routes/control.ts) behind the body limit and the
// security middleware. Pure request → response over the read-only queries: no sockets here, so tests
// drive it with app.request(). server.ts binds it to Bun.serve.
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { HtmlEscapedString } from "hono/utils/html";
import type { WebQueries } from "../store/queries.ts";
import { ASSETS } from "./assets.ts";
import type { LiveHub } from "./live.ts";
import { browseRoutes } from "./routes/browse.ts";
import { controlRoutes } from "./routes/control.ts";
import type { RouteKit, WebEnv } from "./routes/kit.ts";
import { securityMiddleware } from "./security.ts";
import type { ActionResult } from "./views/control.tsx";
import { Empty } from "./views/components.tsx";
import { Layout, type PageContext } from "./views/layout.tsx";
import type { FilterOptions } from "./views/timeline.tsx";

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

async function page(c: Context<WebEnv>, el: HtmlEscapedString | Promise<HtmlEscapedString>, status: 200 | 404 = 200): Promise<Response> {
  return c.html(`<!DOCTYPE html>${await el}`, status);
}

export function createWebApp(d: WebAppDeps): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  const now = d.now ?? Date.now;
  const ctx = (): PageContext => ({ csrf: d.csrfToken, nowMs: now() });
  const filterOptions = (): FilterOptions => ({
    providers: d.queries.distinct("provider"),
    models: d.queries.distinct("model"),
    processes: d.queries.distinct("process_name"),
    types: d.queries.distinct("event_type"),
  });
  const notFound = (c: Context<WebEnv>, message: string): Promise<Response> =>
    page(c, Layout({ ctx: ctx(), title: "Not found", active: "event", children: Empty({ children: message }) }), 404);
  const kit: RouteKit = { d, now, ctx, filterOptions, page, notFound };

  // The limit wraps the body first: the CSRF check may read a form body, and must read it through the limit.
  app.use("*", bodyLimit({ maxSize: 64 * 1024, onError: (c) => c.text("413 request body too large", 413) }));
  app.use("*", securityMiddleware({ allowedHosts: d.allowedHosts, csrfToken: d.csrfToken, accessToken: d.accessToken }));

  app.get("/static/:name", (c) => {
    const a = ASSETS[c.req.param("name")];
    if (!a) return c.notFound();
    // URLs carry the content hash, so the file can be cached for good.
    return c.body(a.body, 200, { "Content-Type": a.type, "Cache-Control": "public, max-age=31536000, immutable" });
  });

  app.route("/", browseRoutes(kit));
  app.route("/", controlRoutes(kit));

  app.notFound((c) => notFound(c, "No such page."));

  app.onError((err, c) => {
    // Never echo request content; the message names what failed (e.g. "database is locked").
    const message = err instanceof Error ? err.message.split("\n")[0] : "internal error";
    return c.text(`500 ${message}`, 500);
  });

  return app;
}
