// The rollups' time buckets, shared by the writer (rollups.ts) and the reads (query-sql.ts).
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** A rollup's bucket of an event time: SQLite's (ts_ms / size) * size, which truncates toward zero (never -0). */
export function bucketOf(tsMs: number, size: number): number {
  return Math.trunc(tsMs / size) * size || 0;
}
