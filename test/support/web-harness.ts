// A dashboard app over a real temp SQLite store (written by the real store, read by the real queries),
// driven with app.request(): no sockets. Pages are plain HTML strings for assertions.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore } from "../../src/store/index.ts";
import { openWebQueries, type WebQueries } from "../../src/store/queries.ts";
import { createWebApp, type CaControl } from "../../src/web/app.ts";
import type { LiveSource } from "../../src/view/live.ts";
import { LiveHub } from "../../src/web/live.ts";
import { allowedHostHeaders } from "../../src/web/security.ts";
import type { FixtureEvent } from "./event-fixtures.ts";

export const HOST = "127.0.0.1:7777";
export const CSRF = "test-csrf-token-0123456789";

export interface WebHarness {
  dir: string;
  dbPath: string;
  store: ReturnType<typeof openStore>;
  queries: WebQueries;
  hub: LiveHub;
  app: ReturnType<typeof createWebApp>;
  insert(events: FixtureEvent[]): void;
  /** app.request with a valid Host header unless one is given. */
  get(url: string, headers?: Record<string, string>): Promise<Response>;
  post(url: string, form: Record<string, string>, headers?: Record<string, string>): Promise<Response>;
  close(): void;
}

export function webHarness(
  opts: { events?: FixtureEvent[]; accessToken?: string; ca?: CaControl; status?: () => Record<string, unknown>; live?: LiveSource; now?: () => number } = {},
): WebHarness {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-web-"));
  const dbPath = path.join(dir, "oisp.db");
  const store = openStore(dbPath);
  if (opts.events?.length) store.insertEvents(opts.events);
  const queries = openWebQueries(dbPath);
  const hub = new LiveHub({ live: opts.live, dataVersion: () => queries.dataVersion() });
  const app = createWebApp({
    queries,
    dataDir: dir,
    csrfToken: CSRF,
    allowedHosts: allowedHostHeaders("127.0.0.1", 7777),
    accessToken: opts.accessToken,
    hub,
    status: opts.status,
    ca: opts.ca,
    now: opts.now,
  });
  const base = "http://127.0.0.1:7777";
  return {
    dir,
    dbPath,
    store,
    queries,
    hub,
    app,
    insert(events) {
      store.insertEvents(events);
    },
    async get(url, headers = {}) {
      return app.request(`${base}${url}`, { headers: { host: HOST, ...headers } });
    },
    async post(url, form, headers = {}) {
      return app.request(`${base}${url}`, {
        method: "POST",
        headers: { host: HOST, "content-type": "application/x-www-form-urlencoded", ...headers },
        body: new URLSearchParams(form).toString(),
      });
    },
    close() {
      hub.close();
      queries.close();
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every URL-carrying attribute value in a page: what a click, a form or htmx could send. */
export function linkedUrls(html: string): string[] {
  const out: string[] = [];
  const re = /\s(href|src|action|formaction|hx-get|hx-post|data-href)="([^"]*)"/g;
  for (let m = re.exec(html); m; m = re.exec(html)) out.push(decodeEntities(m[2]!));
  return out;
}

export function decodeEntities(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

/** Event ids of the timeline rows in a page, in order. */
export function rowIds(html: string): string[] {
  return [...html.matchAll(/<tr data-href="\/event\/([^"]+)"/g)].map((m) => decodeURIComponent(m[1]!));
}
