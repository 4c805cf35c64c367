// Inventory: which providers, models, apps and credentials are in use, with counts, tokens and cost.
import type { Child } from "hono/jsx";
import type { AccountUsage, AppUsage, GroupTotals, ModelUsage, ProviderUsage } from "../../store/queries.ts";
import { filterQuery, hasFilter, type FilterForm } from "../filters.ts";
import { fmtAgo, fmtCost, fmtInt, fmtTokens } from "../../view/format.ts";
import { Empty, Panel } from "./components.tsx";
import { Layout, type PageContext } from "./layout.tsx";
import { FilterFields, type FilterOptions } from "./timeline.tsx";
import { providerDisplayName } from "../../spec/provider-label.ts";

/** The lists' default range: a month is what "what is in use" means without a choice. */
export const LIST_DEFAULT_RANGE = "30d";

/** A GET form that reloads the page's <main> through htmx when a control changes. */
export function ControlsForm(props: { action: string; children?: Child }) {
  return (
    <form
      class="inline"
      action={props.action}
      method="get"
      hx-get={props.action}
      hx-target="main"
      hx-select="main"
      hx-swap="outerHTML"
      hx-push-url="true"
      hx-trigger="change, submit"
    >
      {props.children}
      <button type="submit">Show</button>
    </form>
  );
}

/**
 * The timeline's filter bar on a rollup-backed list (inventory, processes): the same fields and parsing,
 * minus status and free text, which the rollups cannot answer. Times count whole hours.
 */
export function ListFilters(props: { action: string; form: FilterForm; options: FilterOptions }) {
  return (
    <ControlsForm action={props.action}>
      <FilterFields form={props.form} options={props.options} noStatus />
      {hasFilter({ ...props.form, range: props.form.range === LIST_DEFAULT_RANGE ? "all" : props.form.range }) ? (
        <a class="button" href={props.action}>
          Clear
        </a>
      ) : null}
    </ControlsForm>
  );
}

/** The timeline for one row, keeping the page's filters (so "node" under one model opens node's calls to it). */
function timelineLink(form: FilterForm, params: Record<string, string | null | undefined>): string {
  const set: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) if (v) set[k] = v;
  return `/${filterQuery(form, set)}`;
}

const TOTAL_HEADS = ["Requests", "Errors", "Tokens in", "Tokens out", "Cost", "Last seen"];

function TotalsCells(props: { t: GroupTotals; nowMs: number }) {
  const t = props.t;
  return (
    <>
      <td class="num">{fmtInt(t.requests)}</td>
      <td class="num">{t.errors ? fmtInt(t.errors) : ""}</td>
      <td class="num">{fmtTokens(t.input_tokens)}</td>
      <td class="num">{fmtTokens(t.output_tokens)}</td>
      <td class="num">{fmtCost(t.cost_usd)}</td>
      <td class="num dim">{fmtAgo(t.last_ms, props.nowMs)}</td>
    </>
  );
}

function Heads(props: { first: string[] }) {
  return (
    <thead>
      <tr>
        {props.first.map((h) => (
          <th>{h}</th>
        ))}
        {TOTAL_HEADS.map((h) => (
          <th class={h === "Last seen" ? undefined : "num"}>{h}</th>
        ))}
      </tr>
    </thead>
  );
}

export interface InventoryProps {
  ctx: PageContext;
  form: FilterForm;
  options: FilterOptions;
  providers: ProviderUsage[];
  models: ModelUsage[];
  apps: AppUsage[];
  accounts: AccountUsage[];
}

export function InventoryPage(props: InventoryProps) {
  const { nowMs } = props.ctx;
  return (
    <Layout ctx={props.ctx} title="Inventory" active="inventory">
      <div class="page-head">
        <h1>Inventory</h1>
        <span class="sub">providers, models, apps and credentials seen</span>
        <span class="spacer"></span>
      </div>
      <ListFilters action="/inventory" form={props.form} options={props.options} />
      <div class="cols">
        <Panel title={`Providers (${props.providers.length})`}>
          {props.providers.length ? (
            <table class="grid">
              <Heads first={["Provider"]} />
              <tbody>
                {props.providers.map((p) => (
                  <tr>
                    <td>
                      <a href={timelineLink(props.form, { provider: p.provider })}>{providerDisplayName(p.provider)}</a>
                    </td>
                    <TotalsCells t={p} nowMs={nowMs} />
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No providers seen in this range.</Empty>
          )}
        </Panel>
        <Panel title={`Apps (${props.apps.length})`}>
          {props.apps.length ? (
            <table class="grid">
              <Heads first={["Process", "PIDs"]} />
              <tbody>
                {props.apps.map((a) => (
                  <tr>
                    <td>
                      <a href={timelineLink(props.form, { process: a.process_name })}>{a.process_name}</a>
                    </td>
                    <td class="num">{fmtInt(a.pids)}</td>
                    <TotalsCells t={a} nowMs={nowMs} />
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No apps seen in this range.</Empty>
          )}
        </Panel>
      </div>
      <Panel title={`Models (${props.models.length})`}>
        {props.models.length ? (
          <table class="grid">
            <Heads first={["Model (as requested)", "Provider"]} />
            <tbody>
              {props.models.map((m) => (
                <tr>
                  <td class="mono">
                    <a href={timelineLink(props.form, { model: m.model })}>{m.model}</a>
                    {m.answered_by.length ? <span class="dim answered-by"> answered by {m.answered_by.join(", ")}</span> : null}
                  </td>
                  <td>{m.provider ? providerDisplayName(m.provider) : ""}</td>
                  <TotalsCells t={m} nowMs={nowMs} />
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <Empty>No models seen in this range.</Empty>
        )}
      </Panel>
      <Panel title={`Accounts (${props.accounts.length})`} right={<span class="dim">key prefix and fingerprint only; keys are never stored</span>}>
        {props.accounts.length ? (
          <table class="grid">
            <thead>
              <tr>
                <th>Provider</th>
                <th>Auth</th>
                <th>Key prefix</th>
                <th>Key fingerprint</th>
                <th>Apps</th>
                <th class="num">Requests</th>
                <th class="num">Tokens in</th>
                <th class="num">Tokens out</th>
                <th class="num">Cost</th>
                <th>Last seen</th>
              </tr>
            </thead>
            <tbody>
              {props.accounts.map((a) => (
                <tr>
                  <td>{a.provider ? providerDisplayName(a.provider) : ""}</td>
                  <td>{a.auth_type ?? ""}</td>
                  <td class="mono">{a.key_prefix ? `${a.key_prefix}…` : <span class="dim">none</span>}</td>
                  <td class="mono">{a.key_hash ?? ""}</td>
                  <td class="ellipsis">
                    {(a.apps ?? "").split(",").filter(Boolean).map((app) => (
                      <span class="chip">{app}</span>
                    ))}
                  </td>
                  <td class="num">{fmtInt(a.requests)}</td>
                  <td class="num">{fmtTokens(a.input_tokens)}</td>
                  <td class="num">{fmtTokens(a.output_tokens)}</td>
                  <td class="num">{fmtCost(a.cost_usd)}</td>
                  <td class="num dim">{fmtAgo(a.last_ms, nowMs)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <Empty>No credentials seen in this range.</Empty>
        )}
      </Panel>
    </Layout>
  );
}
