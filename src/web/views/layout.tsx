// Page shell: header navigation, the CSRF token for htmx, embedded assets. No inline script or style.
import type { Child } from "hono/jsx";
import { assetUrl } from "../assets.ts";
import { CSRF_HEADER } from "../security.ts";

export interface PageContext {
  csrf: string;
  nowMs: number;
}

export type NavKey = "live" | "inventory" | "processes" | "usage" | "control" | "event";

const NAV: Array<[NavKey, string, string]> = [
  ["live", "/", "Live"],
  ["inventory", "/inventory", "Inventory"],
  ["processes", "/processes", "Processes"],
  ["usage", "/usage", "Usage"],
  ["control", "/control", "Control"],
];

// historyCacheSize 0: htmx would otherwise keep page snapshots (captured prompts) in localStorage.
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  selfRequestsOnly: true,
  historyCacheSize: 0,
  refreshOnHistoryMiss: true,
  // htmx's defaults, plus: a 422 (settings that did not validate) is swapped in, so the errors show in place.
  responseHandling: [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "422", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
    { code: "...", swap: false },
  ],
});

export function Layout(props: { ctx: PageContext; title: string; active: NavKey; children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <meta name="csrf-token" content={props.ctx.csrf} />
        <meta name="htmx-config" content={HTMX_CONFIG} />
        <title>{props.title} · OISP Sensor</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href={assetUrl("app.css")} />
        <script src={assetUrl("htmx.min.js")} defer></script>
        <script src={assetUrl("app.js")} defer></script>
      </head>
      <body hx-headers={JSON.stringify({ [CSRF_HEADER]: props.ctx.csrf })}>
        <header class="top">
          <a class="brand" href="/">
            OISP <span>Sensor</span>
          </a>
          <nav>
            {NAV.map(([key, href, label]) => (
              <a href={href} class={key === props.active ? "active" : undefined}>
                {label}
              </a>
            ))}
          </nav>
          <span class="spacer"></span>
          <span id="live-status" class="live-status off">
            paused
          </span>
        </header>
        <main>{props.children}</main>
      </body>
    </html>
  );
}
