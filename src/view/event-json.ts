// Reading stored OISP event JSON for display. The JSON came off the network through the sensor, so every
// field is read defensively: a missing or oddly typed field shows as absent, never as a crash.
import { arr, at, isObj, num, str, type Json } from "../events/read.ts";

// The narrowing helpers are the events' own reader (src/events/read.ts), re-exported for the views.
export { arr, at, isObj, num, parseEventJson, str, type Json } from "../events/read.ts";

export interface RedactedInfo {
  length?: number;
  hash?: string;
  reason?: string;
  preview?: string;
}

export function redactedInfo(v: Json): RedactedInfo | undefined {
  const r = at(v, "$redacted");
  if (!isObj(r)) return undefined;
  return { length: num(r.original_length), hash: str(r.hash), reason: str(r.reason), preview: str(r.preview) };
}

/** Text content, a redaction marker, or metadata only (length + hash kept beside an absent content). */
export type ContentView = { kind: "text"; text: string } | { kind: "redacted"; info: RedactedInfo } | { kind: "none" };

export function contentOf(holder: Json, key = "content"): ContentView {
  const v = at(holder, key);
  if (typeof v === "string") return { kind: "text", text: v };
  const info = redactedInfo(v);
  if (info) return { kind: "redacted", info };
  if (v !== undefined && v !== null) return { kind: "text", text: JSON.stringify(v, null, 2) };
  const length = num(at(holder, `${key}_length`));
  const hash = str(at(holder, `${key}_hash`));
  if (length !== undefined || hash !== undefined) return { kind: "redacted", info: { length, hash } };
  return { kind: "none" };
}

export interface MessageView {
  role: string;
  name?: string;
  toolCallId?: string;
  content: ContentView;
  imageCount?: number;
  toolCalls: ToolCallView[];
}

export interface ToolCallView {
  id?: string;
  name: string;
  arguments: ContentView;
}

export function toolCallsOf(v: Json): ToolCallView[] {
  return arr(v).map((t) => {
    let args = contentOf(t, "arguments");
    if (args.kind === "none") {
      const hash = str(at(t, "arguments_hash"));
      if (hash) args = { kind: "redacted", info: { hash } };
    }
    if (args.kind === "text") args = { kind: "text", text: prettyJsonText(args.text) };
    return { id: str(at(t, "id")), name: str(at(t, "name")) ?? "?", arguments: args };
  });
}

export function messagesOf(v: Json): MessageView[] {
  return arr(v).map((m) => ({
    role: str(at(m, "role")) ?? "?",
    name: str(at(m, "name")),
    toolCallId: str(at(m, "tool_call_id")),
    content: contentOf(m),
    imageCount: num(at(m, "image_count")),
    toolCalls: toolCallsOf(at(m, "tool_calls")),
  }));
}

/** Re-indents JSON text for reading; leaves anything else as it was. */
export function prettyJsonText(text: string): string {
  const t = text.trim();
  if (!(t.startsWith("{") || t.startsWith("["))) return text;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return text;
  }
}

/** The ids this event names in related_events. */
export function relatedIds(event: Json): Array<{ id: string; relationship?: string }> {
  return arr(at(event, "related_events"))
    .map((r) => ({ id: str(at(r, "event_id")) ?? "", relationship: str(at(r, "relationship")) }))
    .filter((r) => r.id !== "");
}
