// Process tree: which processes (and their parents) talk to which AI providers, as an indented table.
import { flattenTree, type ProcessNode } from "../../view/process-tree.ts";
import { fmtAgo, fmtCost, fmtInt } from "../../view/format.ts";
import { describeEvent, typeLabel } from "../../view/describe.ts";
import { Empty, eventHref, Panel } from "./components.tsx";
import type { FilterForm } from "../filters.ts";
import { ListFilters } from "./inventory.tsx";
import { providerDisplayName } from "../../spec/provider-label.ts";
import { Layout, type PageContext } from "./layout.tsx";
import type { FilterOptions } from "./timeline.tsx";

export function ProcessesPage(props: { ctx: PageContext; form: FilterForm; options: FilterOptions; roots: ProcessNode[]; count: number }) {
  const rows = flattenTree(props.roots);
  return (
    <Layout ctx={props.ctx} title="Processes" active="processes">
      <div class="page-head">
        <h1>Processes</h1>
        <span class="sub">{props.count} processes made AI calls; each is nested under its parent process</span>
        <span class="spacer"></span>
      </div>
      <ListFilters action="/processes" form={props.form} options={props.options} />
      <Panel title="Process tree">
        {rows.length ? (
          <table class="grid tree-table">
            <thead>
              <tr>
                <th>Process</th>
                <th class="num">PID</th>
                <th class="num">PPID</th>
                <th>Executable</th>
                <th>Providers</th>
                <th class="num">Requests</th>
                <th class="num">Cost</th>
                <th>Last seen</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(({ node: n, depth }) => [
                <tr class={n.seen ? undefined : "unseen"}>
                  <td class={`depth-${Math.min(depth, 8)}`}>
                    {depth > 0 ? <span class="branch">└</span> : null}
                    {n.seen ? (
                      <a class="proc-name" href={`/?process=${encodeURIComponent(n.name)}`}>
                        {n.name}
                      </a>
                    ) : (
                      <span class="proc-name dim" title="parent process; made no AI call itself">
                        {n.name === "?" ? "parent" : n.name}
                      </span>
                    )}
                  </td>
                  <td class="num">{n.pid}</td>
                  <td class="num dim">{n.ppid ?? ""}</td>
                  <td class="mono dim ellipsis" title={n.exe ?? undefined}>
                    {n.exe ?? ""}
                  </td>
                  <td>
                    {n.providers.map((p) => (
                      <span class="chip" title={`${fmtInt(p.events)} events, ${fmtCost(p.cost_usd)}`}>
                        {providerDisplayName(p.provider)} · {fmtInt(p.requests)}
                      </span>
                    ))}
                  </td>
                  <td class="num">{n.seen ? fmtInt(n.requests) : ""}</td>
                  <td class="num">{n.seen ? fmtCost(n.costUsd) : ""}</td>
                  <td class="dim">{fmtAgo(n.lastMs, props.ctx.nowMs)}</td>
                </tr>,
                // What the process ran and wrote (process.exec / file.write), under it.
                ...n.activity.map((a) => (
                  <tr class="activity" data-type={a.event_type}>
                    <td class={`depth-${Math.min(depth + 1, 8)}`} colspan={5}>
                      <span class="branch">↳</span>{" "}
                      <a href={eventHref(a.event_id)}>
                        <span class="dim">{typeLabel(a.event_type)}</span> <span class="mono">{describeEvent(a)}</span>
                      </a>
                    </td>
                    <td colspan={2}></td>
                    <td class="dim">{fmtAgo(a.ts_ms, props.ctx.nowMs)}</td>
                  </tr>
                )),
              ])}
            </tbody>
          </table>
        ) : (
          <Empty>No processes seen in this range.</Empty>
        )}
      </Panel>
    </Layout>
  );
}
