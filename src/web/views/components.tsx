// Small pieces shared by the pages: badges, event rows, content blocks with redaction markers.
import type { Child } from "hono/jsx";
import type { TimelineRow } from "../../store/queries.ts";
import type { ContentView, RedactedInfo } from "../../view/event-json.ts";
import { describeEvent, describeProcess } from "../../view/describe.ts";
import { formatCursor } from "../filters.ts";
import { fmtCost, fmtMs, fmtTime, fmtTokens, shortHash } from "../../view/format.ts";

/** Capture badge from confidence.completeness: what the stored event can show. */
export function CaptureBadge(props: { completeness: string | null | undefined }) {
  const c = props.completeness ?? "";
  const [cls, label] =
    c === "full"
      ? ["full", "Full"]
      : c === "redacted"
        ? ["redacted", "Redacted"]
        : c === "metadata_only"
          ? ["metadata", "Metadata"]
          : c === "partial"
            ? ["redacted", "Partial"]
            : ["metadata", c || "?"];
  return (
    <span class={`badge ${cls}`} title={c ? `confidence.completeness: ${c}` : undefined}>
      {label}
    </span>
  );
}

export function StatusBadge(props: { success: number | boolean | null | undefined; statusCode?: number | null }) {
  const code = typeof props.statusCode === "number" ? ` ${props.statusCode}` : "";
  if (props.success === 1 || props.success === true) return <span class="badge ok">ok{code}</span>;
  if (props.success === 0 || props.success === false) return <span class="badge error">error{code}</span>;
  return <span class="badge pending">–</span>;
}

export function TypeLabel(props: { type: string }) {
  const cls =
    props.type === "ai.request"
      ? "ai-request"
      : props.type === "ai.response"
        ? "ai-response"
        : props.type.startsWith("agent.")
          ? "agent"
          : props.type === "process.exec" || props.type === "file.write"
            ? "activity"
            : "";
  return <span class={`type ${cls}`}>{props.type}</span>;
}

export function eventHref(eventId: string): string {
  return `/event/${encodeURIComponent(eventId)}`;
}

export const TIMELINE_COLUMNS = ["Time", "Type", "What happened", "Process", "In", "Out", "Cost", "Latency", "Capture", "Status"];
const NUMERIC = new Set(["In", "Out", "Cost", "Latency"]);

export function TimelineHead() {
  return (
    <thead>
      <tr>
        {TIMELINE_COLUMNS.map((c) => (
          <th class={NUMERIC.has(c) ? "num" : undefined}>{c}</th>
        ))}
      </tr>
    </thead>
  );
}

export function EventRow(props: { row: TimelineRow; nowMs: number; fresh?: boolean }) {
  const r = props.row;
  const href = eventHref(r.event_id);
  // The same words as the terminal view: provider and model, tool name, host, command line, path.
  const what = describeEvent(r);
  return (
    <tr data-href={href} data-cursor={formatCursor({ tsMs: r.ts_ms, eventId: r.event_id })} class={props.fresh ? "fresh" : undefined}>
      <td class="time">
        <a href={href} title={r.ts}>
          {fmtTime(r.ts_ms, props.nowMs)}
        </a>
      </td>
      <td>
        <TypeLabel type={r.event_type} />
      </td>
      <td class="what ellipsis" title={what || undefined}>
        {what}
      </td>
      <td class="ellipsis">
        {describeProcess(r)} {r.pid !== null ? <span class="dim num">{r.pid}</span> : null}
      </td>
      <td class="num">{fmtTokens(r.input_tokens)}</td>
      <td class="num">{fmtTokens(r.output_tokens)}</td>
      <td class="num">{fmtCost(r.cost_usd)}</td>
      <td class="num">{fmtMs(r.latency_ms)}</td>
      <td>
        <CaptureBadge completeness={r.completeness} />
      </td>
      <td>
        <StatusBadge success={r.success} statusCode={r.status_code} />
      </td>
    </tr>
  );
}

/** "redacted (1,250 chars, sha256:1a2b3c…)": what was there, without what it said. */
export function RedactedMarker(props: { info: RedactedInfo }) {
  const { length, hash, reason } = props.info;
  const parts = [length !== undefined ? `${length.toLocaleString("en-US")} chars` : undefined, hash ? shortHash(hash) : undefined].filter(Boolean);
  const title = [reason ? `reason: ${reason}` : undefined, hash].filter(Boolean).join(" · ");
  return (
    <span class="redacted-marker" title={title || undefined}>
      redacted{parts.length ? ` (${parts.join(", ")})` : ""}
    </span>
  );
}

export function Content(props: { content: ContentView; empty?: string }) {
  const c = props.content;
  if (c.kind === "text") return <pre class="content">{c.text}</pre>;
  if (c.kind === "redacted")
    return (
      <div>
        <RedactedMarker info={c.info} />
      </div>
    );
  return <span class="dim">{props.empty ?? "no content"}</span>;
}

export function Panel(props: { title: Child; right?: Child; children?: Child; id?: string }) {
  return (
    <section class="panel" id={props.id}>
      <header>
        <h2>{props.title}</h2>
        <span class="spacer"></span>
        {props.right}
      </header>
      {props.children}
    </section>
  );
}

export function Empty(props: { children?: Child }) {
  return <div class="empty">{props.children}</div>;
}
