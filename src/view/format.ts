// Number, time and size formatting for the dashboard and the terminal view: short, fixed-width friendly,
// never "NaN".

const intFormat = new Intl.NumberFormat("en-US");

export function fmtInt(n: number | null | undefined): string {
  return typeof n === "number" && Number.isFinite(n) ? intFormat.format(Math.round(n)) : "";
}

/** Compact token counts: 950, 12.3k, 4.1M. */
export function fmtTokens(n: number | null | undefined): string {
  if (typeof n !== "number" || !Number.isFinite(n)) return "";
  if (Math.abs(n) < 10_000) return intFormat.format(Math.round(n));
  if (Math.abs(n) < 1_000_000) return `${(n / 1000).toFixed(1)}k`;
  return `${(n / 1_000_000).toFixed(2)}M`;
}

/** Dollars with enough decimals for fractions of a cent. */
export function fmtCost(usd: number | null | undefined): string {
  if (typeof usd !== "number" || !Number.isFinite(usd)) return "";
  if (usd === 0) return "$0";
  if (Math.abs(usd) >= 100) return `$${usd.toFixed(0)}`;
  if (Math.abs(usd) >= 1) return `$${usd.toFixed(2)}`;
  if (Math.abs(usd) >= 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(6)}`;
}

export function fmtMs(ms: number | null | undefined): string {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** Local wall-clock time; the date is added when it is not today. */
export function fmtTime(tsMs: number, nowMs = Date.now()): string {
  const d = new Date(tsMs);
  const now = new Date(nowMs);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  const sameDay = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  if (sameDay) return time;
  return d.getFullYear() === now.getFullYear() ? `${fmtDate(tsMs).slice(5)} ${time}` : `${fmtDate(tsMs)} ${time}`;
}

export function fmtDate(tsMs: number): string {
  const d = new Date(tsMs);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** "3 min ago" style, for last-seen columns. */
export function fmtAgo(tsMs: number | null | undefined, nowMs = Date.now()): string {
  if (typeof tsMs !== "number" || !Number.isFinite(tsMs)) return "";
  const s = Math.max(0, Math.round((nowMs - tsMs) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** Hash shown short: "sha256:1a2b3c4d5e6f…". */
export function shortHash(hash: string, keep = 12): string {
  const [algo, hex] = hash.includes(":") ? hash.split(":", 2) : ["", hash];
  const body = hex ?? "";
  const cut = body.length > keep ? `${body.slice(0, keep)}…` : body;
  return algo ? `${algo}:${cut}` : cut;
}

/** The server's offset from UTC in ms (positive east of Greenwich), for aligning day buckets. */
export function localOffsetMs(atMs = Date.now()): number {
  return -new Date(atMs).getTimezoneOffset() * 60_000 || 0; // never -0 (UTC)
}
