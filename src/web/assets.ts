// Static files, embedded at build time so `bun build --compile` carries them and no CDN is ever asked.
import { createHash } from "node:crypto";
import htmx from "htmx.org/dist/htmx.min.js" with { type: "text" };
import appJs from "../../public/app.js" with { type: "text" };
import appCss from "../../public/app.css" with { type: "text" };

export interface Asset {
  body: string;
  type: string;
  /** Short content hash: asset URLs carry it, so they can be cached forever and still never go stale. */
  version: string;
}

function asset(body: string, type: string): Asset {
  return { body, type, version: createHash("sha256").update(body).digest("hex").slice(0, 10) };
}

export const ASSETS: Record<string, Asset> = {
  "htmx.min.js": asset(htmx, "text/javascript; charset=utf-8"),
  "app.js": asset(appJs, "text/javascript; charset=utf-8"),
  "app.css": asset(appCss, "text/css; charset=utf-8"),
};

export function assetUrl(name: keyof typeof ASSETS & string): string {
  return `/static/${name}?v=${ASSETS[name]?.version ?? "0"}`;
}
