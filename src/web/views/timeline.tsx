// Live timeline: filter form (plain GET, enhanced by htmx), newest-first table, keyset pager.
import type { TimelineRow, TimelinePage } from "../../store/queries.ts";
import { filterQuery, formatCursor, hasFilter, RANGES, type FilterForm } from "../filters.ts";
import { fmtTime } from "../../view/format.ts";
import { EventRow, TimelineHead } from "./components.tsx";
import { Layout, type PageContext } from "./layout.tsx";
import { providerDisplayName } from "../../spec/provider-label.ts";

export interface FilterOptions {
  providers: string[];
  models: string[];
  processes: string[];
  types: string[];
}

export interface TimelineProps {
  ctx: PageContext;
  form: FilterForm;
  options: FilterOptions;
  page: TimelinePage;
  /** True on a deeper page: live rows only join the first page. */
  paged: boolean;
  /** Highest rowid when rendered: live updates fetch what arrived after it. */
  liveCursor: number;
}

const RANGE_LABELS: Record<keyof typeof RANGES, string> = {
  "15m": "last 15 min",
  "1h": "last hour",
  "6h": "last 6 hours",
  "24h": "last 24 hours",
  "7d": "last 7 days",
  "30d": "last 30 days",
  all: "all time",
};

/** A filter select; `show` turns a value (what the URL carries) into what a person reads. */
function Select(props: { name: string; label: string; value: string; values: string[]; all: string; show?: (v: string) => string }) {
  const values = props.value && !props.values.includes(props.value) ? [props.value, ...props.values] : props.values;
  return (
    <label>
      {props.label}
      <select name={props.name}>
        <option value="">{props.all}</option>
        {values.map((v) => (
          <option value={v} selected={v === props.value}>
            {props.show ? props.show(v) : v}
          </option>
        ))}
      </select>
    </label>
  );
}

/**
 * The filter bar's fields (timeline, inventory, processes). `noStatus` leaves out success/error for the
 * lists read from the rollups, which count events per group but do not split them by outcome.
 */
export function FilterFields(props: { form: FilterForm; options: FilterOptions; noStatus?: boolean }) {
  const { form, options } = props;
  return (
    <>
      <Select name="provider" label="Provider" value={form.provider} values={options.providers} all="all providers" show={providerDisplayName} />
      <Select name="model" label="Model" value={form.model} values={options.models} all="all models" />
      <Select name="process" label="Process" value={form.process} values={options.processes} all="all processes" />
      <Select name="type" label="Type" value={form.type} values={options.types} all="all types" />
      {props.noStatus ? null : (
        <label>
          Status
          <select name="status">
            <option value="">any</option>
            <option value="ok" selected={form.status === "ok"}>
              success
            </option>
            <option value="error" selected={form.status === "error"}>
              error
            </option>
          </select>
        </label>
      )}
      <label>
        Range
        <select name="range">
          {(Object.keys(RANGES) as Array<keyof typeof RANGES>).map((k) => (
            <option value={k} selected={k === form.range}>
              {RANGE_LABELS[k]}
            </option>
          ))}
        </select>
      </label>
      <label>
        From
        <input type="datetime-local" name="from" value={form.from} />
      </label>
      <label>
        To
        <input type="datetime-local" name="to" value={form.to} />
      </label>
    </>
  );
}

export function TimelineRows(props: { rows: TimelineRow[]; nowMs: number; fresh?: boolean }) {
  return (
    <>
      {props.rows.map((r) => (
        <EventRow row={r} nowMs={props.nowMs} fresh={props.fresh} />
      ))}
    </>
  );
}

export function TimelineSection(props: TimelineProps) {
  const { form, page, ctx } = props;
  const live = !props.paged;
  return (
    <section id="timeline">
      <div class="panel">
        <form
          id="filters"
          class="filters"
          action="/"
          method="get"
          hx-get="/"
          hx-select="#timeline"
          hx-target="#timeline"
          hx-swap="outerHTML"
          hx-push-url="true"
          hx-trigger="change, submit"
        >
          <FilterFields form={form} options={props.options} />
          <label>
            Search (full-capture events)
            <input type="search" name="q" value={form.q} placeholder="text in prompts, answers…" maxlength={200} />
          </label>
          <button type="submit" class="primary">
            Apply
          </button>
          {hasFilter(form) ? (
            <a class="button" href="/">
              Clear
            </a>
          ) : null}
        </form>
        <div class="toolbar">
          <span>
            <span id="row-count">{page.rows.length}</span> events, newest first{live ? "" : " (older page, live updates paused)"}
          </span>
          {page.searchedToMs !== undefined ? (
            <span class="dim" id="searched-to">
              · text searched back to {fmtTime(page.searchedToMs, ctx.nowMs)}; “Older” searches further
            </span>
          ) : null}
          <span class="spacer"></span>
          <span>Export this filter:</span>
          <a href={`/export/events.jsonl${filterQuery(form)}`} download>
            JSONL
          </a>
          <a href={`/export/events.csv${filterQuery(form)}`} download>
            CSV
          </a>
        </div>
        <table class="grid events">
          <TimelineHead />
          <tbody id="rows" data-live={live ? "on" : "off"} data-cursor={String(props.liveCursor)}>
            {page.rows.length ? (
              <TimelineRows rows={page.rows} nowMs={ctx.nowMs} />
            ) : (
              <tr id="empty-row">
                <td colspan={10} class="empty">
                  {hasFilter(form)
                    ? "No events match this filter."
                    : "No AI traffic captured yet. Start `oisp up`, export the variables it prints, and run your AI tool."}
                </td>
              </tr>
            )}
          </tbody>
        </table>
        <nav class="pager">
          {props.paged ? <a href={`/${filterQuery(form)}`}>⟵ Newest</a> : null}
          <span class="spacer"></span>
          {page.next ? (
            <a id="older" href={`/${filterQuery(form, { before: formatCursor(page.next) })}`}>
              Older ⟶
            </a>
          ) : (
            <span class="dim">end of history</span>
          )}
        </nav>
      </div>
    </section>
  );
}

export function TimelinePage(props: TimelineProps) {
  return (
    <Layout ctx={props.ctx} title="Live" active="live">
      <TimelineSection {...props} />
    </Layout>
  );
}
