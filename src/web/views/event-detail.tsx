// One event in detail: request and response side by side, tool calls, thinking, usage, raw JSON, related events.
import { eventInputTokens } from "../../events/input-tokens.ts";
import type { EventRecord, TimelineRow } from "../../store/queries.ts";
import { arr, at, contentOf, isObj, messagesOf, num, str, toolCallsOf, type Json, type ToolCallView } from "../../view/event-json.ts";
import { fmtCost, fmtInt, fmtMs, fmtTime } from "../../view/format.ts";
import { CaptureBadge, Content, Empty, EventRow, eventHref, Panel, StatusBadge, TimelineHead, TypeLabel } from "./components.tsx";
import { Layout, type PageContext } from "./layout.tsx";

export interface ParsedEvent {
  record: EventRecord;
  json: Record<string, Json>;
}

export interface EventDetailProps {
  ctx: PageContext;
  event: ParsedEvent;
  request?: ParsedEvent;
  response?: ParsedEvent;
  related: TimelineRow[];
}

function Meta(props: { k: string; v: unknown; mono?: boolean; title?: string }) {
  if (props.v === undefined || props.v === null || props.v === "") return null;
  return (
    <div>
      <span class="k">{props.k}</span>
      <span class={props.mono ? "v mono" : "v"} title={props.title ?? String(props.v)}>
        {String(props.v)}
      </span>
    </div>
  );
}

function ToolCalls(props: { calls: ToolCallView[] }) {
  if (!props.calls.length) return null;
  return (
    <>
      <h3>Tool calls ({props.calls.length})</h3>
      {props.calls.map((t) => (
        <div class="msg">
          <span class="role tool">call</span> <b class="mono">{t.name}</b> {t.id ? <span class="dim mono">{t.id}</span> : null}
          <Content content={t.arguments} empty="no arguments captured" />
        </div>
      ))}
    </>
  );
}

function Parameters(props: { value: Json }) {
  if (!isObj(props.value)) return null;
  const entries = Object.entries(props.value).filter(([, v]) => v !== undefined && v !== null);
  if (!entries.length) return null;
  return (
    <div>
      {entries.map(([k, v]) => (
        <span class="chip mono">
          {k}={typeof v === "string" ? v : JSON.stringify(v)}
        </span>
      ))}
    </div>
  );
}

/** Panel header link: "this event" when the side is the page's own event, else a link to it. */
function SideLink(props: { eventId: string; current: string; label: string }) {
  return props.eventId === props.current ? (
    <span class="dim">this event</span>
  ) : (
    <a href={eventHref(props.eventId)}>{props.label}</a>
  );
}

function RequestSide(props: { ev?: ParsedEvent; current: string; nowMs: number }) {
  const ev = props.ev;
  if (!ev) {
    return (
      <Panel title="Request">
        <Empty>No ai.request event stored for this call.</Empty>
      </Panel>
    );
  }
  const d = at(ev.json, "data");
  const messages = messagesOf(at(d, "messages"));
  const tools = arr(at(d, "tools"));
  const toolsCount = num(at(d, "tools_count")) ?? tools.length;
  const auth = at(d, "auth");
  return (
    <Panel
      title="Request"
      right={<SideLink eventId={ev.record.event_id} current={props.current} label="open request event" />}
    >
      <div class="panel-body">
        <table class="kv">
          <tbody>
            <tr>
              <th>Time</th>
              <td class="time">
                {fmtTime(ev.record.ts_ms, props.nowMs)}
              </td>
            </tr>
            <tr>
              <th>Endpoint</th>
              <td class="mono">{str(at(d, "provider", "endpoint")) ?? ""}</td>
            </tr>
            <tr>
              <th>Model</th>
              <td class="mono">{str(at(d, "model", "id")) ?? ""}</td>
            </tr>
            <tr>
              <th>Kind</th>
              <td>
                {str(at(d, "request_type")) ?? "?"}
                {at(d, "streaming") === true ? ", streaming" : ""}
              </td>
            </tr>
            {isObj(auth) ? (
              <tr>
                <th>Credential</th>
                <td class="mono">
                  {str(auth.type) ?? ""} {str(auth.key_prefix) ? `${str(auth.key_prefix)}…` : ""}{" "}
                  {str(auth.key_hash) ? <span class="dim">{str(auth.key_hash)}</span> : null}
                </td>
              </tr>
            ) : null}
            {isObj(at(d, "parameters")) ? (
              <tr>
                <th>Parameters</th>
                <td>
                  <Parameters value={at(d, "parameters")} />
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
        <h3>Messages ({num(at(d, "messages_count")) ?? messages.length})</h3>
        {messages.length ? (
          messages.map((m) => (
            <div class="msg">
              <span class={`role ${m.role}`}>{m.role}</span>
              {m.name ? <span class="mono"> {m.name}</span> : null}
              {m.toolCallId ? <span class="dim mono"> ← {m.toolCallId}</span> : null}
              {m.imageCount ? <span class="chip">{m.imageCount} image(s)</span> : null}
              <Content content={m.content} empty={m.toolCalls.length ? "" : "no content"} />
              {m.toolCalls.map((t) => (
                <div>
                  <span class="role tool">call</span> <b class="mono">{t.name}</b>
                  <Content content={t.arguments} empty="no arguments captured" />
                </div>
              ))}
            </div>
          ))
        ) : (
          <span class="dim">none captured</span>
        )}
        <h3>Tools offered ({toolsCount})</h3>
        {tools.length ? (
          <div>
            {tools.map((t) => (
              <span class="chip mono" title={str(at(t, "description"))}>
                {str(at(t, "name")) ?? "?"}
              </span>
            ))}
          </div>
        ) : (
          <span class="dim">none</span>
        )}
      </div>
    </Panel>
  );
}

function Metric(props: { k: string; v: string }) {
  return (
    <div class="metric">
      <div class="k">{props.k}</div>
      <div class="v">{props.v || "–"}</div>
    </div>
  );
}

function ResponseSide(props: { ev?: ParsedEvent; current: string; nowMs: number }) {
  const ev = props.ev;
  if (!ev) {
    return (
      <Panel title="Response">
        <Empty>No ai.response event stored for this call (yet).</Empty>
      </Panel>
    );
  }
  const d = at(ev.json, "data");
  const usage = at(d, "usage");
  const error = at(d, "error");
  const choices = arr(at(d, "choices"));
  const thinking = contentOf(at(ev.json, "attrs"), "thinking");
  const toolCalls = toolCallsOf(at(d, "tool_calls"));
  const success = at(d, "success");
  return (
    <Panel
      title="Response"
      right={<SideLink eventId={ev.record.event_id} current={props.current} label="open response event" />}
    >
      <div class="panel-body">
        <div class="metrics">
          <Metric k="Latency" v={fmtMs(num(at(d, "latency_ms")))} />
          <Metric k="First token" v={fmtMs(num(at(d, "time_to_first_token_ms")))} />
          <Metric k="Tokens in / out" v={`${fmtInt(eventInputTokens(usage, at(ev.json, "attrs")))} / ${fmtInt(num(at(usage, "completion_tokens")))}`} />
          <Metric k="Cost" v={fmtCost(num(at(usage, "total_cost_usd")))} />
        </div>
        {isObj(error) ? (
          <div class="error-box">
            <b>{str(error.type) ?? "error"}</b>
            {str(error.code) ? ` (${str(error.code)})` : ""}: {str(error.message) ?? ""}
          </div>
        ) : null}
        <table class="kv">
          <tbody>
            <tr>
              <th>Status</th>
              <td>
                <StatusBadge success={typeof success === "boolean" ? success : null} statusCode={num(at(d, "status_code"))} />{" "}
                {str(at(d, "finish_reason")) ? <span class="dim">finish: {str(at(d, "finish_reason"))}</span> : null}
              </td>
            </tr>
            <tr>
              <th>Model</th>
              <td class="mono">{str(at(d, "model", "id")) ?? ""}</td>
            </tr>
            <tr>
              <th>Provider id</th>
              <td class="mono">{str(at(d, "provider_request_id")) ?? ""}</td>
            </tr>
            {isObj(usage) ? (
              <tr>
                <th>Usage</th>
                <td>
                  {Object.entries(usage)
                    .filter(([, v]) => typeof v === "number")
                    .map(([k, v]) => (
                      <span class="chip mono">
                        {k}={k.endsWith("_usd") ? fmtCost(v as number) : fmtInt(v as number)}
                      </span>
                    ))}
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
        {thinking.kind !== "none" ? (
          <>
            <h3>Thinking</h3>
            <Content content={thinking} />
          </>
        ) : null}
        <h3>Answer</h3>
        {choices.length ? (
          choices.map((ch) => {
            const m = messagesOf([at(ch, "message")])[0];
            return (
              <div class="msg">
                <span class={`role ${m?.role ?? "assistant"}`}>{m?.role ?? "assistant"}</span>
                {arr(choices).length > 1 ? <span class="dim"> choice {num(at(ch, "index")) ?? ""}</span> : null}
                {m ? <Content content={m.content} empty={toolCalls.length ? "(tool calls only)" : "no content"} /> : null}
              </div>
            );
          })
        ) : (
          <span class="dim">none captured</span>
        )}
        <ToolCalls calls={toolCalls} />
      </div>
    </Panel>
  );
}

function GenericData(props: { ev: ParsedEvent }) {
  const d = at(props.ev.json, "data");
  return (
    <Panel title={`${props.ev.record.event_type} data`}>
      <div class="panel-body">
        {isObj(d) ? (
          <table class="kv">
            <tbody>
              {Object.entries(d).map(([k, v]) => (
                <tr>
                  <th class="mono">{k}</th>
                  <td>{isObj(v) && "$redacted" in v ? <Content content={contentOf({ v }, "v")} /> : <span class="mono">{typeof v === "string" ? v : JSON.stringify(v)}</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <span class="dim">no data</span>
        )}
      </div>
    </Panel>
  );
}

export function EventDetailPage(props: EventDetailProps) {
  const { event, ctx } = props;
  const r = event.record;
  const j = event.json;
  const isAi = r.event_type === "ai.request" || r.event_type === "ai.response";
  return (
    <Layout ctx={ctx} title={r.event_type} active="event">
      <div class="page-head">
        <h1>
          <TypeLabel type={r.event_type} /> {r.provider ?? ""} <span class="mono">{r.model ?? ""}</span>
        </h1>
        <CaptureBadge completeness={r.completeness} />
        <StatusBadge success={r.success} statusCode={r.status_code} />
        <span class="spacer"></span>
        <a href="/">⟵ Timeline</a>
      </div>
      <section class="panel">
        <div class="detail-meta">
          <Meta k="Time" v={r.ts} mono />
          <Meta k="Event id" v={r.event_id} mono />
          <Meta k="Request id" v={r.request_id} mono />
          <Meta k="Connection" v={r.conn_id} mono />
          <Meta k="Process" v={r.process_name ? `${r.process_name} (pid ${r.pid ?? "?"})` : undefined} />
          <Meta k="Parent pid" v={num(at(j, "process", "ppid"))} mono />
          <Meta k="Executable" v={str(at(j, "process", "exe"))} mono />
          <Meta k="User" v={str(at(j, "actor", "user"))} />
          <Meta k="Host" v={str(at(j, "host", "hostname"))} />
          <Meta k="Capture" v={str(at(j, "source", "capture_method"))} />
          <Meta k="Confidence" v={str(at(j, "confidence", "level"))} />
          <Meta k="Redaction" v={str(at(j, "confidence", "redaction_profile"))} />
        </div>
      </section>
      {isAi ? (
        <div class="pair">
          <RequestSide ev={props.request} current={r.event_id} nowMs={ctx.nowMs} />
          <ResponseSide ev={props.response} current={r.event_id} nowMs={ctx.nowMs} />
        </div>
      ) : (
        <GenericData ev={event} />
      )}
      <Panel title={`Related events (${props.related.length})`}>
        {props.related.length ? (
          <table class="grid">
            <TimelineHead />
            <tbody>
              {props.related.map((row) => (
                <EventRow row={row} nowMs={ctx.nowMs} />
              ))}
            </tbody>
          </table>
        ) : (
          <Empty>No related events.</Empty>
        )}
      </Panel>
      <section class="panel">
        <details>
          <summary>Raw event JSON ({fmtInt(r.json.length)} bytes, as stored)</summary>
          <pre class="raw">{JSON.stringify(j, null, 2)}</pre>
        </details>
      </section>
    </Layout>
  );
}
