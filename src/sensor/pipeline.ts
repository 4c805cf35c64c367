// The sensor's spine: tapped connection bytes in, redacted OISP events out.
// capture frames → HTTP decoder per connection → provider parser → event builders → redaction → outputs.
// Runs in the sensor (unprivileged): this is where untrusted bytes get parsed.
import type { ConnMeta, Direction, TapSink } from "../tap/types.ts";
import type { HostActivity } from "../tap/activity.ts";
import { createConnectionDecoder, type ConnectionDecoder, type ConnectionOutput } from "../decode/connection-decoder.ts";
import { parseAiRequest, parseAiResponse } from "../decode/providers/index.ts";
import type { ParsedAiRequest } from "../decode/providers/types.ts";
import type { HttpExchange } from "../decode/types.ts";
import { matchEndpoint, type EndpointMatch } from "../spec/endpoints.ts";
// The event modules one by one, not events/index.ts: that also builds the zod schema of every event, which
// the sensor never validates against (~7 MB of heap in the sensor's thread for nothing).
import { buildAiRequest, buildAiResponse, buildNetworkConnect, buildToolCalls, type ConnContext } from "../events/build.ts";
import { conversationIdFrom } from "../events/conversation.ts";
import { hostInfo } from "../events/host.ts";
import { redactOwnedEvent, type RedactionMode } from "../events/redact.ts";
import type { EventOutput } from "../events/output.ts";
import type { OispEvent } from "../events/schema.ts";
import { buildToolResult, freshToolResults } from "../events/tool-result.ts";
import { buildFileWrite, buildProcessExec } from "../events/build-activity.ts";
import type { Logger } from "../util/log.ts";
import { ActivityLinks } from "./activity-links.ts";
import { ConversationTracker, ToolCallMemory } from "./agent-links.ts";
import { isRealtimePath, RealtimeSession, type RealtimeOutput } from "./realtime.ts";
import { detectAiShape } from "./shape.ts";
import { endpointUrl } from "../decode/providers/common.ts";
import type { WsConnectionItem } from "../decode/websocket.ts";
import type { ParsedAiResponse } from "../decode/providers/types.ts";

export interface PipelineOptions {
  redaction: RedactionMode;
  collectorVersion: string;
  outputs: EventOutput[];
  log: Logger;
  /** Connections tracked at once; more are relayed by the redirector but not decoded here (counted). */
  maxConnections?: number;
  maxBodyBytes?: number;
  /** Only decode connections of these process names (case-insensitive, ".exe" optional). Empty = all. */
  processFilter?: string[];
}

interface TrackedConnection {
  ctx: ConnContext;
  /** processScope of the connection's process, made once (two template strings per call otherwise). */
  scope: string;
  match?: EndpointMatch;
  decoder?: ConnectionDecoder;
  /** Requests seen, by exchange seq, waiting for their response. */
  pending: Map<number, PendingCall>;
  /** After an upgrade to the Realtime API's WebSocket: its turns become calls. */
  realtime?: { session: RealtimeSession; base: HttpExchange; calls: Map<number, HttpExchange> };
}

interface PendingCall {
  parsed: ParsedAiRequest;
  event: OispEvent;
  conversationId?: string;
  /** Recognised by its body, not its host: lower confidence; the real endpoint when parsed under another path. */
  shape?: { endpoint?: string };
}

export interface PipelineStats {
  connections: number;
  activeConnections: number;
  events: number;
  aiRequests: number;
  aiResponses: number;
  protocolErrors: number;
  droppedConnections: number;
  filteredConnections: number;
  internalErrors: number;
  /** AI calls to unknown hosts recognised by their request body. */
  shapeDetected: number;
  /** process.exec and file.write events built from capture activity. */
  execs: number;
  fileWrites: number;
}

/** All counters at zero: a new pipeline's, and what the worker reports before its pipeline exists. */
export function emptyPipelineStats(): PipelineStats {
  return {
    connections: 0,
    activeConnections: 0,
    events: 0,
    aiRequests: 0,
    aiResponses: 0,
    protocolErrors: 0,
    droppedConnections: 0,
    filteredConnections: 0,
    internalErrors: 0,
    shapeDetected: 0,
    execs: 0,
    fileWrites: 0,
  };
}

export class SensorPipeline implements TapSink {
  private readonly conns = new Map<string, TrackedConnection>();
  private readonly host = hostInfo();
  private readonly counters: Omit<PipelineStats, "activeConnections"> = emptyPipelineStats();
  private readonly processFilter: Set<string>;
  private readonly toolCalls = new ToolCallMemory();
  private readonly conversations = new ConversationTracker();
  private readonly activityLinks = new ActivityLinks();

  constructor(private readonly opts: PipelineOptions) {
    this.processFilter = new Set((opts.processFilter ?? []).map(normalizeProcessName));
  }

  open(meta: ConnMeta): void {
    this.guard(() => {
      this.counters.connections++;
      if (!this.passesProcessFilter(meta)) {
        this.counters.filteredConnections++;
        return;
      }
      if (this.conns.size >= (this.opts.maxConnections ?? 20_000)) {
        this.counters.droppedConnections++;
        this.opts.log("warn", `sensor: connection limit reached, not decoding ${meta.host}`);
        return;
      }
      const ctx: ConnContext = { meta, collectorVersion: this.opts.collectorVersion, host: this.host };
      // The port the client asked for: after --resolve localhost:11434:127.0.0.1:5555 this is still Ollama.
      const match = matchEndpoint(meta.host, meta.port ?? meta.server.port);
      const decoder =
        meta.mode === "passthrough" ? undefined : createConnectionDecoder(meta.connId, meta.alpn, { maxBodyBytes: this.opts.maxBodyBytes });
      this.conns.set(meta.connId, { ctx, scope: processScope(meta), match, decoder, pending: new Map() });
      // Connections to AI hosts (and every failed or passed-through one) are worth a network.connect;
      // blind relays of unrelated hosts in --all-traffic-less mode are not recorded at all.
      if (match || meta.upstreamError || meta.mode !== "passthrough") this.emit([buildNetworkConnect(ctx)]);
    });
  }

  data(connId: string, dir: Direction, bytes: Uint8Array, ts: number): void {
    // guard()'s try/catch written out: no closure for each network read.
    try {
      const conn = this.conns.get(connId);
      if (!conn?.decoder) return;
      this.handle(conn, conn.decoder.push(dir, bytes, ts));
    } catch (err) {
      this.internalError(err);
    }
  }

  /** A request seen and its response not (yet): its events will follow soon, or the call is a long one. */
  awaitingResponses(): boolean {
    for (const conn of this.conns.values()) if (conn.pending.size > 0) return true;
    return false;
  }

  close(connId: string, ts: number, error?: string): void {
    this.guard(() => {
      const conn = this.conns.get(connId);
      if (!conn) return;
      this.conns.delete(connId);
      if (conn.decoder) this.handle(conn, conn.decoder.close(ts, error));
      // Realtime turns still open when the WebSocket ends get a response saying so.
      for (const ex of conn.realtime?.calls.values() ?? []) {
        const pending = conn.pending.get(ex.seq);
        if (!pending) continue;
        ex.error = error ?? "connection closed before response.done";
        this.finishCall(conn, ex, pending, { statusCode: 0, success: false, toolCalls: [], incomplete: true, error: { type: "no_response", message: ex.error } });
      }
    });
  }

  activity(items: HostActivity[]): void {
    this.guard(() => {
      const ctx = { collectorVersion: this.opts.collectorVersion, host: this.host };
      const events: OispEvent[] = [];
      for (const a of items) {
        if (a.kind === "exec") {
          const e = buildProcessExec(ctx, a, this.activityLinks.execCause(a.ppid));
          this.activityLinks.noteExec(a.pid, e.event_id);
          this.counters.execs++;
          events.push(e);
        } else if (a.kind === "file_write") {
          events.push(buildFileWrite(ctx, a, this.activityLinks.writeCause(a.pid)));
          this.counters.fileWrites++;
        }
      }
      if (events.length > 0) this.emit(events);
    });
  }

  stats(): PipelineStats {
    return { ...this.counters, activeConnections: this.conns.size };
  }

  private handle(conn: TrackedConnection, outputs: ConnectionOutput[]): void {
    for (const out of outputs) {
      switch (out.kind) {
        case "request":
          this.onRequest(conn, out.exchange);
          break;
        case "exchange":
          this.onExchange(conn, out.exchange);
          break;
        case "upgrade":
          this.onExchange(conn, out.exchange);
          if (out.protocol === "websocket" && conn.match && isRealtimePath(out.exchange.request.path)) {
            conn.realtime = { session: new RealtimeSession(out.exchange.request, conn.match), base: out.exchange, calls: new Map() };
          }
          break;
        case "websocket":
          this.onWebSocket(conn, out.items);
          break;
        case "protocol-error":
          this.counters.protocolErrors++;
          this.opts.log("debug", `sensor: ${conn.ctx.meta.host}: not decodable (${out.dir}): ${out.message}`);
          break;
      }
    }
  }

  private onRequest(conn: TrackedConnection, ex: HttpExchange): void {
    if (conn.pending.has(ex.seq)) return;
    if (!conn.match) return this.onUnknownHostRequest(conn, ex);
    const parsed = parseAiRequest(ex.request, conn.match);
    if (!parsed) return;
    this.startCall(conn, ex, parsed);
  }

  /** A host the bundle does not know (--all-traffic, plain HTTP): an AI call only if its body says so. */
  private onUnknownHostRequest(conn: TrackedConnection, ex: HttpExchange): void {
    const shape = detectAiShape(ex.request, conn.ctx.meta.host);
    if (!shape) return;
    // Parsed under the path of the API the body speaks; reported with its real endpoint.
    const parsed = parseAiRequest(shape.parsePath ? { ...ex.request, path: shape.parsePath } : ex.request, shape.match);
    if (!parsed) return;
    this.counters.shapeDetected++;
    this.startCall(conn, ex, parsed, undefined, { ...(shape.parsePath && { endpoint: endpointUrl(ex.request, shape.match) }) });
  }

  private startCall(conn: TrackedConnection, ex: HttpExchange, parsed: ParsedAiRequest, conversationOverride?: string, shape?: PendingCall["shape"]): void {
    const event = buildAiRequest(conn.ctx, ex, parsed);
    const scope = conn.scope;
    const conversationId = conversationOverride ?? this.conversations.forRequest(scope, parsed, ex.request);
    if (conversationId !== undefined) event.data.conversation_id = conversationId;
    if (parsed.parseError !== undefined) markParseError(event, "request_parse_error", parsed.parseError);
    if (shape) markShape([event], shape);
    conn.pending.set(ex.seq, { parsed, event, conversationId, shape });
    this.counters.aiRequests++;
    const results = this.toolResults(conn, scope, ex, parsed, event);
    if (shape) markShape(results, shape);
    this.emit([event, ...results]);
  }

  /** agent.tool_result for each tool result this request hands back, linked to its agent.tool_call. */
  private toolResults(conn: TrackedConnection, scope: string, ex: HttpExchange, parsed: ParsedAiRequest, requestEvent: OispEvent): OispEvent[] {
    const out: OispEvent[] = [];
    for (const result of freshToolResults(parsed.messages)) {
      const link = this.toolCalls.find(scope, result.message);
      const event = buildToolResult(conn.ctx, requestEvent, ex.request.startTs, result, link);
      if (!event || !this.toolCalls.firstReport(scope, event.data.call_id)) continue;
      if (link) this.toolCalls.consumed(scope, link);
      out.push(event);
    }
    return out;
  }

  private onExchange(conn: TrackedConnection, ex: HttpExchange): void {
    // A request the decoder reports only together with its end (e.g. connection closed early).
    if (!conn.pending.has(ex.seq)) this.onRequest(conn, ex);
    const pending = conn.pending.get(ex.seq);
    if (!pending) return;
    const res = ex.response;
    const parsedRes = res
      ? parseAiResponse(pending.parsed, res)
      : { statusCode: 0, success: false, toolCalls: [], error: { type: "no_response", message: ex.error ?? "no response" } };
    this.finishCall(conn, ex, pending, parsedRes);
  }

  private finishCall(conn: TrackedConnection, ex: HttpExchange, pending: PendingCall, parsedRes: ParsedAiResponse): void {
    conn.pending.delete(ex.seq);
    const res = ex.response;
    const response = buildAiResponse(conn.ctx, ex, pending.parsed, parsedRes, pending.event);
    if (pending.conversationId !== undefined) {
      response.data.conversation_id = pending.conversationId;
      this.conversations.noteResponse(pending.parsed, parsedRes, res, pending.conversationId);
    }
    // The response's time as its event says it (whole ms), read back only when there are tool calls.
    const tsMs = parsedRes.toolCalls.length > 0 ? Date.parse(response.ts) : undefined;
    const calls = buildToolCalls(conn.ctx, parsedRes, response, tsMs);
    // A loop, not forEach: no closure for each call (nearly all have no tool call).
    for (let i = 0; i < parsedRes.toolCalls.length; i++) this.toolCalls.remember(conn.scope, parsedRes.toolCalls[i]!, calls[i]!.event_id, tsMs!);
    this.counters.aiResponses++;
    if (parsedRes.parseError !== undefined) markParseError(response, "response_parse_error", parsedRes.parseError);
    if (pending.shape) markShape([response, ...calls], pending.shape);
    this.emit([response, ...calls]);
  }

  /** Realtime API messages → calls: a turn's request when its response starts, its response at response.done. */
  private onWebSocket(conn: TrackedConnection, items: WsConnectionItem[]): void {
    const rt = conn.realtime;
    if (!rt) return;
    for (const item of items) {
      if (item.type === "error") {
        this.counters.protocolErrors++;
        this.opts.log("debug", `sensor: ${conn.ctx.meta.host}: WebSocket (${item.dir}): ${item.message}`);
        continue;
      }
      if (item.type !== "message" || item.opcode !== "text" || item.truncated) continue;
      for (const out of rt.session.push(item.dir, Buffer.from(item.data.buffer, item.data.byteOffset, item.data.length).toString("utf8"), item.ts)) {
        this.onRealtime(conn, rt, out);
      }
    }
  }

  private onRealtime(conn: TrackedConnection, rt: NonNullable<TrackedConnection["realtime"]>, out: RealtimeOutput): void {
    const seq = rt.base.seq + 1 + (out.kind === "error" ? 0 : out.turn);
    switch (out.kind) {
      case "error":
        this.counters.protocolErrors++;
        return;
      case "request": {
        // A turn has no HTTP request of its own: it is described by the upgrade request and its time.
        const ex: HttpExchange = {
          connId: rt.base.connId,
          seq,
          request: { ...rt.base.request, body: new Uint8Array(0), bodyTruncated: false, startTs: out.ts, endTs: out.ts },
        };
        rt.calls.set(out.turn, ex);
        if (rt.calls.size > 64) rt.calls.delete(rt.calls.keys().next().value!);
        this.startCall(conn, ex, out.parsed, conversationIdFrom(["openai-realtime", rt.session.sessionId ?? rt.base.connId]));
        return;
      }
      case "response": {
        const ex = rt.calls.get(out.turn);
        const pending = conn.pending.get(seq);
        if (!ex || !pending) return;
        rt.calls.delete(out.turn);
        ex.response = {
          status: out.parsed.statusCode,
          reason: "",
          headers: [],
          chunks: [],
          bodyTruncated: false,
          startTs: out.startTs,
          ...(out.firstTokenTs !== undefined && { firstBodyTs: out.firstTokenTs }),
          endTs: out.ts,
          complete: true,
        };
        this.finishCall(conn, ex, pending, out.parsed);
        return;
      }
    }
  }

  private emit(events: OispEvent[]): void {
    for (const e of events) {
      if ((e.event_type === "ai.response" || e.event_type === "agent.tool_call") && e.process?.pid !== undefined) this.activityLinks.noteAi(e.process.pid, e.event_id);
    }
    // Redacted in place: the builders make every event a tree of its own (nothing in it is shared with the
    // parsed call, the connection or the activity), and after this only a pending request event is read
    // again, for its id, time and detection method, which redaction leaves as they are.
    const redacted: OispEvent[] = [];
    for (const e of events) redacted.push(redactOwnedEvent(e, this.opts.redaction));
    this.counters.events += redacted.length;
    for (const output of this.opts.outputs) output.write(redacted);
  }

  private passesProcessFilter(meta: ConnMeta): boolean {
    if (this.processFilter.size === 0) return true;
    const name = meta.process?.name;
    return name !== undefined && this.processFilter.has(normalizeProcessName(name));
  }

  /** A bug in decoding must never reach the relay: count it, say it once per kind, carry on. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.internalError(err);
    }
  }

  private internalError(err: unknown): void {
    this.counters.internalErrors++;
    this.opts.log("error", `sensor: internal error while decoding: ${(err as Error).stack ?? err}`);
  }
}

/**
 * What of a body could not be read (malformed JSON, a stream message with a bad CRC, undecodable events):
 * the event holds what was salvaged, says it is partial, and says why.
 */
function markParseError(e: OispEvent, reason: string, message: string): void {
  e.confidence.completeness = "partial";
  if (!e.confidence.reasons?.includes(reason)) e.confidence.reasons = [...(e.confidence.reasons ?? []), reason];
  // Parser messages may quote a token of the body ('Unexpected identifier "hello"'): never content here.
  e.attrs = { ...e.attrs, [reason]: message.replace(/"[^"]*"|'[^']*'/g, "…").slice(0, 300) };
}

/**
 * Events of a call recognised by its body: medium confidence, detected by payload inspection, and the
 * real endpoint where the call was parsed under another path.
 */
function markShape(events: OispEvent[], shape: NonNullable<PendingCall["shape"]>): void {
  for (const e of events) {
    e.confidence.level = "medium";
    e.confidence.ai_detection_method = "payload_inspection";
    e.confidence.reasons = [...(e.confidence.reasons ?? []), "unknown_host_ai_payload_shape"];
    const data = e.data as { provider?: { endpoint?: string } };
    if (shape.endpoint !== undefined && data.provider) data.provider.endpoint = shape.endpoint;
  }
}

/** Whose tool calls and conversations these are: the client process, "?" when it is unknown. */
function processScope(meta: ConnMeta): string {
  const p = meta.process;
  return p ? `${p.pid}:${p.exe ?? p.name ?? ""}` : "?";
}

function normalizeProcessName(name: string): string {
  return name.toLowerCase().replace(/\.exe$/, "");
}
