import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { parseAiRequest, parseAiResponse } from "../../src/decode/providers/index.ts";
import { ANTHROPIC, jsonResponse, match, parseRequest, parseStreamSplitInvariant, request, sseBlocks, sseResponse } from "./fixtures/providers.ts";

const KEY = "sk-ant-api03-E2eTestKeyABCDEFSECRET";
const fingerprint = (key: string) => `sha256:${createHash("sha256").update(key).digest("hex").slice(0, 16)}`;
const anthropicHeaders = (key = KEY): Array<[string, string]> => [
  ["x-api-key", key],
  ["anthropic-version", "2023-06-01"],
];
const messagesRequest = (body: object, path = "/v1/messages") =>
  parseRequest(request(path, body, { host: "api.anthropic.com", headers: anthropicHeaders() }), ANTHROPIC);

const weatherTool = { name: "get_weather", description: "Current weather", input_schema: { type: "object", properties: { city: { type: "string" } } } };

describe("Anthropic messages, request", () => {
  test("system string, tools, parameters, key prefix and fingerprint", () => {
    const req = messagesRequest({
      model: "claude-sonnet-4-5",
      max_tokens: 1024,
      system: "You are a weather bot.",
      tools: [weatherTool],
      messages: [{ role: "user", content: "Weather in Berlin?" }],
      temperature: 0.7,
      top_p: 0.95,
      top_k: 40,
      stop_sequences: ["\n\nHuman:"],
    });
    expect(req).toEqual({
      provider: "anthropic",
      apiFormat: "anthropic",
      api: "anthropic-messages",
      endpoint: "https://api.anthropic.com/v1/messages",
      requestType: "chat",
      model: "claude-sonnet-4-5",
      streaming: false,
      system: "You are a weather bot.",
      messages: [{ role: "user", content: "Weather in Berlin?" }],
      tools: [{ name: "get_weather", type: "function", description: "Current weather" }],
      parameters: { temperature: 0.7, top_p: 0.95, max_tokens: 1024, stop: ["\n\nHuman:"] },
      auth: { type: "api_key", keyPrefix: "sk-ant-", keyHash: fingerprint(KEY) },
    });
    expect(JSON.stringify(req)).not.toContain("SECRET");
  });

  test("system blocks, images, tool_use and tool_result blocks, server tools, tool_choice, thinking", () => {
    const req = messagesRequest(
      {
        model: "claude-opus-4-1",
        max_tokens: 4096,
        stream: true,
        system: [
          { type: "text", text: "You are Claude Code." },
          { type: "text", text: "Be careful.", cache_control: { type: "ephemeral" } },
        ],
        thinking: { type: "enabled", budget_tokens: 2048 },
        tool_choice: { type: "any" },
        tools: [weatherTool, { type: "web_search_20250305", name: "web_search", max_uses: 3 }, { type: "bash_20250124", name: "bash" }],
        messages: [
          {
            role: "user",
            content: [
              { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
              { type: "text", text: "What city is this? Check its weather." },
            ],
          },
          {
            role: "assistant",
            content: [
              { type: "thinking", thinking: "It is Rome.", signature: "EqQB" },
              { type: "text", text: "That is Rome." },
              { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Rome" } },
            ],
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "toolu_1", content: [{ type: "text", text: "21°C, sunny" }] },
              { type: "text", text: "And tomorrow?" },
            ],
          },
          { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_2", content: "error: timeout", is_error: true }] },
        ],
      },
      "/v1/messages?beta=true",
    );
    expect(req.streaming).toBe(true);
    expect(req.endpoint).toBe("https://api.anthropic.com/v1/messages");
    expect(req.system).toBe("You are Claude Code.\nBe careful.");
    expect(req.messages).toEqual([
      { role: "user", content: "What city is this? Check its weather.", imageCount: 1 },
      { role: "assistant", content: "That is Rome.", toolCalls: [{ id: "toolu_1", name: "get_weather", arguments: '{"city":"Rome"}' }] },
      { role: "tool", toolCallId: "toolu_1", content: "21°C, sunny" },
      { role: "user", content: "And tomorrow?" },
      { role: "tool", toolCallId: "toolu_2", content: "error: timeout", isError: true },
    ]);
    expect(req.tools).toEqual([
      { name: "get_weather", type: "function", description: "Current weather" },
      { name: "web_search", type: "other" },
      { name: "bash", type: "other" },
    ]);
    expect(req.toolChoice).toBe("required");
    expect(req.thinking).toEqual({ enabled: true, budgetTokens: 2048 });
    expect(req.parameters).toEqual({ max_tokens: 4096 });
  });

  test("Claude on Vertex AI (model in the path) and Anthropic-compatible routes of other providers", () => {
    const host = "us-east5-aiplatform.googleapis.com";
    const path = "/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict";
    const vertex = parseRequest(
      request(path, { anthropic_version: "vertex-2023-10-16", max_tokens: 10, stream: true, messages: [{ role: "user", content: "hi" }] }, { host, headers: [["authorization", "Bearer ya29.a0AfB_byC-token"]] }),
      match("google_vertex_anthropic", host, "anthropic"),
    );
    expect(vertex).toMatchObject({ model: "claude-sonnet-4-5@20250929", streaming: true, endpoint: `https://${host}${path}`, auth: { type: "oauth" } });
    const deepseek = parseRequest(
      request("/anthropic/v1/messages", { model: "deepseek-chat", max_tokens: 10, messages: [] }, { host: "api.deepseek.com" }),
      match("deepseek", "api.deepseek.com", "openai"),
    );
    expect(deepseek.model).toBe("deepseek-chat");
    const res = parseAiResponse(deepseek, jsonResponse(200, { id: "m", type: "message", content: [{ type: "text", text: "ok" }], stop_reason: "end_turn", usage: { input_tokens: 3, output_tokens: 1 } }));
    expect(res).toMatchObject({ content: "ok", finishReason: "stop", usage: { promptTokens: 3, completionTokens: 1 } });
  });

  test("routes that are not a model call; OAuth tokens; a cut body", () => {
    const host = { host: "api.anthropic.com" };
    expect(parseAiRequest(request("/v1/messages/count_tokens", { model: "m", messages: [] }, host), ANTHROPIC)).toBeUndefined();
    expect(parseAiRequest(request("/v1/messages/batches", { requests: [] }, host), ANTHROPIC)).toBeUndefined();
    expect(parseAiRequest(request("/v1/models", "", { ...host, method: "GET" }), ANTHROPIC)).toBeUndefined();
    // /v1/messages means the Messages API only on Anthropic-format providers.
    expect(parseAiRequest(request("/v1/messages", { model: "m" }), match("openai", "api.openai.com"))).toBeUndefined();

    const oauth = "sk-ant-oat01-AbCdEfGhIjKlMnOpQrStUvWxYz";
    const req = parseRequest(request("/v1/messages", { model: "m", messages: [] }, { ...host, headers: [["authorization", `Bearer ${oauth}`]] }), ANTHROPIC);
    expect(req.auth).toEqual({ type: "oauth", keyPrefix: "sk-ant-", keyHash: fingerprint(oauth) });

    const full = JSON.stringify({ model: "claude-haiku-4-5", max_tokens: 10, messages: [{ role: "user", content: "y".repeat(400) }], stream: true });
    const cut = parseRequest(request("/v1/messages", full.slice(0, 120), { ...host, truncated: true }), ANTHROPIC);
    expect(cut).toMatchObject({ model: "claude-haiku-4-5", messages: [] });
    expect(cut.parseError).toContain("truncated");
  });
});

const plainReq = () => messagesRequest({ model: "claude-sonnet-4-5", max_tokens: 1024, messages: [{ role: "user", content: "Weather in Berlin?" }] });
const streamReq = () => messagesRequest({ model: "claude-sonnet-4-5", max_tokens: 2048, stream: true, messages: [{ role: "user", content: "Rome?" }] });
const usageStart = { input_tokens: 472, cache_creation_input_tokens: 30, cache_read_input_tokens: 128, output_tokens: 2 };

describe("Anthropic messages, response", () => {
  test("text and tool_use blocks, usage with cache reads and writes, request-id header", () => {
    const res = parseAiResponse(
      plainReq(),
      jsonResponse(
        200,
        {
          id: "msg_01XFDUDYJgAACzvnptvVoYEL",
          type: "message",
          role: "assistant",
          model: "claude-sonnet-4-5-20250929",
          content: [
            { type: "text", text: "Let me check the weather." },
            { type: "tool_use", id: "toolu_01A09q90qw90lq917835lq9", name: "get_weather", input: { city: "Berlin" } },
          ],
          stop_reason: "tool_use",
          stop_sequence: null,
          usage: { ...usageStart, output_tokens: 57 },
        },
        [["request-id", "req_011CV"]],
      ),
    );
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      providerRequestId: "req_011CV",
      model: "claude-sonnet-4-5-20250929",
      content: "Let me check the weather.",
      toolCalls: [{ id: "toolu_01A09q90qw90lq917835lq9", name: "get_weather", arguments: '{"city":"Berlin"}' }],
      finishReason: "tool_calls",
      rawFinishReason: "tool_use",
      usage: { promptTokens: 472, completionTokens: 57, cachedTokens: 128, cacheWriteTokens: 30 },
    });
  });

  test("thinking blocks; stop reasons mapped", () => {
    const body = (stop: string) => ({
      id: "msg_1",
      type: "message",
      model: "claude-opus-4-1",
      content: [
        { type: "thinking", thinking: "Step one.", signature: "sig" },
        { type: "redacted_thinking", data: "xyz" },
        { type: "text", text: "Answer." },
      ],
      stop_reason: stop,
      usage: { input_tokens: 1, output_tokens: 2 },
    });
    expect(parseAiResponse(plainReq(), jsonResponse(200, body("end_turn")))).toMatchObject({ thinking: "Step one.", content: "Answer.", finishReason: "stop", providerRequestId: "msg_1" });
    const stops = ["stop_sequence", "max_tokens", "refusal", "pause_turn", "model_context_window_exceeded", "something_new"];
    expect(stops.map((s) => parseAiResponse(plainReq(), jsonResponse(200, body(s))).finishReason)).toEqual(["stop", "length", "content_filter", "other", "length", "other"]);
  });

  test("error bodies: authentication, overloaded, malformed", () => {
    const auth = parseAiResponse(plainReq(), jsonResponse(401, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }, [["request-id", "req_2"]]));
    expect(auth).toEqual({
      statusCode: 401,
      success: false,
      providerRequestId: "req_2",
      toolCalls: [],
      error: { type: "authentication_error", message: "invalid x-api-key" },
    });
    const overloaded = parseAiResponse(plainReq(), jsonResponse(529, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }));
    expect(overloaded).toMatchObject({ statusCode: 529, success: false, error: { type: "overloaded_error" } });
    const bad = parseAiResponse(plainReq(), jsonResponse(200, '{"id":"msg_1","content":[{"type":"text","text":"Hel'));
    expect(bad).toMatchObject({ success: true, incomplete: true });
    expect(bad.parseError).toContain("malformed JSON");
  });
});

/** The stream Anthropic sends for extended thinking, a text block and a tool call. */
function thinkingToolStream(): string[] {
  const ev = (type: string, data: object = {}) => ({ type, ...data });
  return sseBlocks(
    [
      ev("message_start", {
        message: { id: "msg_01XFDUDYJgAACzvnptvVoYEL", type: "message", role: "assistant", model: "claude-sonnet-4-5-20250929", content: [], stop_reason: null, stop_sequence: null, usage: usageStart },
      }),
      ev("content_block_start", { index: 0, content_block: { type: "thinking", thinking: "", signature: "" } }),
      ev("content_block_delta", { index: 0, delta: { type: "thinking_delta", thinking: "The user wants Rome's weather" } }),
      ev("content_block_delta", { index: 0, delta: { type: "thinking_delta", thinking: "; call the tool." } }),
      ev("content_block_delta", { index: 0, delta: { type: "signature_delta", signature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3h" } }),
      ev("content_block_stop", { index: 0 }),
      ev("content_block_start", { index: 1, content_block: { type: "text", text: "" } }),
      ev("content_block_delta", { index: 1, delta: { type: "text_delta", text: "Checking " } }),
      ev("content_block_delta", { index: 1, delta: { type: "text_delta", text: "Rome." } }),
      ev("content_block_stop", { index: 1 }),
      { type: "ping" },
      ev("content_block_start", { index: 2, content_block: { type: "tool_use", id: "toolu_01A09q90qw90lq917835lq9", name: "get_weather", input: {} } }),
      ...["", '{"city": ', '"Rome"}'].map((partial_json) => ev("content_block_delta", { index: 2, delta: { type: "input_json_delta", partial_json } })),
      ev("content_block_stop", { index: 2 }),
      ev("message_delta", { delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 89 } }),
      ev("message_stop"),
    ],
    true,
  );
}

describe("Anthropic messages, streamed", () => {
  test("thinking, text and input_json_delta reassembled; usage from message_start and message_delta", () => {
    const res = parseStreamSplitInvariant(streamReq(), sseResponse(thinkingToolStream(), [["request-id", "req_sse_a"]]));
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      providerRequestId: "req_sse_a",
      model: "claude-sonnet-4-5-20250929",
      content: "Checking Rome.",
      thinking: "The user wants Rome's weather; call the tool.",
      // The JSON text exactly as the model produced it, spacing included.
      toolCalls: [{ id: "toolu_01A09q90qw90lq917835lq9", name: "get_weather", arguments: '{"city": "Rome"}' }],
      finishReason: "tool_calls",
      rawFinishReason: "tool_use",
      usage: { promptTokens: 472, completionTokens: 89, cachedTokens: 128, cacheWriteTokens: 30 },
      // piece 0 is message_start, piece 1 the empty thinking block; the first thinking delta is piece 2
      firstTokenTs: 2020,
    });
  });

  test("a tool call with no input deltas gets its start input; pieces with several events", () => {
    const blocks = sseBlocks(
      [
        { type: "message_start", message: { id: "msg_2", model: "claude-haiku-4-5", usage: { input_tokens: 10, output_tokens: 1 } } },
        { type: "content_block_start", index: 0, content_block: { type: "tool_use", id: "toolu_2", name: "list_files", input: {} } },
        { type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: "" } },
        { type: "content_block_stop", index: 0 },
        { type: "message_delta", delta: { stop_reason: "tool_use" }, usage: { output_tokens: 12 } },
        { type: "message_stop" },
      ],
      true,
    );
    const res = parseStreamSplitInvariant(streamReq(), sseResponse([blocks.slice(0, 3).join(""), blocks.slice(3).join("")]));
    expect(res.toolCalls).toEqual([{ id: "toolu_2", name: "list_files", arguments: "{}" }]);
    expect(res.usage).toEqual({ promptTokens: 10, completionTokens: 12 });
    expect(res.firstTokenTs).toBeUndefined();
  });

  test("an error event mid-stream (overloaded)", () => {
    const blocks = thinkingToolStream();
    const pieces = [...blocks.slice(0, 3), ...sseBlocks([{ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }], true)];
    const res = parseAiResponse(streamReq(), sseResponse(pieces));
    expect(res).toMatchObject({
      statusCode: 200,
      success: false,
      error: { type: "overloaded_error", message: "Overloaded" },
      finishReason: "error",
      thinking: "The user wants Rome's weather",
    });
    expect(res.incomplete).toBeUndefined();
  });

  test("a stream cut mid-tool-call: partial text and arguments, incomplete", () => {
    const blocks = thinkingToolStream();
    const cutAt = blocks.findIndex((b) => b.includes('"Rome\\"}'));
    const res = parseAiResponse(streamReq(), sseResponse(blocks.slice(0, cutAt), [], { complete: false }));
    expect(res).toMatchObject({
      success: false, // the connection ended mid-body: not a success, whatever was seen
      error: { type: "connection_closed" },
      incomplete: true,
      content: "Checking Rome.",
      toolCalls: [{ id: "toolu_01A09q90qw90lq917835lq9", name: "get_weather", arguments: '{"city": ' }],
      usage: { promptTokens: 472, completionTokens: 2 },
    });
    expect(res.finishReason).toBeUndefined();
    // A clean close without message_stop is still an unfinished stream.
    expect(parseAiResponse(streamReq(), sseResponse(blocks.slice(0, -1))).incomplete).toBe(true);
  });

  test("undecodable events are counted, the rest still read", () => {
    const blocks = thinkingToolStream();
    const pieces = [...blocks.slice(0, 7), "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\n\n", ...blocks.slice(7)];
    const res = parseAiResponse(streamReq(), sseResponse(pieces));
    expect(res).toMatchObject({ content: "Checking Rome.", parseError: "1 stream event(s) could not be decoded", finishReason: "tool_calls" });
    expect(res.incomplete).toBeUndefined();
  });
});
