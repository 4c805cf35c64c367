// Builders: capture results in, OISP events out — checked field by field and against the OISP schemas
// themselves (ajv, test/support/oisp-validate.ts) and our zod schema, in every redaction mode.
import { describe, expect, test } from "bun:test";
import { decodeTime, isValid } from "ulidx";
import {
  buildAiRequest,
  buildAiResponse,
  buildNetworkConnect,
  buildToolCalls,
  formatTimestamp,
  oispProviderName,
  redactEvent,
  REDACTION_MODES,
  validateEvent,
  type OispEvent,
} from "../../src/events/index.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";
import { CONTENT, connContext, connMeta, exchange, parsedRequest, parsedResponse, T0 } from "./events.fixtures.ts";

function buildAll(overrides: { req?: Parameters<typeof parsedRequest>[0]; res?: Parameters<typeof parsedResponse>[0] } = {}) {
  const ctx = connContext();
  const ex = exchange();
  const req = parsedRequest(overrides.req);
  const res = parsedResponse(overrides.res);
  const connect = buildNetworkConnect(ctx);
  const request = buildAiRequest(ctx, ex, req);
  const response = buildAiResponse(ctx, ex, req, res, request);
  const tools = buildToolCalls(ctx, res, response);
  return { connect, request, response, tools, all: [connect, request, response, ...tools] as OispEvent[] };
}

function expectValid(e: OispEvent): void {
  validateOispEvent(e); // throws with every OISP schema error
  const z = validateEvent(e);
  if (!z.ok) throw new Error(z.error);
}

describe("every built event is valid OISP v0.1 and valid against our zod schema", () => {
  test("unredacted", () => {
    for (const e of buildAll().all) expectValid(e);
  });
  for (const mode of REDACTION_MODES) {
    test(`redacted: ${mode}`, () => {
      for (const e of buildAll().all) expectValid(redactEvent(e, mode));
    });
  }
  test("edge cases: no process, failed upstream, no response, non-streaming, unknown provider", () => {
    const ctx = connContext(connMeta({ process: undefined, upstreamError: "connect ECONNREFUSED", sni: undefined, alpn: undefined, mode: "plain" }));
    const ex = exchange({ response: undefined, error: "connection closed before response" });
    const req = parsedRequest({ provider: "deepseek", streaming: false, model: undefined, system: "be brief", auth: { type: "none" } });
    const res = parsedResponse({ statusCode: 0, success: false, toolCalls: [], content: undefined, thinking: undefined, usage: undefined, finishReason: undefined, error: { type: "no_response", message: "no response" } });
    const request = buildAiRequest(ctx, ex, req);
    const response = buildAiResponse(ctx, ex, req, res, request);
    const events: OispEvent[] = [buildNetworkConnect(ctx), request, response, ...buildToolCalls(ctx, res, response)];
    expect(events).toHaveLength(3);
    for (const e of events) for (const mode of REDACTION_MODES) expectValid(redactEvent(e, mode));
    for (const e of events) expectValid(e);
  });
});

describe("network.connect", () => {
  test("carries endpoints, timing, TLS and the proxy mode", () => {
    const { connect } = buildAll();
    expect(connect.event_type).toBe("network.connect");
    expect(connect.data).toEqual({
      dest: { ip: "127.0.0.1", port: 443, domain: "api.openai.com" },
      src: { ip: "127.0.0.1", port: 54321 },
      protocol: "tcp",
      success: true,
      latency_ms: 12.25,
      tls: { sni: "api.openai.com", alpn: "http/1.1" },
    });
    expect(connect.attrs).toMatchObject({ conn_id: "c-7f3a", mode: "mitm" });
    expect(connect.confidence).toMatchObject({ completeness: "metadata_only", content_source: "none", process_attribution: "socket_inode" });
    expect(connect.source).toEqual({ collector: "oisp-sensor", collector_version: "0.1.0-test", capture_method: "mitm_proxy", capture_point: "http_connect_proxy" });
  });

  test("a failed or passed-through connection says why", () => {
    const e = buildNetworkConnect(connContext(connMeta({ upstreamError: "getaddrinfo ENOTFOUND", mode: "passthrough", passthroughCode: "pinned", passthroughReason: "pinned (client rejected certificate)" })));
    expect(e.data.success).toBe(false);
    expect(e.data.error).toBe("getaddrinfo ENOTFOUND");
    expect(e.attrs).toMatchObject({ mode: "passthrough", passthrough_code: "pinned", passthrough_reason: "pinned (client rejected certificate)" });
  });
});

describe("ai.request", () => {
  test("maps the parsed request onto OISP fields", () => {
    const { request } = buildAll();
    const d = request.data;
    expect(request.event_type).toBe("ai.request");
    expect(d.request_id).toBe(request.event_id);
    expect(d.provider).toEqual({ name: "openai", endpoint: "https://api.openai.com/v1/chat/completions" });
    expect(d.model).toEqual({ id: "gpt-4o" });
    expect(d.auth).toEqual({ type: "api_key", key_prefix: "sk-proj-", key_hash: "9f86d081884c7d65" });
    expect(d.request_type).toBe("chat");
    expect(d.streaming).toBe(true);
    expect(d.messages_count).toBe(4);
    expect(d.messages?.[0]).toEqual({ role: "system", content: CONTENT.system, content_length: CONTENT.system.length });
    expect(d.messages?.[1]).toMatchObject({ role: "user", content: CONTENT.user, has_images: true, image_count: 2 });
    expect(d.messages?.[3]).toMatchObject({ role: "tool", tool_call_id: "call_0", name: "get_weather" });
    expect(d.has_system_prompt).toBe(true);
    expect(d.system_prompt_hash).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(d.tools).toEqual([{ name: "get_weather", type: "function", description: CONTENT.toolDescription }]);
    expect(d.tools_count).toBe(1);
    expect(d.tool_choice).toBe("auto");
    expect(d.parameters).toEqual({ temperature: 0.2, max_tokens: 512, stop: ["END"] });
    expect(d.has_images).toBe(true);
    expect(d.image_count).toBe(2);
    expect(request.process).toEqual({ pid: 4242, ppid: 4200, exe: "/usr/bin/python3", name: "python3", cmdline: connMeta().process!.cmdline });
    expect(request.actor).toEqual({ user: "alice", uid: 1000 });
    expect(request.confidence).toMatchObject({
      level: "high",
      completeness: "full",
      process_attribution: "socket_inode",
      content_source: "mitm_decryption",
      ai_detection_method: "known_endpoint",
    });
    expect(request.attrs).toMatchObject({ conn_id: "c-7f3a", exchange_seq: 0, provider_id: "openai", api_format: "openai" });
    expect(request.ts).toBe(formatTimestamp(T0));
  });

  test("an Anthropic-style separate system prompt becomes the first message", () => {
    const req = parsedRequest({ provider: "anthropic", system: "sys text", messages: [{ role: "user", content: "hi" }] });
    const e = buildAiRequest(connContext(), exchange(), req);
    expect(e.data.provider?.name).toBe("anthropic");
    expect(e.data.messages?.map((m) => m.role)).toEqual(["system", "user"]);
    expect(e.data.messages?.[0]?.content).toBe("sys text");
    expect(e.data.has_system_prompt).toBe(true);
  });

  test("a truncated request body makes the event partial", () => {
    const ex = exchange();
    ex.request.bodyTruncated = true;
    const e = buildAiRequest(connContext(), ex, parsedRequest());
    expect(e.confidence.completeness).toBe("partial");
    expect(e.confidence.reasons).toContain("request_body_truncated");
  });

  test("auth never carries more than an 8-character prefix", () => {
    const e = buildAiRequest(connContext(), exchange(), parsedRequest({ auth: { type: "api_key", keyPrefix: "sk-proj-abcdef123", keyHash: "h" } }));
    expect(e.data.auth).toEqual({ type: "api_key", key_prefix: "sk-proj-", key_hash: "h" });
  });

  test("non-Linux hosts attribute the process directly", () => {
    const ctx = { ...connContext(), host: { hostname: "w", os: "windows" as const, os_version: "Windows 11", arch: "x86_64" as const } };
    expect(buildAiRequest(ctx, exchange(), parsedRequest()).confidence.process_attribution).toBe("direct");
  });
});

describe("ai.response", () => {
  test("maps the parsed response, timings and links", () => {
    const { request, response } = buildAll();
    const d = response.data;
    expect(d.request_id).toBe(request.event_id);
    expect(response.related_events).toEqual([{ event_id: request.event_id, relationship: "caused_by" }]);
    expect(d.provider_request_id).toBe("chatcmpl-AbC123xyz");
    expect(d.model).toEqual({ id: "gpt-4o-2024-11-20" });
    expect(d.status_code).toBe(200);
    expect(d.success).toBe(true);
    expect(d.choices).toEqual([
      { index: 0, message: { role: "assistant", content: CONTENT.answer, content_length: CONTENT.answer.length }, finish_reason: "tool_calls" },
    ]);
    expect(d.tool_calls?.map((t) => [t.id, t.name, t.type, t.arguments])).toEqual([
      ["call_1", "get_weather", "function", CONTENT.argsJson],
      ["call_2", "lookup", "function", CONTENT.argsText],
    ]);
    expect(d.tool_calls?.[0]?.arguments_hash).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(d.tool_calls_count).toBe(2);
    // gpt-4o-2024-11-20 at $2.50 /M in, $1.25 /M cached, $10 /M out: 56×2.5+64×1.25 = 220 µ$, 30×10 = 300 µ$
    expect(d.usage).toEqual({
      prompt_tokens: 120,
      completion_tokens: 30,
      total_tokens: 150,
      cached_tokens: 64,
      reasoning_tokens: 8,
      input_cost_usd: 0.00022,
      output_cost_usd: 0.0003,
      total_cost_usd: 0.00052,
    });
    expect(response.attrs).toMatchObject({ price_source: expect.stringMatching(/^genai-prices@/), price_model: "gpt-4o" });
    expect(d.latency_ms).toBe(1235); // 1234.56 ms from request start to response end, rounded
    expect(d.time_to_first_token_ms).toBe(188); // first token 190.9 ms after start, request ended at 3.4 ms
    expect(d.finish_reason).toBe("tool_calls");
    expect(response.attrs).toMatchObject({ thinking: CONTENT.thinking, raw_finish_reason: "tool_calls" });
    expect(response.ts).toBe(formatTimestamp(T0 + 1234.56));
    expect(response.confidence.completeness).toBe("full");
  });

  test("a cut-off stream is partial and says why", () => {
    const ex = exchange();
    ex.response!.complete = false;
    const req = parsedRequest();
    const e = buildAiResponse(connContext(), ex, req, parsedResponse({ incomplete: true }), buildAiRequest(connContext(), ex, req));
    expect(e.confidence.completeness).toBe("partial");
    expect(e.confidence.reasons).toEqual(expect.arrayContaining(["connection_closed_early", "stream_incomplete"]));
  });

  test("time to first token only for streaming requests", () => {
    const req = parsedRequest({ streaming: false });
    const e = buildAiResponse(connContext(), exchange(), req, parsedResponse(), buildAiRequest(connContext(), exchange(), req));
    expect(e.data.time_to_first_token_ms).toBeUndefined();
  });
});

describe("agent.tool_call", () => {
  test("one event per tool call, arguments as an object, caused by the response", () => {
    const { response, tools } = buildAll();
    expect(tools).toHaveLength(2);
    expect(tools[0]!.data).toEqual({
      tool: { name: "get_weather", type: "other" },
      call_id: "call_1",
      triggered_by: "llm_decision",
      arguments: JSON.parse(CONTENT.argsJson),
      arguments_hash: response.data.tool_calls![0]!.arguments_hash,
    });
    expect(tools[1]!.data.arguments).toEqual({ _raw: CONTENT.argsText });
    for (const t of tools) {
      expect(t.related_events).toEqual([{ event_id: response.event_id, relationship: "caused_by" }]);
      expect(t.ts).toBe(response.ts);
      expect(t.attrs).toMatchObject({ request_id: response.data.request_id });
    }
    expect(new Set(tools.map((t) => t.event_id)).size).toBe(2);
  });
});

describe("replaying the same capture gives the same events", () => {
  test("ids and content are deterministic", () => {
    const a = buildAll();
    const b = buildAll();
    expect(b.all).toEqual(a.all);
    for (const e of a.all) {
      expect(isValid(e.event_id)).toBe(true);
      expect(decodeTime(e.event_id)).toBe(Math.floor(Date.parse(e.ts)));
    }
    expect(new Set(a.all.map((e) => e.event_id)).size).toBe(a.all.length);
  });

  test("another exchange on the same connection gets other ids", () => {
    const ctx = connContext();
    const first = buildAiRequest(ctx, exchange(), parsedRequest());
    const second = buildAiRequest(ctx, exchange({ seq: 1 }), parsedRequest());
    expect(second.event_id).not.toBe(first.event_id);
  });
});

describe("helpers", () => {
  test("formatTimestamp keeps microseconds and never throws", () => {
    expect(formatTimestamp(Date.UTC(2025, 11, 22, 14, 30, 16) + 345.678)).toBe("2025-12-22T14:30:16.345678Z");
    expect(formatTimestamp(0)).toBe("1970-01-01T00:00:00.000000Z");
    expect(formatTimestamp(Number.NaN)).toBe("1970-01-01T00:00:00.000000Z");
    expect(formatTimestamp(1e20)).toBe("9999-12-31T23:59:59.999000Z");
  });

  test("provider ids map to the OISP enum, unknown ones to other", () => {
    expect(oispProviderName("openai")).toBe("openai");
    expect(oispProviderName("togetherai")).toBe("together");
    expect(oispProviderName("google_vertex")).toBe("google");
    expect(oispProviderName("aws_bedrock")).toBe("aws_bedrock");
    expect(oispProviderName("deepseek")).toBe("other");
    expect(oispProviderName("__proto__")).toBe("other");
    const e = buildAiRequest(connContext(), exchange(), parsedRequest({ provider: "xai" }));
    expect(e.data.provider?.name).toBe("other");
    expect(e.attrs?.provider_id).toBe("xai");
  });
});
