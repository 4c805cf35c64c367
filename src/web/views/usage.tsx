// Usage over time: stacked bars per hour or day, by provider or model, as server-drawn inline SVG.
import { fmtCost, fmtDate, fmtInt, fmtTokens } from "../../view/format.ts";
import { axisTicks, type ChartModel, type UsageMetric } from "../usage-chart.ts";
import { Empty, Panel } from "./components.tsx";
import { ControlsForm } from "./inventory.tsx";
import { Layout, type PageContext } from "./layout.tsx";

export const USAGE_RANGES = { "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days", "90d": "last 90 days" } as const;
export type UsageRange = keyof typeof USAGE_RANGES;

export interface UsageControls {
  metric: UsageMetric;
  bucket: "hour" | "day";
  by: "provider" | "model";
  range: UsageRange;
}

export function fmtMetric(metric: UsageMetric, v: number): string {
  return metric === "cost" ? fmtCost(v) : metric === "tokens" ? fmtTokens(v) : fmtInt(v);
}

function bucketLabel(ms: number, bucket: "hour" | "day"): string {
  const d = new Date(ms);
  if (bucket === "day") return fmtDate(ms).slice(5);
  return `${String(d.getHours()).padStart(2, "0")}:00`;
}

function bucketTitle(ms: number, bucket: "hour" | "day"): string {
  return bucket === "day" ? fmtDate(ms) : `${fmtDate(ms)} ${bucketLabel(ms, "hour")}`;
}

const W = 1000;
const H = 260;
const M = { left: 64, right: 8, top: 10, bottom: 24 };

export function UsageChart(props: { model: ChartModel; bucket: "hour" | "day" }) {
  const { model, bucket } = props;
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const n = model.buckets.length || 1;
  const step = plotW / n;
  const barW = Math.max(1, step * 0.78);
  const ticks = axisTicks(model.max, model.metric !== "cost");
  const yMax = ticks[ticks.length - 1] ?? 1;
  const y = (v: number) => M.top + plotH - (v / yMax) * plotH;
  const labelEvery = Math.max(1, Math.ceil(n / 12));
  return (
    <svg class="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${model.metric} per ${bucket}`} xmlns="http://www.w3.org/2000/svg">
      {ticks.map((t) => (
        <g>
          <line class="grid-line" x1={M.left} x2={W - M.right} y1={y(t)} y2={y(t)} />
          <text x={M.left - 6} y={y(t) + 4} text-anchor="end">
            {fmtMetric(model.metric, t)}
          </text>
        </g>
      ))}
      {model.buckets.map((b, bi) => {
        let base = 0;
        const x = M.left + bi * step + (step - barW) / 2;
        return (
          <g>
            {model.series.map((s, si) => {
              const v = model.values[si]?.[bi] ?? 0;
              if (v <= 0) return null;
              const y0 = y(base);
              base += v;
              const y1 = y(base);
              return (
                <rect class={`s${si % 8}`} x={x.toFixed(1)} y={y1.toFixed(1)} width={barW.toFixed(1)} height={Math.max(0.5, y0 - y1).toFixed(1)}>
                  <title>{`${bucketTitle(b, bucket)} · ${s}: ${fmtMetric(model.metric, v)}`}</title>
                </rect>
              );
            })}
            {bi % labelEvery === 0 ? (
              <text x={(M.left + bi * step + step / 2).toFixed(1)} y={H - 6} text-anchor="middle">
                {/* Hourly bars over several days: a bare "13:00" would not say which day. */}
                {bucket === "hour" && n > 24 ? `${fmtDate(b).slice(5)} ${bucketLabel(b, "hour")}` : bucketLabel(b, bucket)}
              </text>
            ) : null}
          </g>
        );
      })}
    </svg>
  );
}

function Choice<T extends string>(props: { name: string; label: string; value: T; options: Record<T, string> }) {
  return (
    <label>
      {props.label}
      <select name={props.name}>
        {(Object.keys(props.options) as T[]).map((k) => (
          <option value={k} selected={k === props.value}>
            {props.options[k]}
          </option>
        ))}
      </select>
    </label>
  );
}

export function UsagePage(props: { ctx: PageContext; controls: UsageControls; chart: ChartModel }) {
  const { controls: c, chart } = props;
  const rowsWithData = chart.buckets.map((b, i) => ({ b, i })).filter(({ i }) => (chart.totals[i] ?? 0) > 0).reverse();
  const seriesTotals = chart.series.map((_, si) => (chart.values[si] ?? []).reduce((a, v) => a + v, 0));
  return (
    <Layout ctx={props.ctx} title="Usage" active="usage">
      <div class="page-head">
        <h1>Usage</h1>
        <span class="sub">
          {c.metric} per {c.bucket} by {c.by}
        </span>
        <span class="spacer"></span>
        <ControlsForm action="/usage">
          <Choice name="metric" label="Metric" value={c.metric} options={{ requests: "requests", tokens: "tokens", cost: "cost (USD)" }} />
          <Choice name="bucket" label="Per" value={c.bucket} options={{ hour: "hour", day: "day" }} />
          <Choice name="by" label="By" value={c.by} options={{ provider: "provider", model: "model" }} />
          <Choice name="range" label="Range" value={c.range} options={USAGE_RANGES} />
        </ControlsForm>
      </div>
      <Panel title={`${c.metric} per ${c.bucket}`} right={<span class="dim">total {fmtMetric(c.metric, chart.totals.reduce((a, v) => a + v, 0))}</span>}>
        {chart.series.length ? (
          <>
            <UsageChart model={chart} bucket={c.bucket} />
            <div class="legend">
              {chart.series.map((s, si) => (
                <span>
                  <i class={`s${si % 8}`}></i>
                  {s} <span class="num dim">{fmtMetric(c.metric, seriesTotals[si] ?? 0)}</span>
                </span>
              ))}
            </div>
          </>
        ) : (
          <Empty>No usage in this range.</Empty>
        )}
      </Panel>
      {rowsWithData.length ? (
        <Panel title="By bucket">
          <table class="grid">
            <thead>
              <tr>
                <th>{c.bucket === "day" ? "Day" : "Hour"}</th>
                {chart.series.map((s) => (
                  <th class="num">{s}</th>
                ))}
                <th class="num">Total</th>
              </tr>
            </thead>
            <tbody>
              {rowsWithData.map(({ b, i }) => (
                <tr>
                  <td class="time">
                    {bucketTitle(b, c.bucket)}
                  </td>
                  {chart.series.map((_, si) => (
                    <td class="num">{fmtMetric(c.metric, chart.values[si]?.[i] ?? 0)}</td>
                  ))}
                  <td class="num">{fmtMetric(c.metric, chart.totals[i] ?? 0)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Panel>
      ) : null}
    </Layout>
  );
}
