// OISP events → OpenTelemetry GenAI semantic conventions (semconv 1.45, gen_ai.* "development" status):
// one client span per AI call, one execute_tool child per tool call the model asked for, and the
// attributes of the gen_ai.client.* metrics. Pure: no SDK, no I/O, so the mapping is tested on its own.
// An AI call is an ai.request + ai.response pair joined on data.request_id within a bounded window;
// a response whose request was not seen still gives a span (timed from its latency).
import type { OispEvent } from "../events/index.ts";
import { arr, count, endpointOf, modelIdOf, nonEmptyStr, num, obj, requestIdOf, usageOf, type JsonObject } from "../events/read.ts";
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
  /** The ai.request event this call was joined with, when seen. */
  request?: Obj;
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
  /** The event itself: a batch spooled for a later run carries it along (see requestsMissingFrom). */
  event: Obj;
  tsMs: number;
  model?: string;
  operation?: string;
  streaming?: boolean;
  parameters?: Record<string, unknown>;
  messages?: unknown[];
}

type Obj = JsonObject;

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
      const id = requestIdOf(data);
      if (!id) return undefined;
      if (this.requests.size >= (this.opts.maxPending ?? 10_000)) this.requests.delete(this.requests.keys().next().value as string);
      this.requests.set(id, {
        event: e,
        tsMs,
        model: modelIdOf(data),
        operation: nonEmptyStr(data.request_type),
        streaming: typeof data.streaming === "boolean" ? data.streaming : undefined,
        parameters: obj(data.parameters),
        messages: Array.isArray(data.messages) ? data.messages : undefined,
      });
      return undefined;
    }
    if (e.event_type !== "ai.response") return undefined;
    const id = requestIdOf(data);
    const req = id ? this.requests.get(id) : undefined;
    if (id) this.requests.delete(id);
    const call = this.call(e, data, tsMs, req);
    return req ? { ...call, request: req.event } : call;
  }

  /** The ai.request seen for `requestId` and not yet joined with its response. */
  pendingRequest(requestId: string): Obj | undefined {
    return this.requests.get(requestId)?.event;
  }

  /** One call's span and metric from its ai.response (and its ai.request, when seen), step by step. */
  private call(e: Obj, data: Obj, endMs: number, req: RequestFacts | undefined): GenAiCall {
    const attrs = obj(e.attrs) ?? {};
    const provider = providerOf(e);
    const operation = OPERATIONS[req?.operation ?? ""] ?? "chat";
    const responseModel = modelIdOf(data);
    const requestModel = req?.model ?? responseModel;
    const startMs = Math.min(startOf(req, data, endMs), endMs);
    const common = commonAttributes(operation, provider, requestModel, endpointOf(data));
    const finish = nonEmptyStr(attrs.raw_finish_reason) ?? nonEmptyStr(data.finish_reason);
    const tokens = tokenCounts(data, attrs);
    const error = errorOf(data);
    const toolCalls = arr(data.tool_calls).map(obj).filter((t): t is Obj => t !== undefined);
    const a: Attrs = {
      ...common,
      ...responseAttributes(data, responseModel, finish),
      ...usageAttributes(data, tokens),
      ...requestAttributes(req),
      ...timingAttributes(data),
      ...originAttributes(e, data),
      ...(error && { "error.type": error.type }),
      ...(this.opts.includeContent && contentAttributes(req, data, toolCalls, finish)),
    };
    const metricAttrs: Attrs = { ...common, ...(responseModel && { "gen_ai.response.model": responseModel }), ...(error && { "error.type": error.type }) };
    return {
      name: requestModel ? `${operation} ${requestModel}` : operation,
      startMs,
      endMs,
      attributes: a,
      ...(error && { error }),
      tools: toolCalls.map((tc) => toolSpan(tc, provider, this.opts.includeContent)),
      metric: {
        attributes: metricAttrs,
        ...(tokens.input !== undefined && { inputTokens: tokens.input }),
        ...(tokens.output !== undefined && { outputTokens: tokens.output }),
        durationS: Math.max(0, endMs - startMs) / 1000,
      },
    };
  }
}

/**
 * The ai.request events that the responses in `events` were (or will be) joined with but that `events`
 * lacks, found by `lookup`: a batch written to the spool for a later run must bring them, since the
 * correlator of that run never saw the batch, already sent, that held them.
 */
export function requestsMissingFrom(events: readonly (OispEvent | Obj)[], lookup: (requestId: string) => Obj | undefined): Obj[] {
  const present = new Set<string>();
  const wanted: string[] = [];
  for (const ev of events) {
    const e = ev as Obj;
    const id = requestIdOf(obj(e.data) ?? {});
    if (!id) continue;
    if (e.event_type === "ai.request") present.add(id);
    else if (e.event_type === "ai.response" && !present.has(id)) wanted.push(id);
  }
  const found = new Map<string, Obj>();
  for (const id of wanted) {
    const req = present.has(id) ? undefined : lookup(id);
    if (req) found.set(id, req);
  }
  return [...found.values()];
}

/** gen_ai.provider.name: the semconv well-known value, else OISP's own name. */
function providerOf(e: Obj): string {
  const name = eventProviderLabel(e) ?? "other";
  return PROVIDER_NAMES[name] ?? name;
}

/** When the call started: its request's time, else the response's time minus its latency. */
function startOf(req: RequestFacts | undefined, data: Obj, endMs: number): number {
  const latency = num(data.latency_ms);
  return req?.tsMs ?? (latency !== undefined ? endMs - latency : endMs);
}

/** What both the span and the metrics carry. */
function commonAttributes(operation: string, provider: string, requestModel: string | undefined, endpoint: string | undefined): Attrs {
  const server = serverOf(endpoint);
  return {
    "gen_ai.operation.name": operation,
    "gen_ai.provider.name": provider,
    ...(requestModel && { "gen_ai.request.model": requestModel }),
    ...(server && { "server.address": server.host }),
    ...(server?.port !== undefined && { "server.port": server.port }),
  };
}

function responseAttributes(data: Obj, responseModel: string | undefined, finish: string | undefined): Attrs {
  const a: Attrs = {};
  if (responseModel) a["gen_ai.response.model"] = responseModel;
  const responseId = nonEmptyStr(data.provider_request_id);
  if (responseId) a["gen_ai.response.id"] = responseId;
  if (finish) a["gen_ai.response.finish_reasons"] = [finish];
  return a;
}

interface TokenCounts {
  input?: number;
  output?: number;
  cacheRead?: number;
  cacheWrite?: number;
  reasoning?: number;
}

function tokenCounts(data: Obj, attrs: Obj): TokenCounts {
  const usage = usageOf(data);
  return {
    // semconv: input_tokens SHOULD include cached tokens, as OISP's own definition does (src/events/input-tokens.ts).
    input: eventInputTokens(usage, attrs),
    output: count(usage.completion_tokens),
    cacheRead: count(usage.cached_tokens),
    cacheWrite: count(attrs.cache_write_tokens),
    reasoning: count(usage.reasoning_tokens),
  };
}

function usageAttributes(data: Obj, t: TokenCounts): Attrs {
  const a: Attrs = {};
  if (t.input !== undefined) a["gen_ai.usage.input_tokens"] = t.input;
  if (t.output !== undefined) a["gen_ai.usage.output_tokens"] = t.output;
  if (t.cacheRead !== undefined) a["gen_ai.usage.cache_read.input_tokens"] = t.cacheRead;
  if (t.cacheWrite !== undefined) a["gen_ai.usage.cache_creation.input_tokens"] = t.cacheWrite;
  if (t.reasoning !== undefined) a["gen_ai.usage.reasoning.output_tokens"] = t.reasoning;
  const cost = num(usageOf(data).total_cost_usd);
  if (cost !== undefined) a["oisp.usage.total_cost_usd"] = cost;
  return a;
}

const REQUEST_PARAMETERS = [
  ["temperature", "gen_ai.request.temperature"],
  ["top_p", "gen_ai.request.top_p"],
  ["max_tokens", "gen_ai.request.max_tokens"],
  ["frequency_penalty", "gen_ai.request.frequency_penalty"],
  ["presence_penalty", "gen_ai.request.presence_penalty"],
] as const;

/** What the request asked for (only known when its ai.request was seen). */
function requestAttributes(req: RequestFacts | undefined): Attrs {
  const a: Attrs = {};
  const p = req?.parameters ?? {};
  for (const [k, attr] of REQUEST_PARAMETERS) {
    const v = num(p[k]);
    if (v !== undefined) a[attr] = v;
  }
  if (Array.isArray(p.stop) && p.stop.every((s) => typeof s === "string")) a["gen_ai.request.stop_sequences"] = p.stop as string[];
  if (req?.streaming !== undefined) a["gen_ai.request.stream"] = req.streaming;
  return a;
}

function timingAttributes(data: Obj): Attrs {
  const ttft = num(data.time_to_first_token_ms);
  return ttft !== undefined ? { "gen_ai.response.time_to_first_chunk": ttft / 1000 } : {};
}

/** Where the call came from: the sensor sees every process, so these are per span, not the resource. */
function originAttributes(e: Obj, data: Obj): Attrs {
  const a: Attrs = {};
  const proc = obj(e.process);
  const pid = count(proc?.pid);
  if (pid !== undefined) a["process.pid"] = pid;
  const name = nonEmptyStr(proc?.name);
  if (name) a["process.executable.name"] = name;
  a["oisp.event_id"] = nonEmptyStr(e.event_id) ?? "";
  const requestId = requestIdOf(data);
  if (requestId) a["oisp.request_id"] = requestId;
  return a;
}

/** error.type and message when the call failed (success false or an HTTP error status). */
function errorOf(data: Obj): { type: string; message?: string } | undefined {
  const status = count(data.status_code);
  if (data.success !== false && (status ?? 0) < 400) return undefined;
  const err = obj(data.error);
  return { type: nonEmptyStr(err?.type) ?? nonEmptyStr(err?.code) ?? (status ? String(data.status_code) : "_OTHER"), message: nonEmptyStr(err?.message) };
}

/** Prompt and answer content, only with includeContent (opt-in: it leaves the machine). */
function contentAttributes(req: RequestFacts | undefined, data: Obj, toolCalls: Obj[], finish: string | undefined): Attrs {
  const a: Attrs = {};
  const input = inputMessages(req?.messages);
  if (input.system.length) a["gen_ai.system_instructions"] = JSON.stringify(input.system);
  if (input.messages.length) a["gen_ai.input.messages"] = JSON.stringify(input.messages);
  const output = outputMessages(data, toolCalls, finish);
  if (output.length) a["gen_ai.output.messages"] = JSON.stringify(output);
  return a;
}

/** The execute_tool child span of one tool call the model asked for. */
function toolSpan(tc: Obj, provider: string, includeContent: boolean): GenAiToolSpan {
  const name = nonEmptyStr(tc.name) ?? "unknown";
  const t: Attrs = { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.type": "function", "gen_ai.provider.name": provider };
  const id = nonEmptyStr(tc.id);
  if (id) t["gen_ai.tool.call.id"] = id;
  if (includeContent && typeof tc.arguments === "string") t["gen_ai.tool.call.arguments"] = tc.arguments;
  return { name: `execute_tool ${name}`, attributes: t };
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
    else out.push({ role: msg.role, parts: [part], ...(nonEmptyStr(msg.tool_call_id) && { id: msg.tool_call_id }) });
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
    parts.push({ type: "tool_call", ...(nonEmptyStr(tc.id) && { id: tc.id }), name: nonEmptyStr(tc.name) ?? "unknown", arguments: safeJson(tc.arguments) });
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
