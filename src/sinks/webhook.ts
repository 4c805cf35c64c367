// Webhook export: each batch is one JSON POST. The body is `{"batch_id", "events"}`; headers carry the
// idempotency key (the batch id, the same on every retry) and, with a secret, an HMAC-SHA256 signature
// over "<timestamp>.<body>" (Stripe-style, so a captured request cannot be replayed later unnoticed).
// 2xx = delivered; 408/429/5xx and network errors are retried (Retry-After honoured); other 4xx mean
// the receiver refuses this data, so retrying cannot help: the batch is dropped and counted.
import { createHmac, timingSafeEqual } from "node:crypto";
import { ExportError, type ExportBatch, type Exporter } from "./queue.ts";

export const SIGNATURE_HEADER = "x-oisp-signature";
export const IDEMPOTENCY_HEADER = "idempotency-key";

export interface WebhookOptions {
  url: string;
  /** HMAC key; without it requests are not signed. */
  secret?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Clock for the signature timestamp (tests). */
  now?: () => number;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` */
export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

/** For receivers: checks the signature and that it is at most `toleranceSec` old. Constant-time compare. */
export function verifyWebhook(secret: string, body: string, header: string | null | undefined, nowSeconds: number, toleranceSec = 300): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? "");
  if (!m) return false;
  const t = Number(m[1]);
  if (Math.abs(nowSeconds - t) > toleranceSec) return false;
  const expected = Buffer.from(signWebhook(secret, body, t).slice(-64), "hex");
  return timingSafeEqual(expected, Buffer.from(m[2]!, "hex"));
}

export class WebhookExporter implements Exporter {
  readonly name = "webhook";
  constructor(private readonly opts: WebhookOptions) {
    const u = new URL(opts.url); // throws on a bad URL at startup, not at the first event
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`webhook: expected an http(s) URL, got ${opts.url}`);
  }

  async send(batch: ExportBatch): Promise<void> {
    const body = JSON.stringify({ batch_id: batch.id, events: batch.events });
    const headers: Record<string, string> = {
      ...this.opts.headers,
      "content-type": "application/json",
      [IDEMPOTENCY_HEADER]: batch.id,
      "x-oisp-event-count": String(batch.events.length),
    };
    if (this.opts.secret) headers[SIGNATURE_HEADER] = signWebhook(this.opts.secret, body, Math.floor((this.opts.now?.() ?? Date.now()) / 1000));
    let res: Response;
    try {
      res = await fetch(this.opts.url, { method: "POST", headers, body, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000), redirect: "error" });
    } catch (err) {
      throw new ExportError(`POST ${redactUrl(this.opts.url)}: ${(err as Error).message}`);
    }
    await res.body?.cancel().catch(() => {}); // the answer's body is not needed; free the connection
    if (res.ok) return;
    const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
    throw new ExportError(`POST ${redactUrl(this.opts.url)}: HTTP ${res.status}`, !retryable, retryAfterMs(res.headers.get("retry-after")));
  }

  async close(): Promise<void> {}
}

/** Retry-After as seconds or an HTTP date. */
function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** URLs may carry tokens in their query or userinfo: logs get the origin and path only. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(invalid url)";
  }
}
