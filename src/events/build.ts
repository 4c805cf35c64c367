// Turns what the decoders saw into OISP events. Pure: same inputs → same events (ids included),
// no clock, no I/O. Content is raw here; redactEvent decides what leaves the sensor.
import type { ConnMeta, ProcessInfo } from "../tap/types.ts";
import type { AiAuth, AiMessage, ParsedAiRequest, ParsedAiResponse } from "../decode/providers/types.ts";
import type { HttpExchange } from "../decode/types.ts";
import { computeCost, costAttrs, usageCost } from "./cost.ts";
import { contentHash } from "./hash.ts";
import type { HostInfo } from "./host.ts";
import { stableEventId } from "./ids.ts";
import { totalInputTokens } from "./input-tokens.ts";
import type {
  AgentToolCallEvent,
  AiRequestEvent,
  AiResponseEvent,
  Confidence,
  NetworkConnectEvent,
  OispEvent,
  OispProviderName,
} from "./schema.ts";

export interface ConnContext {
  meta: ConnMeta;
  collectorVersion: string;
  host: HostInfo;
}

type Envelope = Omit<AiRequestEvent, "event_type" | "data">;
type Message = NonNullable<AiRequestEvent["data"]["messages"]>[number];

// ---------------------------------------------------------------------------------------------
// network.connect

export function buildNetworkConnect(ctx: ConnContext): NetworkConnectEvent {
  const { meta } = ctx;
  const data: NetworkConnectEvent["data"] = {
    dest: endpoint(meta.server.ip, meta.server.port, meta.host),
    src: endpoint(meta.client.ip, meta.client.port),
    protocol: "tcp",
    success: meta.upstreamError === undefined,
  };
  if (meta.upstreamError !== undefined) data.error = meta.upstreamError;
  if (isFiniteNumber(meta.upstreamConnectMs)) data.latency_ms = round3(Math.max(0, meta.upstreamConnectMs));
  if (meta.sni || meta.alpn) data.tls = { ...(meta.sni && { sni: meta.sni }), ...(meta.alpn && { alpn: meta.alpn }) };

  const event: NetworkConnectEvent = {
    ...envelope(ctx, stableEventId(meta.startedAt, `${meta.connId}/connect`), formatTimestamp(meta.startedAt), {
      level: "high",
      completeness: "metadata_only",
      ...attribution(ctx),
      content_source: "none",
    }),
    event_type: "network.connect",
    data,
  };
  event.attrs = { ...event.attrs, mode: meta.mode, ...(meta.passthroughCode && { passthrough_code: meta.passthroughCode }), ...(meta.passthroughReason && { passthrough_reason: meta.passthroughReason }) };
  return event;
}

// ---------------------------------------------------------------------------------------------
// ai.request

export function buildAiRequest(ctx: ConnContext, ex: HttpExchange, req: ParsedAiRequest): AiRequestEvent {
  const eventId = stableEventId(ex.request.startTs, `${ex.connId}/${ex.seq}/req`);
  const messages = requestMessages(req);
  const systemText = req.system ?? joinSystem(req.messages);
  const imageCount = messages.reduce((n, m) => n + (m.image_count ?? 0), 0);

  const data: AiRequestEvent["data"] = {
    request_id: eventId,
    provider: { name: oispProviderName(req.provider), endpoint: req.endpoint },
    ...(req.model !== undefined && { model: { id: req.model } }),
    auth: authInfo(req.auth),
    request_type: req.requestType,
    streaming: req.streaming,
    messages,
    messages_count: messages.length,
    has_system_prompt: systemText !== undefined,
    ...(systemText !== undefined && { system_prompt_hash: contentHash(systemText) }),
    tools: req.tools.map((t) => ({ name: t.name, type: t.type, ...(t.description !== undefined && { description: t.description }) })),
    tools_count: req.tools.length,
    ...(req.toolChoice !== undefined && { tool_choice: req.toolChoice }),
    parameters: parameters(req.parameters),
    has_images: imageCount > 0,
    ...(imageCount > 0 && { image_count: imageCount }),
  };

  const reasons = ["mitm_capture", "payload_parsed"];
  if (ex.request.bodyTruncated) reasons.push("request_body_truncated");
  if (ex.request.decodeError) reasons.push("request_body_not_decoded");
  const partial = ex.request.bodyTruncated || ex.request.decodeError !== undefined;

  const event: AiRequestEvent = {
    ...envelope(ctx, eventId, formatTimestamp(ex.request.startTs), contentConfidence(ctx, partial, reasons)),
    event_type: "ai.request",
    data,
  };
  event.attrs = {
    ...event.attrs,
    exchange_seq: ex.seq,
    provider_id: req.provider,
    api_format: req.apiFormat,
    ...(req.inputCount !== undefined && { input_count: req.inputCount }),
  };
  return event;
}

/** The system prompt travels as the first message (Anthropic sends it beside the messages). */
function requestMessages(req: ParsedAiRequest): Message[] {
  const out: Message[] = [];
  if (req.system !== undefined && !req.messages.some((m) => m.role === "system")) out.push(message({ role: "system", content: req.system }));
  for (const m of req.messages) out.push(message(m));
  return out;
}

function message(m: AiMessage): Message {
  const out: Message = { role: m.role };
  if (m.content !== undefined) {
    out.content = m.content;
    out.content_length = m.content.length;
  }
  if (m.toolCallId !== undefined) out.tool_call_id = m.toolCallId;
  if (m.name !== undefined) out.name = m.name;
  if (m.imageCount !== undefined && m.imageCount > 0) {
    out.has_images = true;
    out.image_count = m.imageCount;
  }
  return out;
}

function joinSystem(messages: AiMessage[]): string | undefined {
  const parts = messages.filter((m) => m.role === "system").map((m) => m.content ?? "");
  return parts.length > 0 ? parts.join("\n") : undefined;
}

function parameters(p: ParsedAiRequest["parameters"]): NonNullable<AiRequestEvent["data"]["parameters"]> {
  const out: NonNullable<AiRequestEvent["data"]["parameters"]> = {};
  for (const key of ["temperature", "top_p", "frequency_penalty", "presence_penalty"] as const) {
    if (isFiniteNumber(p[key])) out[key] = p[key];
  }
  if (Number.isSafeInteger(p.max_tokens)) out.max_tokens = p.max_tokens;
  if (Array.isArray(p.stop)) out.stop = p.stop.filter((s) => typeof s === "string");
  return out;
}

/** Only the type, an at-most-8-character prefix and the fingerprint ever leave the parser. */
export function authInfo(auth: AiAuth | undefined): NonNullable<AiRequestEvent["data"]["auth"]> {
  const out: NonNullable<AiRequestEvent["data"]["auth"]> = { type: auth?.type ?? "unknown" };
  if (typeof auth?.keyPrefix === "string" && auth.keyPrefix) out.key_prefix = auth.keyPrefix.slice(0, 8);
  if (typeof auth?.keyHash === "string" && auth.keyHash) out.key_hash = auth.keyHash;
  return out;
}

// ---------------------------------------------------------------------------------------------
// ai.response

export function buildAiResponse(
  ctx: ConnContext,
  ex: HttpExchange,
  req: ParsedAiRequest,
  res: ParsedAiResponse,
  requestEvent: OispEvent,
): AiResponseEvent {
  const endTs = ex.response?.endTs ?? ex.request.endTs;
  const eventId = stableEventId(endTs, `${ex.connId}/${ex.seq}/res`);
  const toolCalls = res.toolCalls.map((tc) => ({
    ...(tc.id !== undefined && { id: tc.id }),
    name: tc.name,
    type: "function",
    arguments: tc.arguments,
    arguments_hash: contentHash(tc.arguments),
  }));

  const data: AiResponseEvent["data"] = {
    request_id: requestEvent.event_id,
    ...(res.providerRequestId !== undefined && { provider_request_id: res.providerRequestId }),
    provider: { name: oispProviderName(req.provider), endpoint: req.endpoint },
    ...((res.model ?? req.model) !== undefined && { model: { id: (res.model ?? req.model)! } }),
    status_code: res.statusCode,
    success: res.success,
    ...(res.error && { error: definedOnly(res.error) }),
    tool_calls: toolCalls,
    tool_calls_count: toolCalls.length,
    latency_ms: nonNegativeInt(endTs - ex.request.startTs),
    ...(res.finishReason !== undefined && { finish_reason: res.finishReason }),
  };
  if (res.content !== undefined || toolCalls.length > 0 || res.finishReason !== undefined) {
    const choiceMessage: Message = { role: "assistant" };
    if (res.content !== undefined) {
      choiceMessage.content = res.content;
      choiceMessage.content_length = res.content.length;
    }
    data.choices = [{ index: 0, message: choiceMessage, ...(res.finishReason !== undefined && { finish_reason: res.finishReason }) }];
  }
  // Input tokens are all prompt tokens, cache reads and writes included (src/events/input-tokens.ts).
  const inputTokens = res.usage && inputTokensOf(res.usage, req.apiFormat);
  if (res.usage) data.usage = usage(res.usage, inputTokens);
  // Priced from embedded tables at the call's own time: still pure. Unknown model → no cost fields.
  const cost = res.usage && computeCost({ provider: req.provider, apiFormat: req.apiFormat, model: res.model ?? req.model, usage: res.usage, atMs: ex.request.startTs });
  if (cost) data.usage = { ...data.usage, ...usageCost(cost) };
  if (req.streaming && isFiniteNumber(res.firstTokenTs)) data.time_to_first_token_ms = nonNegativeInt(res.firstTokenTs - ex.request.endTs);

  const reasons = ["mitm_capture", "payload_parsed"];
  if (req.streaming) reasons.push("streaming_reassembled");
  if (res.usage) reasons.push("usage_from_api");
  const gaps = responseGaps(ex, res);
  reasons.push(...gaps);

  const event: AiResponseEvent = {
    ...envelope(ctx, eventId, formatTimestamp(endTs), contentConfidence(ctx, gaps.length > 0, reasons)),
    event_type: "ai.response",
    data,
    related_events: [{ event_id: requestEvent.event_id, relationship: "caused_by" }],
  };
  event.attrs = {
    ...event.attrs,
    exchange_seq: ex.seq,
    provider_id: req.provider,
    api_format: req.apiFormat,
    // OISP has no field for reasoning text or the provider's own stop reason.
    ...(res.thinking !== undefined && { thinking: res.thinking }),
    ...(res.rawFinishReason !== undefined && { raw_finish_reason: res.rawFinishReason }),
    ...(res.usage?.cacheWriteTokens !== undefined && { cache_write_tokens: res.usage.cacheWriteTokens }),
    ...(inputTokens !== undefined && inputTokens !== res.usage?.promptTokens && { prompt_tokens_raw: res.usage?.promptTokens }),
    ...(res.dimensions !== undefined && { dimensions: res.dimensions }),
    ...(cost && costAttrs(cost)),
  };
  return event;
}

/** Why the response we saw may not be the whole response. */
function responseGaps(ex: HttpExchange, res: ParsedAiResponse): string[] {
  const gaps: string[] = [];
  if (!ex.response) gaps.push("no_response");
  else {
    if (!ex.response.complete) gaps.push("connection_closed_early");
    if (ex.response.bodyTruncated) gaps.push("response_body_truncated");
    if (ex.response.decodeError) gaps.push("response_body_not_decoded");
  }
  if (res.incomplete) gaps.push("stream_incomplete");
  return [...new Set(gaps)];
}

/** The provider's prompt count with cache reads/writes added where it leaves them out; undefined without one. */
function inputTokensOf(u: NonNullable<ParsedAiResponse["usage"]>, apiFormat: string | undefined): number | undefined {
  if (!Number.isSafeInteger(u.promptTokens)) return undefined;
  const n = (v: number | undefined) => (Number.isSafeInteger(v) && v! > 0 ? v! : 0);
  return totalInputTokens(u.promptTokens!, n(u.cachedTokens), n(u.cacheWriteTokens), apiFormat);
}

function usage(u: NonNullable<ParsedAiResponse["usage"]>, inputTokens: number | undefined): NonNullable<AiResponseEvent["data"]["usage"]> {
  const out: NonNullable<AiResponseEvent["data"]["usage"]> = {};
  const pairs = [
    ["prompt_tokens", inputTokens],
    ["completion_tokens", u.completionTokens],
    ["total_tokens", u.totalTokens],
    ["cached_tokens", u.cachedTokens],
    ["reasoning_tokens", u.reasoningTokens],
  ] as const;
  for (const [key, value] of pairs) if (Number.isSafeInteger(value)) out[key] = value;
  if (out.total_tokens === undefined && out.prompt_tokens !== undefined && out.completion_tokens !== undefined) {
    out.total_tokens = out.prompt_tokens + out.completion_tokens;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// agent.tool_call

/** One agent.tool_call per tool call the model made, caused by the response that carried it. */
export function buildToolCalls(ctx: ConnContext, res: ParsedAiResponse, responseEvent: OispEvent): AgentToolCallEvent[] {
  const tsMs = Date.parse(responseEvent.ts);
  return res.toolCalls.map((tc, i) => {
    const eventId = stableEventId(tsMs, `${responseEvent.event_id}/tool/${i}`);
    const event: AgentToolCallEvent = {
      ...envelope(ctx, eventId, responseEvent.ts, {
        level: "high",
        completeness: "full",
        reasons: ["llm_tool_call_observed"],
        ...attribution(ctx),
        content_source: contentSource(ctx),
        ai_detection_method: "known_endpoint",
      }),
      event_type: "agent.tool_call",
      // OISP's agent tool types are categories (file_read, shell...); a model's function is none we can tell.
      data: {
        tool: { name: tc.name, type: "other" },
        // Gemini's function calls carry no id: the event's own (stable) id stands in, and the linked
        // agent.tool_result uses the same value (src/events/tool-result.ts), so consumers can join them.
        call_id: tc.id ?? eventId,
        triggered_by: "llm_decision",
        arguments: argumentsObject(tc.arguments),
        arguments_hash: contentHash(tc.arguments),
      },
      related_events: [{ event_id: responseEvent.event_id, relationship: "caused_by" }],
    };
    event.attrs = { ...event.attrs, tool_call_index: i, ...requestIdOf(responseEvent), ...(tc.id === undefined && { call_id_generated: true }) };
    return event;
  });
}

/** agent.tool_call wants an object: the parsed JSON, or the text as `_raw` when it is not a JSON object. */
export function argumentsObject(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // not JSON (truncated stream, or a model that wrote prose): keep the text
  }
  return { _raw: text };
}

function requestIdOf(e: OispEvent): { request_id?: string } {
  const id = (e.data as { request_id?: unknown }).request_id;
  return typeof id === "string" ? { request_id: id } : {};
}

// ---------------------------------------------------------------------------------------------
// shared pieces

/** OISP's provider enum; bundle ids that name the same provider differently are mapped, the rest are "other". */
const OISP_PROVIDER_BY_BUNDLE_ID: Record<string, OispProviderName> = {
  openai: "openai",
  anthropic: "anthropic",
  google: "google",
  google_vertex: "google",
  azure_openai: "azure_openai",
  aws_bedrock: "aws_bedrock",
  cohere: "cohere",
  mistral: "mistral",
  groq: "groq",
  together: "together",
  togetherai: "together",
  fireworks: "fireworks",
  replicate: "replicate",
  huggingface: "huggingface",
  ollama: "ollama",
  lmstudio: "lmstudio",
  vllm: "vllm",
};

export function oispProviderName(bundleId: string): OispProviderName {
  return Object.hasOwn(OISP_PROVIDER_BY_BUNDLE_ID, bundleId) ? OISP_PROVIDER_BY_BUNDLE_ID[bundleId]! : "other";
}

export function envelope(ctx: ConnContext, eventId: string, ts: string, confidence: Confidence): Envelope {
  const { meta } = ctx;
  const out: Envelope = {
    oisp_version: "0.1",
    event_id: eventId,
    ts,
    host: { ...ctx.host },
    source: {
      collector: "oisp-sensor",
      collector_version: ctx.collectorVersion,
      ...captureSource(meta.captureMethod),
    },
    confidence,
    attrs: { conn_id: meta.connId },
  };
  if (meta.process) {
    out.process = processContext(meta.process);
    if (meta.process.user !== undefined || meta.process.uid !== undefined) {
      out.actor = {
        ...(meta.process.user !== undefined && { user: meta.process.user }),
        ...(isCount(meta.process.uid) && { uid: meta.process.uid }),
      };
    }
  }
  return out;
}

function processContext(p: ProcessInfo): NonNullable<Envelope["process"]> {
  const out: NonNullable<Envelope["process"]> = {};
  if (isCount(p.pid)) out.pid = p.pid;
  if (isCount(p.ppid)) out.ppid = p.ppid;
  if (p.exe !== undefined) out.exe = p.exe;
  if (p.name !== undefined) out.name = p.name;
  if (p.cmdline !== undefined) out.cmdline = p.cmdline;
  return out;
}

function captureSource(method: ConnMeta["captureMethod"]): Pick<Envelope["source"], "capture_method" | "capture_point"> {
  if (method === "ebpf_uprobe") return { capture_method: "ebpf_uprobe", capture_point: "tls_library_uprobe" };
  // A connection known only from its ClientHello, seen by a syscall tracepoint (src/capture/ebpf/proc-hello.ts).
  if (method === "ebpf_tracepoint") return { capture_method: "ebpf_tracepoint", capture_point: "sys_enter_tls_client_hello" };
  return { capture_method: "mitm_proxy", capture_point: method === "windivert" ? "windivert" : "http_connect_proxy" };
}

export function attribution(ctx: ConnContext): Pick<Confidence, "process_attribution"> {
  if (!ctx.meta.process) return { process_attribution: "unknown" };
  // eBPF: the probe ran in the process itself.
  if (ctx.meta.captureMethod === "ebpf_uprobe" || ctx.meta.captureMethod === "ebpf_tracepoint") return { process_attribution: "direct" };
  // On Linux the owning process is found through the socket's inode in /proc; elsewhere the OS names it.
  return { process_attribution: ctx.host.os === "linux" ? "socket_inode" : "direct" };
}

export function contentSource(ctx: ConnContext): Confidence["content_source"] {
  if (ctx.meta.captureMethod === "ebpf_uprobe") return "tls_boundary";
  return ctx.meta.mode === "plain" ? "plaintext_capture" : "mitm_decryption";
}

function contentConfidence(ctx: ConnContext, partial: boolean, reasons: string[]): Confidence {
  return {
    level: "high",
    completeness: partial ? "partial" : "full",
    reasons,
    ...attribution(ctx),
    content_source: contentSource(ctx),
    ai_detection_method: "known_endpoint",
  };
}

function endpoint(ip: string, port: number, domain?: string): NetworkConnectEvent["data"]["dest"] {
  return {
    ...(ip && { ip }),
    ...(Number.isInteger(port) && port >= 0 && port <= 65535 && { port }),
    ...(domain && { domain }),
  };
}

/** Epoch milliseconds (fractional) → "2025-12-22T14:30:16.345678Z". Bad input gives a clamped time, not an exception. */
export function formatTimestamp(tsMs: number): string {
  const ms = Number.isFinite(tsMs) ? Math.min(Math.max(tsMs, 0), MAX_RFC3339_MS) : 0;
  const wholeMs = Math.floor(ms);
  // round, not floor: 345.678 is stored as 345.67799..., and the capture clock has no finer truth anyway
  const micros = Math.min(999, Math.round((ms - wholeMs) * 1000));
  return `${new Date(wholeMs).toISOString().slice(0, 23)}${String(micros).padStart(3, "0")}Z`;
}

/** 9999-12-31T23:59:59.999Z: beyond it toISOString switches to 6-digit years. */
const MAX_RFC3339_MS = 253_402_300_799_999;

function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v === "string")) as T;
}

function nonNegativeInt(ms: number): number {
  return Number.isFinite(ms) ? Math.max(0, Math.round(ms)) : 0;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}
