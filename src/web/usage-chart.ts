// Usage chart model: per-bucket, per-series values with empty buckets filled, the biggest series kept
// and the rest summed as "other". Drawn as inline SVG on the server (uPlot is not a dependency).
import type { UsageBucket } from "../store/queries.ts";

export type UsageMetric = "requests" | "tokens" | "cost";

export interface ChartModel {
  metric: UsageMetric;
  bucketMs: number;
  /** Bucket start times, oldest first. */
  buckets: number[];
  series: string[];
  /** values[series][bucket] */
  values: number[][];
  /** Sum per bucket (the stack height). */
  totals: number[];
  max: number;
}

export const MAX_BUCKETS = 400;

function metricOf(row: UsageBucket, metric: UsageMetric): number {
  return metric === "requests" ? row.requests : metric === "tokens" ? row.tokens : row.cost_usd;
}

export function alignBucket(ms: number, bucketMs: number, offsetMs: number): number {
  return Math.floor((ms + offsetMs) / bucketMs) * bucketMs - offsetMs;
}

export function buildChart(
  rows: UsageBucket[],
  o: { metric: UsageMetric; bucketMs: number; sinceMs: number; nowMs: number; offsetMs: number; maxSeries?: number },
): ChartModel {
  const maxSeries = o.maxSeries ?? 8;
  const first = alignBucket(Math.max(o.sinceMs, o.nowMs - MAX_BUCKETS * o.bucketMs), o.bucketMs, o.offsetMs);
  const buckets: number[] = [];
  for (let b = first; b <= o.nowMs && buckets.length < MAX_BUCKETS; b += o.bucketMs) buckets.push(b);
  const index = new Map(buckets.map((b, i) => [b, i]));

  const totalsBySeries = new Map<string, number>();
  for (const r of rows) totalsBySeries.set(r.series, (totalsBySeries.get(r.series) ?? 0) + metricOf(r, o.metric));
  const ranked = [...totalsBySeries.entries()].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).map(([s]) => s);
  const kept = ranked.length > maxSeries ? ranked.slice(0, maxSeries - 1) : ranked;
  const series = ranked.length > maxSeries ? [...kept, "other"] : kept;
  const seriesIndex = new Map(kept.map((s, i) => [s, i]));

  const values = series.map(() => buckets.map(() => 0));
  for (const r of rows) {
    const bi = index.get(r.bucket_ms);
    if (bi === undefined) continue;
    const si = seriesIndex.get(r.series) ?? (series.length > kept.length ? series.length - 1 : undefined);
    if (si === undefined) continue;
    values[si]![bi]! += metricOf(r, o.metric);
  }
  const totals = buckets.map((_, bi) => values.reduce((sum, row) => sum + (row[bi] ?? 0), 0));
  return { metric: o.metric, bucketMs: o.bucketMs, buckets, series, values, totals, max: Math.max(0, ...totals) };
}

/** A round step at or above `v`: 1, 2, 5 × 10^k. */
export function niceStep(v: number): number {
  if (!(v > 0)) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * exp >= v * (1 - 1e-9)) return m * exp;
  return 10 * exp;
}

/** Y axis ticks from 0 to at least `max`, about four round steps; whole numbers for counts. */
export function axisTicks(max: number, integer: boolean): number[] {
  let step = niceStep(max > 0 ? max / 4 : 1);
  if (integer) step = Math.max(1, Math.round(step));
  const top = Math.max(step, Math.ceil(max / step - 1e-9) * step);
  const ticks: number[] = [];
  for (let i = 0; i * step <= top + step / 2 && ticks.length <= 10; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}
