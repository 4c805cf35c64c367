// --since / --until values: an RFC 3339 time or date ("2026-01-31", "2026-01-31T10:00:00Z"), epoch
// milliseconds, or a duration back from `now` ("90m", "24h", "7d", "2w").
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function parseTimeBound(value: string, nowMs: number): number | undefined {
  const v = value.trim();
  const rel = /^(\d+(?:\.\d+)?)\s*([smhdw])$/i.exec(v);
  if (rel) return nowMs - Number(rel[1]) * UNIT_MS[rel[2]!.toLowerCase()]!;
  if (/^\d{11,}$/.test(v)) return Number(v);
  // A bare date is midnight UTC, as Date.parse reads it; a time without zone is taken as UTC too.
  const withZone = /T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(v) ? `${v}Z` : v;
  const ms = Date.parse(withZone);
  return Number.isFinite(ms) ? ms : undefined;
}
