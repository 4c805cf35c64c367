// The dashboard shows captured prompts and answers, so every request passes four gates:
// Host check (DNS rebinding), access token when configured, CSRF token on state changes,
// and strict response headers (no framing, no referrer, scripts only from us).
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";

export const CSRF_HEADER = "X-CSRF-Token";
export const CSRF_FIELD = "_csrf";
export const SESSION_COOKIE = "oisp_session";

export interface SecurityOptions {
  /** Accepted Host header values, lower-case, with port ("127.0.0.1:7777"). */
  allowedHosts: ReadonlySet<string>;
  /** Per-process random value the pages carry and every POST must return. */
  csrfToken: string;
  /** When set, every request must prove it: ?token= once (becomes a cookie), the cookie, or Authorization: Bearer. */
  accessToken?: string;
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

export function newCsrfToken(): string {
  return randomBytes(24).toString("base64url");
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/** Constant-time comparison (hashing first makes the lengths equal). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** The cookie holds a digest of the token, not the token itself. */
function sessionValue(token: string): string {
  return createHash("sha256").update(`oisp-web-session\0${token}`).digest("base64url");
}

function setSecurityHeaders(c: Context): void {
  c.header("Content-Security-Policy", CONTENT_SECURITY_POLICY);
  c.header("X-Frame-Options", "DENY");
  c.header("Referrer-Policy", "no-referrer");
  c.header("X-Content-Type-Options", "nosniff");
  c.header("Cross-Origin-Opener-Policy", "same-origin");
  c.header("Cross-Origin-Resource-Policy", "same-origin");
  if (!c.res.headers.has("Cache-Control")) c.header("Cache-Control", "no-store");
}

function plain(c: Context, status: 401 | 403 | 421, text: string): Response {
  setSecurityHeaders(c);
  return c.text(text, status);
}

export function securityMiddleware(o: SecurityOptions): MiddlewareHandler {
  return async (c, next) => {
    const host = (c.req.header("host") ?? "").toLowerCase();
    if (!o.allowedHosts.has(host)) {
      return plain(c, 421, "421 Misdirected Request: unexpected Host header (open the dashboard by the address oisp printed)");
    }

    if (o.accessToken !== undefined) {
      const url = new URL(c.req.url);
      const offered = url.searchParams.get("token");
      if (offered !== null) {
        if (!sameSecret(offered, o.accessToken)) return plain(c, 401, "401 Unauthorized: wrong token");
        setCookie(c, SESSION_COOKIE, sessionValue(o.accessToken), { httpOnly: true, sameSite: "Strict", path: "/" });
        // Take the token out of the address bar and history at once.
        url.searchParams.delete("token");
        setSecurityHeaders(c);
        return c.redirect(`${url.pathname}${url.search}`, 303);
      }
      const bearer = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
      const cookie = getCookie(c, SESSION_COOKIE);
      const ok =
        (bearer !== undefined && sameSecret(bearer, o.accessToken)) ||
        (cookie !== undefined && sameSecret(cookie, sessionValue(o.accessToken)));
      if (!ok) return plain(c, 401, "401 Unauthorized: open the dashboard with the ?token=... address printed by oisp");
    }

    const method = c.req.method;
    if (method !== "GET" && method !== "HEAD") {
      if (c.req.header("sec-fetch-site") === "cross-site") return plain(c, 403, "403 Forbidden: cross-site request");
      let sent = c.req.header(CSRF_HEADER);
      if (sent === undefined && (c.req.header("content-type") ?? "").includes("form")) {
        const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
        const field = body[CSRF_FIELD];
        sent = typeof field === "string" ? field : undefined;
      }
      if (sent === undefined || !sameSecret(sent, o.csrfToken)) return plain(c, 403, "403 Forbidden: missing or wrong CSRF token (reload the page)");
    }

    await next();
    setSecurityHeaders(c);
  };
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** "::1" → "[::1]" for URLs and Host headers. */
export function hostForUrl(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** Host header values a browser may legitimately send for a server bound at host:port. */
export function allowedHostHeaders(boundHost: string, port: number, extraNames: string[] = []): Set<string> {
  const names = new Set([hostForUrl(boundHost).toLowerCase(), "localhost", "127.0.0.1", "[::1]", ...extraNames.map((n) => hostForUrl(n).toLowerCase())]);
  const out = new Set<string>();
  for (const n of names) {
    out.add(`${n}:${port}`);
    if (port === 80) out.add(n);
  }
  return out;
}
