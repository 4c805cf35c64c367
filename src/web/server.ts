// `oisp sensor --web` / `oisp up --web`: serves the dashboard with Bun.serve on 127.0.0.1:7777 by default.
// Reads the event store through its own read-only connection; never binds beyond loopback without a token.
import os from "node:os";
import { openWebQueries } from "../store/queries.ts";
import { createWebApp, type CaControl, type CaptureControl } from "./app.ts";
import type { LiveSource } from "../view/live.ts";
import { LiveHub } from "./live.ts";
import { DEFAULT_WEB_PORT } from "./flags.ts";
import { allowedHostHeaders, hostForUrl, isLoopbackHost, newCsrfToken } from "./security.ts";

export const DEFAULT_WEB_HOST = "127.0.0.1";
export interface WebServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 7777; 0 picks a free port (tests). */
  port?: number;
  dbPath: string;
  /** The sensor's LiveOutput; without it the dashboard notices new rows by polling the database. */
  live?: LiveSource;
  /** Where settings.json lives (OISP_HOME). */
  dataDir: string;
  token?: string;
  /** Capture status shown on /control (proxy address, counters...). */
  status?: () => Record<string, unknown>;
  /** CA status / install / uninstall for /control; see caControlFor() in ./ca-control.ts. */
  ca?: CaControl;
  /** "Start capture" on /control; see captureControlFor() in ./ca-control.ts. */
  capture?: CaptureControl;
}

export interface RunningWebServer {
  /** http://127.0.0.1:7777 (no token in it). */
  url: string;
  /** The address to open first when a token is set (it becomes a cookie, then leaves the address bar). */
  loginUrl: string;
  close(): Promise<void>;
}

/** Names a browser on another machine may use for us when we listen beyond loopback. */
function machineNames(): string[] {
  const names = [os.hostname()];
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) names.push(a.address);
  return names;
}

export async function startWebServer(opts: WebServerOptions): Promise<RunningWebServer> {
  const host = opts.host ?? DEFAULT_WEB_HOST;
  const token = opts.token === "" ? undefined : opts.token;
  if (!isLoopbackHost(host) && token === undefined) {
    throw new Error(`binding ${host} exposes captured AI traffic: pass --web-token`);
  }
  const queries = openWebQueries(opts.dbPath);
  const hub = new LiveHub({ live: opts.live, dataVersion: () => queries.dataVersion() });
  let server: ReturnType<typeof Bun.serve>;
  let app: ReturnType<typeof createWebApp> | undefined;
  try {
    server = Bun.serve({
      hostname: host,
      port: opts.port ?? DEFAULT_WEB_PORT,
      // Longer than the SSE heartbeat; the stream route lifts the limit for itself anyway.
      idleTimeout: 60,
      fetch: (req, srv) => (app ? app.fetch(req, { server: srv }) : new Response("starting", { status: 503 })),
    });
  } catch (err) {
    hub.close();
    queries.close();
    throw new Error(`dashboard cannot listen on ${hostForUrl(host)}:${opts.port ?? DEFAULT_WEB_PORT}: ${(err as Error).message}`);
  }
  const port = server.port ?? opts.port ?? DEFAULT_WEB_PORT;
  const extraNames = isLoopbackHost(host) ? [] : machineNames();
  app = createWebApp({
    queries,
    dataDir: opts.dataDir,
    csrfToken: newCsrfToken(),
    allowedHosts: allowedHostHeaders(host, port, extraNames),
    accessToken: token,
    hub,
    status: opts.status,
    ca: opts.ca,
    capture: opts.capture,
  });
  const shownHost = host === "0.0.0.0" || host === "::" ? DEFAULT_WEB_HOST : host;
  const url = `http://${hostForUrl(shownHost)}:${port}`;
  let closed = false;
  return {
    url,
    loginUrl: token === undefined ? `${url}/` : `${url}/?token=${encodeURIComponent(token)}`,
    async close() {
      if (closed) return;
      closed = true;
      hub.close();
      await server.stop(true);
      queries.close();
    },
  };
}
