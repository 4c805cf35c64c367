// Turns what the decoders saw into OISP events. Pure: same inputs → same events (ids included),
// no clock, no I/O. Content is raw here; redactEvent decides what leaves the sensor.
import type { ConnMeta, ProcessInfo } from "../tap/types.ts";
import type { AiAuth, AiMessage, ParsedAiRequest, ParsedAiResponse } from "../decode/providers/types.ts";
import type { HttpExchange } from "../decode/types.ts";
import { computeCost } from "./cost.ts";
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
  let imageCount = 0;
  for (const m of messages) imageCount += m.image_count ?? 0;

  // Fields assigned one by one in the order they are serialised (no spread of a temporary object per
  // optional field: the builders' allocations are garbage the sensor collects with every call).
  const data = { request_id: eventId, provider: { name: oispProviderName(req.provider), endpoint: req.endpoint } } as AiRequestEvent["data"];
  if (req.model !== undefined) data.model = { id: req.model };
  data.auth = authInfo(req.auth);
  data.request_type = req.requestType;
  data.streaming = req.streaming;
  data.messages = messages;
  data.messages_count = messages.length;
  data.has_system_prompt = systemText !== undefined;
  if (systemText !== undefined) data.system_prompt_hash = contentHash(systemText);
  data.tools = req.tools.map(toolOf);
  data.tools_count = req.tools.length;
  if (req.toolChoice !== undefined) data.tool_choice = req.toolChoice;
  data.parameters = parameters(req.parameters);
  data.has_images = imageCount > 0;
  if (imageCount > 0) data.image_count = imageCount;

  const reasons = ["mitm_capture", "payload_parsed"];
  if (ex.request.bodyTruncated) reasons.push("request_body_truncated");
  if (ex.request.decodeError) reasons.push("request_body_not_decoded");
  const partial = ex.request.bodyTruncated || ex.request.decodeError !== undefined;

  const event = envelope(ctx, eventId, formatTimestamp(ex.request.startTs), contentConfidence(ctx, partial, reasons)) as AiRequestEvent;
  event.event_type = "ai.request";
  event.data = data;
  const attrs = event.attrs!;
  attrs.exchange_seq = ex.seq;
  attrs.provider_id = req.provider;
  attrs.api_format = req.apiFormat;
  if (req.inputCount !== undefined) attrs.input_count = req.inputCount;
  return event;
}

function toolOf(t: ParsedAiRequest["tools"][number]): NonNullable<AiRequestEvent["data"]["tools"]>[number] {
  const out: NonNullable<AiRequestEvent["data"]["tools"]>[number] = { name: t.name, type: t.type };
  if (t.description !== undefined) out.description = t.description;
  return out;
}

/** The system prompt travels as the first message (Anthropic sends it beside the messages). */
function requestMessages(req: ParsedAiRequest): Message[] {
  const out: Message[] = [];
  if (req.system !== undefined && !hasSystemMessage(req.messages)) out.push(message({ role: "system", content: req.system }));
  for (const m of req.messages) out.push(message(m));
  return out;
}

function hasSystemMessage(messages: AiMessage[]): boolean {
  for (const m of messages) if (m.role === "system") return true;
  return false;
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
  let joined: string | undefined;
  for (const m of messages) {
    if (m.role !== "system") continue;
    joined = joined === undefined ? (m.content ?? "") : `${joined}\n${m.content ?? ""}`;
  }
  return joined;
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
  const toolCalls = res.toolCalls.map(responseToolCall);

  // Fields in the order they are serialised, assigned one by one (see buildAiRequest).
  const data = { request_id: requestEvent.event_id } as AiResponseEvent["data"];
  if (res.providerRequestId !== undefined) data.provider_request_id = res.providerRequestId;
  data.provider = { name: oispProviderName(req.provider), endpoint: req.endpoint };
  const model = res.model ?? req.model;
  if (model !== undefined) data.model = { id: model };
  data.status_code = res.statusCode;
  data.success = res.success;
  if (res.error) data.error = definedOnly(res.error);
  data.tool_calls = toolCalls;
  data.tool_calls_count = toolCalls.length;
  data.latency_ms = nonNegativeInt(endTs - ex.request.startTs);
  if (res.finishReason !== undefined) data.finish_reason = res.finishReason;
  if (res.content !== undefined || toolCalls.length > 0 || res.finishReason !== undefined) {
    const choiceMessage: Message = { role: "assistant" };
    if (res.content !== undefined) {
      choiceMessage.content = res.content;
      choiceMessage.content_length = res.content.length;
    }
    const choice: NonNullable<AiResponseEvent["data"]["choices"]>[number] = { index: 0, message: choiceMessage };
    if (res.finishReason !== undefined) choice.finish_reason = res.finishReason;
    data.choices = [choice];
  }
  // Input tokens are all prompt tokens, cache reads and writes included (src/events/input-tokens.ts).
  const inputTokens = res.usage && inputTokensOf(res.usage, req.apiFormat);
  if (res.usage) data.usage = usage(res.usage, inputTokens);
  // Priced from embedded tables at the call's own time: still pure. Unknown model → no cost fields.
  const cost = res.usage && computeCost({ provider: req.provider, apiFormat: req.apiFormat, model, usage: res.usage, atMs: ex.request.startTs });
  if (cost) {
    const u = (data.usage ??= {});
    u.input_cost_usd = cost.input_cost_usd;
    u.output_cost_usd = cost.output_cost_usd;
    u.total_cost_usd = cost.total_cost_usd;
  }
  if (req.streaming && isFiniteNumber(res.firstTokenTs)) data.time_to_first_token_ms = nonNegativeInt(res.firstTokenTs - ex.request.endTs);

  const reasons = ["mitm_capture", "payload_parsed"];
  if (req.streaming) reasons.push("streaming_reassembled");
  if (res.usage) reasons.push("usage_from_api");
  const gapsFrom = reasons.length;
  addResponseGaps(reasons, ex, res);

  const event = envelope(ctx, eventId, formatTimestamp(endTs), contentConfidence(ctx, reasons.length > gapsFrom, reasons)) as AiResponseEvent;
  event.event_type = "ai.response";
  event.data = data;
  event.related_events = [{ event_id: requestEvent.event_id, relationship: "caused_by" }];
  const attrs = event.attrs!;
  attrs.exchange_seq = ex.seq;
  attrs.provider_id = req.provider;
  attrs.api_format = req.apiFormat;
  // OISP has no field for reasoning text or the provider's own stop reason.
  if (res.thinking !== undefined) attrs.thinking = res.thinking;
  if (res.rawFinishReason !== undefined) attrs.raw_finish_reason = res.rawFinishReason;
  if (res.usage?.cacheWriteTokens !== undefined) attrs.cache_write_tokens = res.usage.cacheWriteTokens;
  if (inputTokens !== undefined && inputTokens !== res.usage?.promptTokens) attrs.prompt_tokens_raw = res.usage?.promptTokens;
  if (res.dimensions !== undefined) attrs.dimensions = res.dimensions;
  if (cost) {
    attrs.price_source = cost.price_source;
    if (cost.price_date !== undefined) attrs.price_date = cost.price_date;
    if (cost.price_model !== undefined) attrs.price_model = cost.price_model;
  }
  return event;
}

function responseToolCall(tc: ParsedAiResponse["toolCalls"][number]): NonNullable<AiResponseEvent["data"]["tool_calls"]>[number] {
  const out = {} as NonNullable<AiResponseEvent["data"]["tool_calls"]>[number];
  if (tc.id !== undefined) out.id = tc.id;
  out.name = tc.name;
  out.type = "function";
  out.arguments = tc.arguments;
  out.arguments_hash = contentHash(tc.arguments);
  return out;
}

/** Why the response we saw may not be the whole response: each gap added to `reasons` once. */
function addResponseGaps(reasons: string[], ex: HttpExchange, res: ParsedAiResponse): void {
  if (!ex.response) reasons.push("no_response");
  else {
    if (!ex.response.complete) reasons.push("connection_closed_early");
    if (ex.response.bodyTruncated) reasons.push("response_body_truncated");
    if (ex.response.decodeError) reasons.push("response_body_not_decoded");
  }
  if (res.incomplete) reasons.push("stream_incomplete");
}

/** The provider's prompt count with cache reads/writes added where it leaves them out; undefined without one. */
function inputTokensOf(u: NonNullable<ParsedAiResponse["usage"]>, apiFormat: string | undefined): number | undefined {
  if (!Number.isSafeInteger(u.promptTokens)) return undefined;
  return totalInputTokens(u.promptTokens!, positiveCount(u.cachedTokens), positiveCount(u.cacheWriteTokens), apiFormat);
}

function positiveCount(v: number | undefined): number {
  return Number.isSafeInteger(v) && v! > 0 ? v! : 0;
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
export function buildToolCalls(ctx: ConnContext, res: ParsedAiResponse, responseEvent: OispEvent, responseTsMs?: number): AgentToolCallEvent[] {
  if (res.toolCalls.length === 0) return [];
  const tsMs = responseTsMs ?? Date.parse(responseEvent.ts);
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
    source: sourceOf(ctx.collectorVersion, meta.captureMethod),
    confidence,
    attrs: { conn_id: meta.connId },
  };
  const p = meta.process;
  if (p) {
    out.process = processContext(p);
    if (p.user !== undefined || p.uid !== undefined) {
      const actor: NonNullable<Envelope["actor"]> = {};
      if (p.user !== undefined) actor.user = p.user;
      if (isCount(p.uid)) actor.uid = p.uid;
      out.actor = actor;
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

function sourceOf(collectorVersion: string, method: ConnMeta["captureMethod"]): Envelope["source"] {
  if (method === "ebpf_uprobe") return { collector: "oisp-sensor", collector_version: collectorVersion, capture_method: "ebpf_uprobe", capture_point: "tls_library_uprobe" };
  // A connection known only from its ClientHello, seen by a syscall tracepoint (src/capture/ebpf/proc-hello.ts).
  if (method === "ebpf_tracepoint") {
    return { collector: "oisp-sensor", collector_version: collectorVersion, capture_method: "ebpf_tracepoint", capture_point: "sys_enter_tls_client_hello" };
  }
  return { collector: "oisp-sensor", collector_version: collectorVersion, capture_method: "mitm_proxy", capture_point: method === "windivert" ? "windivert" : "http_connect_proxy" };
}

export function attribution(ctx: ConnContext): Pick<Confidence, "process_attribution"> {
  return { process_attribution: processAttribution(ctx) };
}

function processAttribution(ctx: ConnContext): Confidence["process_attribution"] {
  if (!ctx.meta.process) return "unknown";
  // eBPF: the probe ran in the process itself.
  if (ctx.meta.captureMethod === "ebpf_uprobe" || ctx.meta.captureMethod === "ebpf_tracepoint") return "direct";
  // On Linux the owning process is found through the socket's inode in /proc; elsewhere the OS names it.
  return ctx.host.os === "linux" ? "socket_inode" : "direct";
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
    process_attribution: processAttribution(ctx),
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
