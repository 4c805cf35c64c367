// OISP events → OpenTelemetry GenAI semantic conventions (semconv 1.45, gen_ai.* "development" status):
// one client span per AI call, one execute_tool child per tool call the model asked for, and the
// attributes of the gen_ai.client.* metrics. Pure: no SDK, no I/O, so the mapping is tested on its own.
// An AI call is an ai.request + ai.response pair joined on data.request_id within a bounded window;
// a response whose request was not seen still gives a span (timed from its latency).
import type { OispEvent } from "../events/index.ts";
import { eventInputTokens } from "../events/input-tokens.ts";
import { eventProviderLabel } from "../spec/provider-label.ts";

export type AttrValue = string | number | boolean | string[];
export type Attrs = Record<string, AttrValue>;

export interface GenAiToolSpan {
  name: string;
  attributes: Attrs;
}

export interface GenAiCall {
  /** "{operation} {model}", e.g. "chat gpt-4o". */
  name: string;
  startMs: number;
  endMs: number;
  attributes: Attrs;
  /** error.type when the call failed (span status ERROR). */
  error?: { type: string; message?: string };
  tools: GenAiToolSpan[];
  /** For gen_ai.client.token.usage and gen_ai.client.operation.duration. */
  metric: { attributes: Attrs; inputTokens?: number; outputTokens?: number; durationS: number };
}

/** OISP provider names → gen_ai.provider.name well-known values; others pass through as they are. */
const PROVIDER_NAMES: Record<string, string> = {
  openai: "openai",
  anthropic: "anthropic",
  google: "gcp.gemini",
  azure_openai: "azure.ai.openai",
  aws_bedrock: "aws.bedrock",
  cohere: "cohere",
  mistral: "mistral_ai",
  groq: "groq",
  deepseek: "deepseek",
  xai: "x_ai",
  perplexity: "perplexity",
};

const OPERATIONS: Record<string, string> = { chat: "chat", completion: "text_completion", embedding: "embeddings" };

interface RequestFacts {
  tsMs: number;
  model?: string;
  operation?: string;
  streaming?: boolean;
  parameters?: Record<string, unknown>;
  messages?: unknown[];
}

type Obj = Record<string, unknown>;

export class GenAiCorrelator {
  private readonly requests = new Map<string, RequestFacts>();

  constructor(
    private readonly opts: { includeContent: boolean; maxPending?: number } = { includeContent: false },
  ) {}

  /** Feeds one event; returns the finished call when it is an ai.response. */
  add(event: OispEvent | Obj): GenAiCall | undefined {
    const e = event as Obj;
    const data = obj(e.data) ?? {};
    const tsMs = typeof e.ts === "string" ? Date.parse(e.ts) : NaN;
    if (!Number.isFinite(tsMs)) return undefined;
    if (e.event_type === "ai.request") {
      const id = str(data.request_id);
      if (!id) return undefined;
      if (this.requests.size >= (this.opts.maxPending ?? 10_000)) this.requests.delete(this.requests.keys().next().value as string);
      this.requests.set(id, {
        tsMs,
        model: str(obj(data.model)?.id),
        operation: str(data.request_type),
        streaming: typeof data.streaming === "boolean" ? data.streaming : undefined,
        parameters: obj(data.parameters),
        messages: Array.isArray(data.messages) ? data.messages : undefined,
      });
      return undefined;
    }
    if (e.event_type !== "ai.response") return undefined;
    const id = str(data.request_id);
    const req = id ? this.requests.get(id) : undefined;
    if (id) this.requests.delete(id);
    return this.call(e, data, tsMs, req);
  }

  private call(e: Obj, data: Obj, endMs: number, req: RequestFacts | undefined): GenAiCall {
    const attrs = obj(e.attrs) ?? {};
    const providerName = eventProviderLabel(e) ?? "other";
    const provider = PROVIDER_NAMES[providerName] ?? providerName;
    const operation = OPERATIONS[req?.operation ?? ""] ?? "chat";
    const responseModel = str(obj(data.model)?.id);
    const requestModel = req?.model ?? responseModel;
    const latency = num(data.latency_ms);
    const startMs = req?.tsMs ?? (latency !== undefined ? endMs - latency : endMs);
    const server = serverOf(str(obj(data.provider)?.endpoint));

    const common: Attrs = {
      "gen_ai.operation.name": operation,
      "gen_ai.provider.name": provider,
      ...(requestModel && { "gen_ai.request.model": requestModel }),
      ...(server && { "server.address": server.host }),
      ...(server?.port !== undefined && { "server.port": server.port }),
    };
    const a: Attrs = { ...common };
    if (responseModel) a["gen_ai.response.model"] = responseModel;
    const responseId = str(data.provider_request_id);
    if (responseId) a["gen_ai.response.id"] = responseId;
    const finish = str(attrs.raw_finish_reason) ?? str(data.finish_reason);
    if (finish) a["gen_ai.response.finish_reasons"] = [finish];

    const usage = obj(data.usage) ?? {};
    const cacheRead = int(usage.cached_tokens);
    const cacheWrite = int(attrs.cache_write_tokens);
    // semconv: input_tokens SHOULD include cached tokens, as OISP's own definition does (src/events/input-tokens.ts).
    const inputTokens = eventInputTokens(usage, attrs);
    const outputTokens = int(usage.completion_tokens);
    if (inputTokens !== undefined) a["gen_ai.usage.input_tokens"] = inputTokens;
    if (outputTokens !== undefined) a["gen_ai.usage.output_tokens"] = outputTokens;
    if (cacheRead !== undefined) a["gen_ai.usage.cache_read.input_tokens"] = cacheRead;
    if (cacheWrite !== undefined) a["gen_ai.usage.cache_creation.input_tokens"] = cacheWrite;
    const reasoning = int(usage.reasoning_tokens);
    if (reasoning !== undefined) a["gen_ai.usage.reasoning.output_tokens"] = reasoning;
    const cost = num(usage.total_cost_usd);
    if (cost !== undefined) a["oisp.usage.total_cost_usd"] = cost;

    const p = req?.parameters ?? {};
    for (const [k, attr] of [
      ["temperature", "gen_ai.request.temperature"],
      ["top_p", "gen_ai.request.top_p"],
      ["max_tokens", "gen_ai.request.max_tokens"],
      ["frequency_penalty", "gen_ai.request.frequency_penalty"],
      ["presence_penalty", "gen_ai.request.presence_penalty"],
    ] as const) {
      const v = num(p[k]);
      if (v !== undefined) a[attr] = v;
    }
    if (Array.isArray(p.stop) && p.stop.every((s) => typeof s === "string")) a["gen_ai.request.stop_sequences"] = p.stop as string[];
    if (req?.streaming !== undefined) a["gen_ai.request.stream"] = req.streaming;
    const ttft = num(data.time_to_first_token_ms);
    if (ttft !== undefined) a["gen_ai.response.time_to_first_chunk"] = ttft / 1000;

    // Where the call came from: the sensor sees every process, so these are per span, not the resource.
    const proc = obj(e.process);
    if (int(proc?.pid) !== undefined) a["process.pid"] = int(proc?.pid)!;
    if (str(proc?.name)) a["process.executable.name"] = str(proc?.name)!;
    a["oisp.event_id"] = str(e.event_id) ?? "";
    if (str(data.request_id)) a["oisp.request_id"] = str(data.request_id)!;

    const failed = data.success === false || (int(data.status_code) ?? 0) >= 400;
    const err = obj(data.error);
    const error = failed ? { type: str(err?.type) ?? str(err?.code) ?? (int(data.status_code) ? String(data.status_code) : "_OTHER"), message: str(err?.message) } : undefined;
    if (error) a["error.type"] = error.type;

    const toolCalls = Array.isArray(data.tool_calls) ? data.tool_calls.map(obj).filter((t): t is Obj => t !== undefined) : [];
    if (this.opts.includeContent) {
      const input = inputMessages(req?.messages);
      if (input.system.length) a["gen_ai.system_instructions"] = JSON.stringify(input.system);
      if (input.messages.length) a["gen_ai.input.messages"] = JSON.stringify(input.messages);
      const output = outputMessages(data, toolCalls, finish);
      if (output.length) a["gen_ai.output.messages"] = JSON.stringify(output);
    }

    const tools = toolCalls.map((tc): GenAiToolSpan => {
      const name = str(tc.name) ?? "unknown";
      const t: Attrs = { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.type": "function", "gen_ai.provider.name": provider };
      if (str(tc.id)) t["gen_ai.tool.call.id"] = str(tc.id)!;
      if (this.opts.includeContent && typeof tc.arguments === "string") t["gen_ai.tool.call.arguments"] = tc.arguments;
      return { name: `execute_tool ${name}`, attributes: t };
    });

    const metricAttrs: Attrs = { ...common, ...(responseModel && { "gen_ai.response.model": responseModel }), ...(error && { "error.type": error.type }) };
    return {
      name: requestModel ? `${operation} ${requestModel}` : operation,
      startMs: Math.min(startMs, endMs),
      endMs,
      attributes: a,
      ...(error && { error }),
      tools,
      metric: {
        attributes: metricAttrs,
        ...(inputTokens !== undefined && { inputTokens }),
        ...(outputTokens !== undefined && { outputTokens }),
        durationS: Math.max(0, endMs - Math.min(startMs, endMs)) / 1000,
      },
    };
  }
}

/** semconv input messages: [{ role, parts: [{ type: "text", content }] }]; system text goes to system_instructions. */
function inputMessages(messages: unknown[] | undefined): { system: Obj[]; messages: Obj[] } {
  const system: Obj[] = [];
  const out: Obj[] = [];
  for (const m of messages ?? []) {
    const msg = obj(m);
    if (!msg || typeof msg.content !== "string") continue; // redacted or metadata-only: no content to send
    const part = { type: "text", content: msg.content };
    if (msg.role === "system") system.push(part);
    else out.push({ role: msg.role, parts: [part], ...(str(msg.tool_call_id) && { id: msg.tool_call_id }) });
  }
  return { system, messages: out };
}

function outputMessages(data: Obj, toolCalls: Obj[], finish: string | undefined): Obj[] {
  const parts: Obj[] = [];
  const choice = obj((Array.isArray(data.choices) ? data.choices : [])[0]);
  const content = obj(choice?.message)?.content;
  if (typeof content === "string") parts.push({ type: "text", content });
  for (const tc of toolCalls) {
    if (typeof tc.arguments !== "string") continue;
    parts.push({ type: "tool_call", ...(str(tc.id) && { id: tc.id }), name: str(tc.name) ?? "unknown", arguments: safeJson(tc.arguments) });
  }
  return parts.length ? [{ role: "assistant", parts, finish_reason: finish ?? "stop" }] : [];
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function serverOf(endpoint: string | undefined): { host: string; port?: number } | undefined {
  if (!endpoint) return undefined;
  try {
    const u = new URL(endpoint);
    return { host: u.hostname, ...(u.port ? { port: Number(u.port) } : { port: u.protocol === "http:" ? 80 : 443 }) };
  } catch {
    return undefined;
  }
}

function obj(v: unknown): Obj | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === "string" && v.length > 0 ? v : undefined;
}
function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}
function int(v: unknown): number | undefined {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}
