// "What happened" for one event row, in words a person reads: shared by the dashboard's timeline and the
// terminal view so both say the same thing. Covers every OISP v0.1 event type (spec/oisp-schema/): an AI
// call names its provider and model, a tool call its tool, a connection its host, a process.exec its
// command line, a file event its path, and a process is shown as parent→child where the parent is known.
import { providerDisplayName } from "../spec/provider-label.ts";
import type { TimelineRow } from "../store/queries.ts";

/** The row fields the description reads: the timeline's own, so the two cannot drift apart. */
export type DescribableRow = Pick<
  TimelineRow,
  | "event_type" | "provider" | "model" | "pid" | "process_name" | "success" | "status_code" | "tool_name" | "net_host"
  | "net_port" | "file_path" | "exec_args" | "exec_exe" | "parent_name" | "tool_calls" | "detail"
>;

/** The type as shown: agent.* loses its prefix ("tool_call"); `narrow` also shortens network.* to net.*. */
export function typeLabel(eventType: string, narrow = false): string {
  const t = eventType.replace(/^agent\./, "");
  return narrow ? t.replace(/^network\./, "net.") : t;
}

/** Provider as a person names it: the bundle's display name ("openai" → "OpenAI", "xai" → "xAI"). */
export function providerName(provider: string | null): string {
  return provider ? providerDisplayName(provider) : "";
}

/** One line saying what the event is about (no time, no process: those have their own columns). */
export function describeEvent(r: DescribableRow): string {
  const t = r.event_type;
  if (t === "ai.request" || t === "ai.response" || t === "ai.embedding" || t.startsWith("ai.")) {
    const call = [providerName(r.provider), r.model ?? ""].filter(Boolean).join(" ");
    if (t === "ai.response" && r.tool_calls) return `${call} → ${r.tool_calls} tool call${r.tool_calls === 1 ? "" : "s"}`;
    return call;
  }
  if (t === "agent.tool_call" || t === "agent.tool_result") {
    const name = r.tool_name ?? "tool";
    return t === "agent.tool_result" && r.success === 0 ? `${name} (failed)` : name;
  }
  if (t.startsWith("network.")) {
    if (!r.net_host) return "";
    return r.net_port !== null && r.net_port !== 443 ? `${r.net_host}:${r.net_port}` : r.net_host;
  }
  if (t === "process.exec") return commandLine(r.exec_args) ?? r.detail ?? r.exec_exe ?? r.process_name ?? "";
  if (t === "process.exit") return r.process_name ?? "";
  if (t.startsWith("file.")) return r.detail ?? r.file_path ?? "";
  return "";
}

/** The process column: "parent→child" for a process.exec (what started what), else the process name. */
export function describeProcess(r: DescribableRow): string {
  const name = r.process_name ?? (r.pid !== null ? String(r.pid) : "");
  if (r.event_type === "process.exec" && r.parent_name) return `${r.parent_name}→${name}`;
  return name;
}

/** argv as a shell would show it: arguments with spaces or quotes are single-quoted. */
export function commandLine(argsJson: string | null): string | undefined {
  if (!argsJson) return undefined;
  let args: unknown;
  try {
    args = JSON.parse(argsJson);
  } catch {
    return undefined;
  }
  if (!Array.isArray(args) || args.length === 0) return undefined;
  return args
    .map((a) => String(a))
    .map((a) => (a === "" || /[\s'"\\$`]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a))
    .join(" ");
}

/** The capture mark: how much of the content the sensor kept. */
export function captureLabel(completeness: string | null): "FULL" | "RED" | "META" | "" {
  if (completeness === "full") return "FULL";
  if (completeness === "redacted" || completeness === "partial") return "RED";
  if (completeness === "metadata_only") return "META";
  return "";
}
