// Bedrock runtime parsing on wire bytes shaped like the real API; stream bodies are encoded by the
// AWS SDK's own event-stream codec.
import { describe, expect, test } from "bun:test";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { keyFingerprint } from "../../src/decode/providers/common.ts";
import { bedrockRoute, parseBedrockRequest, parseBedrockResponse } from "../../src/decode/providers/bedrock.ts";
import type { EndpointMatch } from "../../src/spec/types.ts";
import { cat, exchangeOf, httpRequest, httpResponse, providerParse } from "./providers-gemini-wire.ts";

const HOST = "bedrock-runtime.us-east-1.amazonaws.com";
const match: EndpointMatch = { provider: "aws_bedrock", apiFormat: "bedrock", host: HOST };
const ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE";
const SIGV4 = {
  Authorization: `AWS4-HMAC-SHA256 Credential=${ACCESS_KEY_ID}/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7`,
  "X-Amz-Date": "20260101T000000Z",
  "Content-Type": "application/json",
  "User-Agent": "aws-sdk-js/3.700.0 ua/2.1 os/linux lang/js api/bedrock-runtime#3.700.0",
};
const RES_HEADERS = { "Content-Type": "application/json", "x-amzn-RequestId": "8b2c4a1e-1111-2222-3333-444455556666" };
const STREAM_HEADERS = { "Content-Type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": "8b2c4a1e-1111-2222-3333-444455556666" };

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const event = (type: string, payload: unknown) =>
  codec.encode({
    headers: {
      ":event-type": { type: "string", value: type },
      ":content-type": { type: "string", value: "application/json" },
      ":message-type": { type: "string", value: "event" },
    },
    body: fromUtf8(JSON.stringify(payload)),
  });
const chunk = (inner: unknown) => event("chunk", { bytes: Buffer.from(JSON.stringify(inner)).toString("base64"), p: "abcdefgh" });
const exception = (type: string, message: string) =>
  codec.encode({
    headers: {
      ":exception-type": { type: "string", value: type },
      ":content-type": { type: "string", value: "application/json" },
      ":message-type": { type: "string", value: "exception" },
    },
    body: fromUtf8(JSON.stringify({ message })),
  });

const parse = providerParse(parseBedrockRequest, parseBedrockResponse, match);

const CLAUDE = "anthropic.claude-3-5-sonnet-20241022-v2:0";
const CLAUDE_PATH = encodeURIComponent(CLAUDE);

describe("Bedrock routes and auth", () => {
  test("model id is URL-decoded, operations recognised", () => {
    expect(bedrockRoute(`/model/${CLAUDE_PATH}/converse-stream`)).toEqual({ modelId: CLAUDE, operation: "converse-stream" });
    expect(bedrockRoute("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.amazon.nova-pro-v1%3A0/invoke")).toEqual({
      modelId: "arn:aws:bedrock:us-east-1:123:inference-profile/us.amazon.nova-pro-v1:0",
      operation: "invoke",
    });
    expect(bedrockRoute("/guardrail/abc/version/1/apply")).toBeUndefined();
  });
});

describe("Converse", () => {
  const body = {
    messages: [
      { role: "user", content: [{ text: "Weather in Seattle?" }] },
      { role: "assistant", content: [{ toolUse: { toolUseId: "tooluse_1", name: "get_weather", input: { city: "Seattle" } } }] },
      { role: "user", content: [{ toolResult: { toolUseId: "tooluse_1", content: [{ json: { tempF: 55 } }], status: "success" } }] },
    ],
    system: [{ text: "Be brief." }],
    inferenceConfig: { maxTokens: 512, temperature: 0.5, topP: 0.9 },
    toolConfig: { tools: [{ toolSpec: { name: "get_weather", description: "Current weather", inputSchema: { json: { type: "object" } } } }], toolChoice: { auto: {} } },
  };

  test("request with tool history, SigV4 → AKIA + fingerprint; answer with text, tool use and cache usage", () => {
    const request = httpRequest("POST", `/model/${CLAUDE_PATH}/converse`, HOST, SIGV4, JSON.stringify(body));
    const response = {
      output: { message: { role: "assistant", content: [{ text: "Checking forecast." }, { toolUse: { toolUseId: "tooluse_2", name: "get_weather", input: { city: "Seattle", days: 2 } } }] } },
      stopReason: "tool_use",
      usage: { inputTokens: 410, outputTokens: 38, totalTokens: 448, cacheReadInputTokens: 300, cacheWriteInputTokens: 0 },
      metrics: { latencyMs: 1234 },
    };
    const { req, res } = parse(request, httpResponse(200, RES_HEADERS, [JSON.stringify(response)]));
    expect(req).toEqual({
      provider: "aws_bedrock",
      apiFormat: "bedrock",
      endpoint: `https://${HOST}/model/${CLAUDE_PATH}/converse`,
      requestType: "chat",
      model: CLAUDE,
      streaming: false,
      messages: [
        { role: "user", content: "Weather in Seattle?" },
        { role: "assistant", toolCalls: [{ id: "tooluse_1", name: "get_weather", arguments: '{"city":"Seattle"}' }] },
        { role: "tool", toolCallId: "tooluse_1", content: '{"tempF":55}', isError: false },
      ],
      system: "Be brief.",
      tools: [{ name: "get_weather", type: "function", description: "Current weather" }],
      toolChoice: "auto",
      parameters: { temperature: 0.5, top_p: 0.9, max_tokens: 512 },
      auth: { type: "api_key", keyPrefix: "AKIA", keyHash: keyFingerprint(ACCESS_KEY_ID) },
    });
    expect(JSON.stringify(req)).not.toContain(ACCESS_KEY_ID);
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      providerRequestId: "8b2c4a1e-1111-2222-3333-444455556666",
      content: "Checking forecast.",
      toolCalls: [{ id: "tooluse_2", name: "get_weather", arguments: '{"city":"Seattle","days":2}' }],
      finishReason: "tool_calls",
      rawFinishReason: "tool_use",
      usage: { promptTokens: 410, completionTokens: 38, totalTokens: 448, cachedTokens: 300, cacheWriteTokens: 0 },
    });
  });

  test("ConverseStream: text, reasoning and tool-use deltas, metadata usage; temporary credentials → ASIA", () => {
    const headers = { ...SIGV4, Authorization: SIGV4.Authorization.replace(ACCESS_KEY_ID, "ASIAXYZXYZXYZXYZXYZX"), "X-Amz-Security-Token": "FwoGZXIvYXdzEBY-session-token" };
    const request = httpRequest("POST", `/model/${CLAUDE_PATH}/converse-stream`, HOST, headers, JSON.stringify({ messages: [{ role: "user", content: [{ text: "hi" }] }] }));
    const events = [
      event("messageStart", { role: "assistant", p: "abcd" }),
      event("contentBlockDelta", { contentBlockIndex: 0, delta: { reasoningContent: { text: "User greets." } }, p: "ab" }),
      event("contentBlockDelta", { contentBlockIndex: 1, delta: { text: "Hello" }, p: "ab" }),
      cat(event("contentBlockDelta", { contentBlockIndex: 1, delta: { text: " there" } }), event("contentBlockStop", { contentBlockIndex: 1 })),
      event("contentBlockStart", { contentBlockIndex: 2, start: { toolUse: { toolUseId: "tooluse_9", name: "lookup" } } }),
      cat(event("contentBlockDelta", { contentBlockIndex: 2, delta: { toolUse: { input: '{"q":' } } }), event("contentBlockDelta", { contentBlockIndex: 2, delta: { toolUse: { input: '"x"}' } } })),
      cat(event("contentBlockStop", { contentBlockIndex: 2 }), event("messageStop", { stopReason: "tool_use" })),
      event("metadata", { usage: { inputTokens: 12, outputTokens: 20, totalTokens: 32 }, metrics: { latencyMs: 400 } }),
    ];
    const { req, res } = parse(request, httpResponse(200, STREAM_HEADERS, events));
    expect(req.streaming).toBe(true);
    expect(req.auth).toEqual({ type: "api_key", keyPrefix: "ASIA", keyHash: keyFingerprint("ASIAXYZXYZXYZXYZXYZX") });
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      providerRequestId: "8b2c4a1e-1111-2222-3333-444455556666",
      content: "Hello there",
      thinking: "User greets.",
      toolCalls: [{ id: "tooluse_9", name: "lookup", arguments: '{"q":"x"}' }],
      finishReason: "tool_calls",
      rawFinishReason: "tool_use",
      usage: { promptTokens: 12, completionTokens: 20, totalTokens: 32 },
      firstTokenTs: 30,
    });
  });

  test("ConverseStream: an exception message, a corrupted message, a cut stream", () => {
    const request = httpRequest("POST", `/model/${CLAUDE_PATH}/converse-stream`, HOST, SIGV4, '{"messages":[{"role":"user","content":[{"text":"hi"}]}]}');
    const bad = event("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "corrupt" } });
    bad[bad.length - 6]! ^= 0xff;
    const ex = exchangeOf(
      request,
      httpResponse(200, STREAM_HEADERS, [event("messageStart", { role: "assistant" }), event("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "Hi" } }), bad, exception("throttlingException", "Too many requests, please wait before trying again.")]),
    );
    const res = parseBedrockResponse(parseBedrockRequest(ex.request, match)!, ex.response!);
    expect(res).toMatchObject({
      success: false,
      content: "Hi",
      error: { type: "throttlingException", message: "Too many requests, please wait before trying again." },
      finishReason: "error",
      parseError: "1 stream message(s) could not be decoded (event stream: message CRC mismatch (message skipped))",
    });
    // Cut after two deltas (no messageStop): what arrived is kept, marked incomplete.
    const parts = httpResponse(200, STREAM_HEADERS, [event("messageStart", { role: "assistant" }), event("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "Hel" } }), event("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "lo" } })]);
    parts.pop();
    const cut = exchangeOf(request, [...parts.slice(0, -1), parts[parts.length - 1]!.subarray(0, 20)]);
    expect(parseBedrockResponse(parseBedrockRequest(cut.request, match)!, cut.response!)).toMatchObject({ success: true, content: "Hel", incomplete: true });
  });

  test("HTTP error with x-amzn-ErrorType", () => {
    const request = httpRequest("POST", "/model/amazon.nova-pro-v1%3A0/converse", HOST, SIGV4, '{"messages":[]}');
    const { res } = parse(
      request,
      httpResponse(400, { ...RES_HEADERS, "x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/" }, ['{"message":"A conversation must start with a user message."}']),
    );
    expect(res).toEqual({
      statusCode: 400,
      success: false,
      providerRequestId: "8b2c4a1e-1111-2222-3333-444455556666",
      toolCalls: [],
      error: { type: "ValidationException", message: "A conversation must start with a user message.", code: "400" },
    });
  });
});

describe("InvokeModel", () => {
  const anthropicBody = {
    anthropic_version: "bedrock-2023-05-31",
    max_tokens: 300,
    system: "You are a poet.",
    messages: [{ role: "user", content: "Write a haiku." }],
    temperature: 0.7,
  };

  test("Anthropic body and message; token counts also in headers", () => {
    const request = httpRequest("POST", `/model/${CLAUDE_PATH}/invoke`, HOST, SIGV4, JSON.stringify(anthropicBody));
    const message = {
      id: "msg_bdrk_01ABC",
      type: "message",
      role: "assistant",
      model: "claude-3-5-sonnet-20241022",
      content: [{ type: "text", text: "Autumn moonlight—\na worm digs silently\ninto the chestnut." }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: 18, output_tokens: 22 },
    };
    const { req, res } = parse(
      request,
      httpResponse(200, { ...RES_HEADERS, "X-Amzn-Bedrock-Input-Token-Count": "18", "X-Amzn-Bedrock-Output-Token-Count": "22", "X-Amzn-Bedrock-Invocation-Latency": "900" }, [JSON.stringify(message)]),
    );
    expect(req).toMatchObject({ model: CLAUDE, streaming: false, system: "You are a poet.", messages: [{ role: "user", content: "Write a haiku." }], parameters: { max_tokens: 300, temperature: 0.7 } });
    expect(res).toMatchObject({
      success: true,
      providerRequestId: "8b2c4a1e-1111-2222-3333-444455556666",
      content: "Autumn moonlight—\na worm digs silently\ninto the chestnut.",
      finishReason: "stop",
      usage: { promptTokens: 18, completionTokens: 22 },
    });
  });

  test("InvokeModelWithResponseStream with Anthropic chunks and invocation metrics", () => {
    const request = httpRequest("POST", `/model/${CLAUDE_PATH}/invoke-with-response-stream`, HOST, SIGV4, JSON.stringify(anthropicBody));
    const events = [
      chunk({ type: "message_start", message: { id: "msg_bdrk_02", type: "message", role: "assistant", model: "claude-3-5-sonnet-20241022", content: [], usage: { input_tokens: 18, output_tokens: 1 } } }),
      chunk({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
      chunk({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Autumn" } }),
      chunk({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: " moonlight" } }),
      cat(chunk({ type: "content_block_stop", index: 0 }), chunk({ type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 9 } })),
      chunk({ type: "message_stop", "amazon-bedrock-invocationMetrics": { inputTokenCount: 18, outputTokenCount: 9, invocationLatency: 800, firstByteLatency: 300 } }),
    ];
    const { req, res } = parse(request, httpResponse(200, STREAM_HEADERS, events));
    expect(req.streaming).toBe(true);
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      providerRequestId: "8b2c4a1e-1111-2222-3333-444455556666",
      model: "claude-3-5-sonnet-20241022",
      content: "Autumn moonlight",
      toolCalls: [],
      finishReason: "stop",
      rawFinishReason: "end_turn",
      usage: { promptTokens: 18, completionTokens: 9 },
      firstTokenTs: 40,
    });
  });

  test("Nova body streamed, Llama whole, Titan embeddings", () => {
    const nova = httpRequest(
      "POST",
      "/model/us.amazon.nova-lite-v1%3A0/invoke-with-response-stream",
      HOST,
      SIGV4,
      JSON.stringify({ schemaVersion: "messages-v1", system: [{ text: "Short answers." }], messages: [{ role: "user", content: [{ text: "2+2?" }] }], inferenceConfig: { max_new_tokens: 50, temperature: 0.1 } }),
    );
    const { req: novaReq, res: novaRes } = parse(
      nova,
      httpResponse(200, STREAM_HEADERS, [
        chunk({ messageStart: { role: "assistant" } }),
        chunk({ contentBlockDelta: { delta: { text: "4" }, contentBlockIndex: 0 } }),
        chunk({ contentBlockStop: { contentBlockIndex: 0 } }),
        chunk({ messageStop: { stopReason: "end_turn" } }),
        chunk({ metadata: { usage: { inputTokens: 7, outputTokens: 1 } }, "amazon-bedrock-invocationMetrics": { inputTokenCount: 7, outputTokenCount: 1, invocationLatency: 100, firstByteLatency: 50 } }),
      ]),
    );
    expect(novaReq).toMatchObject({ model: "us.amazon.nova-lite-v1:0", system: "Short answers.", messages: [{ role: "user", content: "2+2?" }], parameters: { max_tokens: 50, temperature: 0.1 } });
    expect(novaRes).toMatchObject({ content: "4", finishReason: "stop", usage: { promptTokens: 7, completionTokens: 1 }, firstTokenTs: 30 });
    expect(novaRes.incomplete).toBeUndefined();

    const llama = exchangeOf(
      httpRequest("POST", "/model/meta.llama3-1-8b-instruct-v1%3A0/invoke", HOST, SIGV4, JSON.stringify({ prompt: "Say hi", max_gen_len: 20, temperature: 0.3 })),
      httpResponse(200, RES_HEADERS, [JSON.stringify({ generation: "Hi!", prompt_token_count: 4, generation_token_count: 3, stop_reason: "stop" })]),
    );
    const llamaReq = parseBedrockRequest(llama.request, match)!;
    expect(llamaReq.messages).toEqual([{ role: "user", content: "Say hi" }]);
    expect(parseBedrockResponse(llamaReq, llama.response!)).toMatchObject({ content: "Hi!", finishReason: "stop", usage: { promptTokens: 4, completionTokens: 3 } });

    const embed = exchangeOf(
      httpRequest("POST", "/model/amazon.titan-embed-text-v2%3A0/invoke", HOST, SIGV4, JSON.stringify({ inputText: "hello", dimensions: 4 })),
      httpResponse(200, RES_HEADERS, [JSON.stringify({ embedding: [0.1, 0.2, 0.3, 0.4], inputTextTokenCount: 2 })]),
    );
    const embedReq = parseBedrockRequest(embed.request, match)!;
    expect(embedReq).toMatchObject({ requestType: "embedding", inputCount: 1 });
    expect(parseBedrockResponse(embedReq, embed.response!)).toMatchObject({ dimensions: 4, usage: { promptTokens: 2 } });
  });

  test("a Bedrock API key (bearer ABSK…) and GET requests", () => {
    const ex = exchangeOf(
      httpRequest("POST", `/model/${CLAUDE_PATH}/invoke`, HOST, { Authorization: "Bearer ABSKQmVkcm9ja0FQSUtleS1leGFtcGxlLWtleQ==" }, JSON.stringify(anthropicBody)),
      httpResponse(200, RES_HEADERS, ["{}"]),
    );
    expect(parseBedrockRequest(ex.request, match)!.auth).toMatchObject({ type: "api_key", keyPrefix: "ABSK" });
    const get = exchangeOf(httpRequest("GET", "/foundation-models", HOST, SIGV4), httpResponse(200, RES_HEADERS, ["{}"]));
    expect(parseBedrockRequest(get.request, match)).toBeUndefined();
  });
});
