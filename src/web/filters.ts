// Timeline filters: parsed from the query string (bounded, validated), written back into links.
// A value that does not parse is dropped rather than rejected: a stale bookmark still opens.
import type { Cursor, WebFilter } from "../store/queries.ts";

export const RANGES = {
  "15m": 15 * 60_000,
  "1h": 3_600_000,
  "6h": 6 * 3_600_000,
  "24h": 24 * 3_600_000,
  "7d": 7 * 86_400_000,
  "30d": 30 * 86_400_000,
  all: 0,
} as const;
export type RangeKey = keyof typeof RANGES;

/** What the filter form holds, exactly as the user chose it (strings), for re-rendering the form. */
export interface FilterForm {
  provider: string;
  model: string;
  process: string;
  type: string;
  status: "" | "ok" | "error";
  range: RangeKey;
  from: string;
  to: string;
  q: string;
}

const MAX_VALUE = 200;
const FORM_KEYS = ["provider", "model", "process", "type", "status", "range", "from", "to", "q"] as const;

function clean(v: string | undefined): string {
  // Control characters never belong in a filter value; cut to a sane length.
  return (v ?? "").replace(/[\u0000-\u001f\u007f]/g, "").trim().slice(0, MAX_VALUE);
}

export function parseFilterForm(query: Record<string, string | undefined>, defaultRange: RangeKey = "all"): FilterForm {
  const range = clean(query.range);
  const status = clean(query.status);
  return {
    provider: clean(query.provider),
    model: clean(query.model),
    process: clean(query.process),
    type: clean(query.type),
    status: status === "ok" || status === "error" ? status : "",
    range: Object.hasOwn(RANGES, range) ? (range as RangeKey) : defaultRange,
    from: /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?$/.test(clean(query.from)) ? clean(query.from) : "",
    to: /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?$/.test(clean(query.to)) ? clean(query.to) : "",
    q: clean(query.q),
  };
}

/** datetime-local values carry no zone: they mean the server's local time (the dashboard is local). */
function localMs(value: string): number | undefined {
  if (!value) return undefined;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : undefined;
}

export function toWebFilter(form: FilterForm, nowMs: number): WebFilter {
  const span = RANGES[form.range];
  const from = localMs(form.from);
  const sinceMs = from ?? (span > 0 ? nowMs - span : undefined);
  return {
    provider: form.provider || undefined,
    model: form.model || undefined,
    process: form.process || undefined,
    type: form.type || undefined,
    status: form.status || undefined,
    sinceMs,
    untilMs: localMs(form.to),
    text: form.q || undefined,
  };
}

export function hasFilter(form: FilterForm): boolean {
  return FORM_KEYS.some((k) => (k === "range" ? form.range !== "all" : form[k] !== ""));
}

/** The query string for a form (empty values left out), e.g. for pagination and export links. */
export function filterQuery(form: FilterForm, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  for (const k of FORM_KEYS) {
    const v = form[k];
    if (v !== "" && !(k === "range" && v === "all")) params.set(k, v);
  }
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  const s = params.toString();
  return s ? `?${s}` : "";
}

/** Cursors travel as "<ts_ms>-<event_id>": ids only, never content. */
export function formatCursor(c: Cursor): string {
  return `${c.tsMs}-${c.eventId}`;
}

export function parseCursor(v: string | undefined): Cursor | undefined {
  const m = /^(\d{1,16})-([0-9A-Za-z_.:-]{1,128})$/.exec(v ?? "");
  if (!m) return undefined;
  return { tsMs: Number(m[1]), eventId: m[2]! };
}
