// What every route module of the dashboard shares: the typed Hono environment (what server.ts passes to
// fetch) and the page helpers over the app's dependencies.
import type { Context } from "hono";
import type { HtmlEscapedString } from "hono/utils/html";
import type { WebAppDeps } from "../app.ts";
import type { PageContext } from "../views/layout.tsx";
import type { FilterOptions } from "../views/timeline.tsx";

/** Bindings of app.fetch(req, env): the Bun server, absent under app.request() in tests. */
export interface WebEnv {
  Bindings: { server?: Pick<ReturnType<typeof Bun.serve>, "timeout"> };
}

export interface RouteKit {
  d: WebAppDeps;
  now(): number;
  /** What every page's layout needs: the CSRF token and the time it was rendered. */
  ctx(): PageContext;
  /** The values the filter bar offers. */
  filterOptions(): FilterOptions;
  page(c: Context<WebEnv>, el: HtmlEscapedString | Promise<HtmlEscapedString>, status?: 200 | 404): Promise<Response>;
  notFound(c: Context<WebEnv>, message: string): Promise<Response>;
}
