// Percentiles over a stream of any length in bounded memory: a uniform reservoir sample (Vitter's
// algorithm R). Exact while the stream fits in the reservoir; beyond it, each percentile is that of a
// uniform random sample of `capacity` values (rank error ~ 1/sqrt(capacity): ±1% at 8192). The random
// source is a seeded PRNG so the same input always gives the same report.

export interface Percentiles {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  /** True when every value was kept (count ≤ capacity): the percentiles are exact. */
  exact: boolean;
}

export class Reservoir {
  private readonly sample: Float64Array;
  private n = 0;
  private min = Infinity;
  private max = -Infinity;
  private seed: number;

  constructor(readonly capacity = 8192, seed = 0x9e3779b9) {
    this.sample = new Float64Array(Math.max(1, capacity));
    this.seed = seed >>> 0;
  }

  add(v: number): void {
    if (!Number.isFinite(v)) return;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (this.n < this.sample.length) this.sample[this.n] = v;
    else {
      const j = Math.floor(this.random() * (this.n + 1));
      if (j < this.sample.length) this.sample[j] = v;
    }
    this.n++;
  }

  get count(): number {
    return this.n;
  }

  percentiles(): Percentiles | undefined {
    if (this.n === 0) return undefined;
    const kept = this.sample.slice(0, Math.min(this.n, this.sample.length)).sort();
    // Nearest rank: the smallest value with at least p% of the values at or below it.
    const at = (p: number) => kept[Math.min(kept.length - 1, Math.max(0, Math.ceil((p / 100) * kept.length) - 1))]!;
    return { count: this.n, min: this.min, p50: at(50), p90: at(90), p95: at(95), p99: at(99), max: this.max, exact: this.n <= this.sample.length };
  }

  /** mulberry32 */
  private random(): number {
    this.seed = (this.seed + 0x6d2b79f5) >>> 0;
    let t = this.seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
