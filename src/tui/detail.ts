// The terminal's event view (Enter on an activity row): an AI call's request and response side by side in
// text, then its tool calls, usage, cost and timings; any other event as its data. Pure: events in, lines
// out (at most `cols` wide), so it is checked in unit tests like the rest of screen.ts.
import { at, arr, contentOf, isObj, messagesOf, num, str, toolCallsOf, type ContentView, type Json } from "../view/event-json.ts";
import { describeEvent, describeProcess, providerName, typeLabel, type DescribableRow } from "../view/describe.ts";
import { fmtCost, fmtInt, fmtMs } from "../view/format.ts";
import { padRight, sanitize, truncate, width } from "./text.ts";

/** The selected event and the events of its call (same request_id / related_events), parsed. */
export interface EventDetail {
  row: DescribableRow & { event_id: string; ts: string; completeness: string | null };
  event: Record<string, Json>;
  related: Array<Record<string, Json>>;
}

/** Wraps text to `cols` display columns (hard-cutting words longer than a line); keeps blank lines. */
export function wrap(text: string, cols: number): string[] {
  const out: string[] = [];
  if (cols <= 0) return out;
  for (const rawLine of text.split(/\r?\n/)) {
    let line = "";
    let w = 0;
    for (const word of sanitize(rawLine).split(/(\s+)/)) {
      if (!word) continue;
      const ww = width(word);
      if (w + ww <= cols) {
        line += word;
        w += ww;
        continue;
      }
      if (line.trim()) out.push(line.trimEnd());
      line = "";
      w = 0;
      if (/^\s+$/.test(word)) continue;
      let rest = word;
      while (width(rest) > cols) {
        let cut = "";
        for (const ch of rest) {
          if (width(cut + ch) > cols) break;
          cut += ch;
        }
        out.push(cut);
        rest = rest.slice(cut.length);
      }
      line = rest;
      w = width(rest);
    }
    out.push(line.trimEnd());
  }
  return out;
}

function contentText(c: ContentView, empty = "(no content)"): string {
  if (c.kind === "text") return c.text;
  if (c.kind === "redacted") {
    const len = c.info.length !== undefined ? `, ${fmtInt(c.info.length)} chars` : "";
    return c.info.reason || c.info.preview !== undefined ? `[redacted${len}]${c.info.preview ? ` ${c.info.preview}` : ""}` : `[not captured${len}]`;
  }
  return empty;
}

function requestLines(req: Record<string, Json> | undefined, cols: number): string[] {
  if (!req) return ["(no ai.request stored for this call)"];
  const d = at(req, "data");
  const out: string[] = [];
  for (const m of messagesOf(at(d, "messages"))) {
    out.push(...wrap(`${m.role}: ${contentText(m.content)}`, cols));
    for (const t of m.toolCalls) out.push(...wrap(`  → ${t.name} ${contentText(t.arguments, "")}`, cols));
  }
  const tools = arr(at(d, "tools")).map((t) => str(at(t, "name"))).filter(Boolean);
  if (tools.length) out.push(...wrap(`tools offered: ${tools.join(", ")}`, cols));
  return out.length ? out : ["(no messages)"];
}

function responseLines(resp: Record<string, Json> | undefined, cols: number): string[] {
  if (!resp) return ["(no ai.response stored for this call yet)"];
  const d = at(resp, "data");
  const out: string[] = [];
  const error = at(d, "error");
  if (isObj(error)) out.push(...wrap(`error ${str(error.type) ?? ""}: ${str(error.message) ?? ""}`, cols));
  const thinking = contentOf(at(resp, "attrs"), "thinking");
  if (thinking.kind !== "none") out.push(...wrap(`thinking: ${contentText(thinking)}`, cols));
  for (const ch of arr(at(d, "choices"))) {
    const m = messagesOf([at(ch, "message")])[0];
    if (m) out.push(...wrap(`${m.role}: ${contentText(m.content, "(tool calls only)")}`, cols));
  }
  for (const t of toolCallsOf(at(d, "tool_calls"))) out.push(...wrap(`→ ${t.name} ${contentText(t.arguments, "")}`, cols));
  return out.length ? out : ["(no content)"];
}

/** Two columns side by side, each `w` wide, with a bar between. */
function sideBySide(left: string[], right: string[], w: number): string[] {
  const n = Math.max(left.length, right.length);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`${padRight(left[i] ?? "", w)} │ ${right[i] ?? ""}`);
  return out;
}

/** All lines of the event view for a terminal `cols` wide (the caller scrolls them). */
export function detailLines(d: EventDetail, cols: number): string[] {
  const r = d.row;
  const out: string[] = [];
  const what = describeEvent(r);
  out.push(truncate(`${typeLabel(r.event_type)}  ${what}  ${describeProcess(r)}${r.pid !== null ? ` (pid ${r.pid})` : ""}  ${r.ts}`, cols));
  const all = [d.event, ...d.related];
  const request = all.find((e) => e.event_type === "ai.request");
  const response = all.find((e) => e.event_type === "ai.response");
  if (r.event_type.startsWith("ai.") || r.event_type.startsWith("agent.")) {
    const w = Math.max(10, Math.floor((cols - 3) / 2));
    const reqModel = str(at(request, "data", "model", "id"));
    const respModel = str(at(response, "data", "model", "id"));
    out.push("");
    const provider = r.provider ?? str(at(request ?? response, "data", "provider", "name")) ?? null;
    out.push(`${padRight(`REQUEST ${providerName(provider)} ${reqModel ?? ""}`.trimEnd(), w)} │ ${truncate(`RESPONSE ${respModel ?? ""}`.trimEnd(), w)}`);
    out.push(`${"─".repeat(w)}─┼─${"─".repeat(w)}`);
    out.push(...sideBySide(requestLines(request, w), responseLines(response, w), w));
    out.push("");
    const rd = at(response, "data");
    const calls = all.filter((e) => e.event_type === "agent.tool_call" || e.event_type === "agent.tool_result");
    if (calls.length) {
      out.push("TOOL CALLS");
      for (const e of calls) {
        const name = str(at(e, "data", "tool", "name")) ?? "?";
        const args = at(e, "data", "arguments");
        const argText = args === undefined ? "" : typeof args === "string" ? args : JSON.stringify(args);
        out.push(...wrap(`  ${typeLabel(String(e.event_type))} ${name} ${argText}`.trimEnd(), cols));
      }
    }
    const usage = at(rd, "usage");
    const parts = [
      num(at(usage, "prompt_tokens")) !== undefined ? `in ${fmtInt(num(at(usage, "prompt_tokens")))}` : "",
      num(at(usage, "completion_tokens")) !== undefined ? `out ${fmtInt(num(at(usage, "completion_tokens")))}` : "",
      num(at(usage, "cached_tokens")) ? `cached ${fmtInt(num(at(usage, "cached_tokens")))}` : "",
      num(at(usage, "reasoning_tokens")) ? `reasoning ${fmtInt(num(at(usage, "reasoning_tokens")))}` : "",
    ].filter(Boolean);
    out.push(truncate(`USAGE  ${parts.join("  ") || "none reported"}`, cols));
    const cost = num(at(usage, "total_cost_usd"));
    out.push(truncate(`COST   ${cost !== undefined ? fmtCost(cost) : "unknown (no price for this model)"}`, cols));
    const timing = [
      num(at(rd, "status_code")) !== undefined ? `status ${num(at(rd, "status_code"))}` : "",
      num(at(rd, "latency_ms")) !== undefined ? `latency ${fmtMs(num(at(rd, "latency_ms")))}` : "",
      num(at(rd, "time_to_first_token_ms")) !== undefined ? `first token ${fmtMs(num(at(rd, "time_to_first_token_ms")))}` : "",
      str(at(rd, "finish_reason")) ? `finish ${str(at(rd, "finish_reason"))}` : "",
    ].filter(Boolean);
    if (timing.length) out.push(truncate(`CALL   ${timing.join("  ")}`, cols));
  } else {
    out.push("");
    out.push(...wrap(JSON.stringify(at(d.event, "data") ?? {}, null, 2), cols));
  }
  out.push(truncate(`CAPTURE ${r.completeness ?? "unknown"}   event ${r.event_id}`, cols));
  return out;
}
