// Realistic OISP v0.1 events for dashboard and store tests: one AI call is an ai.request, an ai.response
// and one agent.tool_call per tool call, linked by request_id and related_events, in full, redacted
// (safe) or metadata-only form, shaped like the examples in the OISP spec.
import { monotonicFactory } from "ulidx";
import { contentHash } from "../../src/events/hash.ts";

export type FixtureEvent = Record<string, unknown> & { event_id: string; event_type: string; ts: string };
export type CaptureMode = "full" | "redacted" | "metadata_only";

export interface FixtureProcess {
  pid: number;
  ppid?: number;
  name: string;
  exe?: string;
}

export interface ExchangeOptions {
  /** Request time; the response comes `latencyMs` later. */
  tsMs: number;
  provider?: "openai" | "anthropic";
  model?: string;
  /** The model named in the response, when the provider answers an alias with a dated snapshot. */
  responseModel?: string;
  process?: FixtureProcess;
  mode?: CaptureMode;
  system?: string;
  prompt?: string;
  answer?: string;
  thinking?: string;
  toolCalls?: Array<{ name: string; arguments: string }>;
  tools?: string[];
  success?: boolean;
  statusCode?: number;
  errorMessage?: string;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
  latencyMs?: number;
  ttftMs?: number;
  keyPrefix?: string;
  keyHash?: string;
  streaming?: boolean;
}

export const PROCESSES = {
  python: { pid: 4242, ppid: 4200, name: "python3", exe: "/usr/bin/python3" },
  bash: { pid: 4200, ppid: 1, name: "bash", exe: "/bin/bash" },
  node: { pid: 5151, ppid: 4200, name: "node", exe: "/usr/bin/node" },
  cursor: { pid: 777, ppid: 1, name: "cursor", exe: "/opt/cursor/cursor" },
} satisfies Record<string, FixtureProcess>;

const nextUlid = monotonicFactory();
let requestSeq = 0;

/** Event ids in the order the timeline lists them: newest first, ties broken by id descending. */
export function newestFirst(events: FixtureEvent[]): string[] {
  return events
    .map((e) => ({ id: e.event_id, ts: Date.parse(e.ts) }))
    .sort((a, b) => b.ts - a.ts || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .map((e) => e.id);
}

export function iso(tsMs: number): string {
  return new Date(tsMs).toISOString();
}

function envelope(eventType: string, tsMs: number, proc: FixtureProcess, completeness: CaptureMode, connId: string): FixtureEvent {
  return {
    oisp_version: "0.1",
    event_id: nextUlid(tsMs),
    event_type: eventType,
    ts: iso(tsMs),
    host: { hostname: "dev-laptop", os: "linux", arch: "x86_64" },
    actor: { uid: 1000, user: "alice" },
    process: { pid: proc.pid, ppid: proc.ppid, exe: proc.exe, name: proc.name },
    source: { collector: "oisp-sensor", collector_version: "0.1.0", capture_method: "tls_boundary" },
    confidence: {
      level: "high",
      completeness,
      reasons: ["mitm_proxy", "payload_parsed"],
      content_source: "mitm_decryption",
      ai_detection_method: "known_endpoint",
      ...(completeness === "redacted" ? { redaction_applied: true, redaction_profile: "safe" } : {}),
    },
    attrs: { conn_id: connId },
  };
}

/** Content as the sensor stores it in each mode: text, a $redacted marker, or nothing (length + hash beside it). */
function content(mode: CaptureMode, text: string): unknown {
  if (mode === "full") return text;
  if (mode === "redacted") return { $redacted: { reason: "default_safe", original_length: text.length, hash: contentHash(text) } };
  return undefined;
}

function message(mode: CaptureMode, role: string, text: string): Record<string, unknown> {
  const c = content(mode, text);
  return c === undefined ? { role, content_length: text.length, content_hash: contentHash(text) } : { role, content: c };
}

/** One AI call: [ai.request, ai.response, agent.tool_call...]. */
export function aiExchange(o: ExchangeOptions): FixtureEvent[] {
  const provider = o.provider ?? "openai";
  const model = o.model ?? (provider === "openai" ? "gpt-4o-mini" : "claude-sonnet-4-5");
  const proc = o.process ?? PROCESSES.python;
  const mode = o.mode ?? "full";
  const success = o.success ?? true;
  const latency = o.latencyMs ?? 840;
  const requestId = `req_${(++requestSeq).toString().padStart(6, "0")}_${o.tsMs}`;
  const connId = `c${requestSeq}`;
  const endpoint = provider === "openai" ? "https://api.openai.com/v1/chat/completions" : "https://api.anthropic.com/v1/messages";
  const system = o.system ?? "You are a careful coding assistant.";
  const prompt = o.prompt ?? "List the files in the project and summarise them.";
  const answer = o.answer ?? "The project has three files: main.py, util.py and README.md.";
  const toolCalls = o.toolCalls ?? [];

  const request = envelope("ai.request", o.tsMs, proc, mode, connId);
  request.data = {
    request_id: requestId,
    provider: { name: provider, endpoint },
    model: { id: model },
    auth: { type: "api_key", key_prefix: o.keyPrefix ?? (provider === "openai" ? "sk-proj-" : "sk-ant-a"), key_hash: o.keyHash ?? contentHash(`key-${provider}`) },
    request_type: "chat",
    streaming: o.streaming ?? true,
    messages: [message(mode, "system", system), message(mode, "user", prompt)],
    messages_count: 2,
    has_system_prompt: true,
    tools: (o.tools ?? toolCalls.map((t) => t.name)).map((name) => ({ name, type: "function" })),
    tools_count: (o.tools ?? toolCalls.map((t) => t.name)).length,
    parameters: { temperature: 0.2, max_tokens: 1024 },
  };

  const response = envelope("ai.response", o.tsMs + latency, proc, mode, connId);
  const inputTokens = o.inputTokens ?? 1200;
  const outputTokens = o.outputTokens ?? 180;
  const cost = o.costUsd ?? Math.round((inputTokens * 0.15 + outputTokens * 0.6)) / 1e6;
  response.data = {
    request_id: requestId,
    provider_request_id: provider === "openai" ? `chatcmpl-${requestSeq}` : `msg_${requestSeq}`,
    provider: { name: provider, endpoint },
    model: { id: o.responseModel ?? model },
    status_code: o.statusCode ?? (success ? 200 : 429),
    success,
    ...(success
      ? {
          choices: [{ index: 0, message: message(mode, "assistant", answer), finish_reason: toolCalls.length ? "tool_calls" : "stop" }],
          finish_reason: toolCalls.length ? "tool_calls" : "stop",
          tool_calls: toolCalls.map((t, i) => ({
            id: `call_${requestSeq}_${i}`,
            name: t.name,
            type: "function",
            ...(mode === "full" ? { arguments: t.arguments } : mode === "redacted" ? { arguments: content(mode, t.arguments) } : {}),
            arguments_hash: contentHash(t.arguments),
          })),
          tool_calls_count: toolCalls.length,
          usage: {
            prompt_tokens: inputTokens,
            completion_tokens: outputTokens,
            total_tokens: inputTokens + outputTokens,
            total_cost_usd: cost,
          },
        }
      : { error: { type: "rate_limit_error", message: o.errorMessage ?? "Rate limit reached", code: "rate_limit_exceeded" }, finish_reason: "error" }),
    latency_ms: latency,
    ...(o.ttftMs !== undefined || success ? { time_to_first_token_ms: o.ttftMs ?? Math.round(latency / 4) } : {}),
  };
  if (o.thinking) {
    response.attrs = { ...(response.attrs as object), thinking: content(mode, o.thinking) ?? { length: o.thinking.length } };
  }
  response.related_events = [{ event_id: request.event_id, relationship: "parent" }];

  const tools = toolCalls.map((t, i) => {
    const ev = envelope("agent.tool_call", o.tsMs + latency + 1, proc, mode, connId);
    ev.data = {
      request_id: requestId,
      tool: { name: t.name, type: "other" },
      call_id: `call_${requestSeq}_${i}`,
      triggered_by: "llm_decision",
      ...(mode === "full" ? { arguments: safeJson(t.arguments) } : {}),
    };
    ev.related_events = [{ event_id: response.event_id, relationship: "caused_by" }];
    return ev;
  });
  return [request, response, ...tools];
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A spread of calls over `hours` ending at `endMs`: several providers, models, processes, modes, errors. */
export function sampleTraffic(endMs: number, count = 24, hours = 24): FixtureEvent[] {
  const out: FixtureEvent[] = [];
  const procs = [PROCESSES.python, PROCESSES.node, PROCESSES.cursor];
  for (let i = 0; i < count; i++) {
    const provider = i % 3 === 2 ? "anthropic" : "openai";
    out.push(
      ...aiExchange({
        tsMs: endMs - Math.round(((count - i) / count) * hours * 3_600_000),
        provider,
        model: provider === "anthropic" ? "claude-sonnet-4-5" : i % 2 ? "gpt-4o" : "gpt-4o-mini",
        process: procs[i % procs.length],
        mode: i % 4 === 3 ? "redacted" : "full",
        success: i % 7 !== 6,
        inputTokens: 500 + i * 37,
        outputTokens: 60 + i * 11,
        toolCalls: i % 5 === 0 ? [{ name: "read_file", arguments: '{"path":"src/main.py"}' }] : undefined,
        thinking: provider === "anthropic" ? "The user wants a summary; read the files first." : undefined,
      }),
    );
  }
  return out;
}

/**
 * A non-AI OISP event (network.connect, process.exec, file.write...) shaped like the spec's examples:
 * `data` as given, metadata-only unless said otherwise, and the process's parent named when given.
 */
export function systemEvent(
  eventType: string,
  tsMs: number,
  proc: FixtureProcess & { parentName?: string },
  data: Record<string, unknown>,
  completeness: CaptureMode = "metadata_only",
): FixtureEvent {
  const ev = envelope(eventType, tsMs, proc, completeness, `sys${++requestSeq}`);
  if (proc.parentName && proc.ppid !== undefined) (ev.process as Record<string, unknown>).parent = { pid: proc.ppid, name: proc.parentName };
  ev.source = { collector: "oisp-sensor", collector_version: "0.1.0", capture_method: "ebpf_tracepoint" };
  ev.data = data;
  return ev;
}
