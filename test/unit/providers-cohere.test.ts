// Cohere chat v2 (plain and SSE), v1 chat stream (NDJSON) and embed, on wire bytes shaped like the real API.
import { describe, expect, test } from "bun:test";
import { cohereRoute, parseCohereRequest, parseCohereResponse } from "../../src/decode/providers/cohere.ts";
import type { EndpointMatch } from "../../src/spec/types.ts";
import { exchangeOf, httpRequest, httpResponse, providerParse } from "./providers-gemini-wire.ts";

const HOST = "api.cohere.com";
const match: EndpointMatch = { provider: "cohere", apiFormat: "cohere", host: HOST };
const HEADERS = { Authorization: "Bearer co-test-0123456789abcdefghij", "Content-Type": "application/json", "X-Client-Name": "cohere-ts" };
const RES = { "Content-Type": "application/json", "x-debug-trace-id": "abc", "num_tokens": "30" };

const parse = providerParse(parseCohereRequest, parseCohereResponse, match);

const chatBody = {
  model: "command-a-03-2025",
  messages: [
    { role: "system", content: "You help with weather." },
    { role: "user", content: [{ type: "text", text: "Weather in Toronto?" }] },
    { role: "assistant", tool_plan: "I will look it up.", tool_calls: [{ id: "get_weather_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Toronto"}' } }] },
    { role: "tool", tool_call_id: "get_weather_1", content: [{ type: "document", document: { data: '{"tempC":5}' } }] },
  ],
  tools: [{ type: "function", function: { name: "get_weather", description: "Weather by city", parameters: { type: "object" } } }],
  temperature: 0.3,
  p: 0.8,
  max_tokens: 400,
  stop_sequences: ["--"],
};

describe("Cohere v2 chat", () => {
  test("routes", () => {
    expect(cohereRoute("/v2/chat")).toBe("chat-v2");
    expect(cohereRoute("/v1/chat")).toBe("chat-v1");
    expect(cohereRoute("/v2/embed")).toBe("embed");
    expect(cohereRoute("/v2/rerank")).toBeUndefined();
  });

  test("plain: tool history in, text answer out with tokens and billed units", () => {
    const request = httpRequest("POST", "/v2/chat", HOST, HEADERS, JSON.stringify(chatBody));
    const body = {
      id: "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
      message: { role: "assistant", content: [{ type: "text", text: "It is 5°C in Toronto." }] },
      finish_reason: "COMPLETE",
      usage: { billed_units: { input_tokens: 50, output_tokens: 9 }, tokens: { input_tokens: 820, output_tokens: 9 } },
    };
    const { req, res } = parse(request, httpResponse(200, RES, [JSON.stringify(body)]));
    expect(req).toEqual({
      provider: "cohere",
      apiFormat: "cohere",
      endpoint: `https://${HOST}/v2/chat`,
      requestType: "chat",
      model: "command-a-03-2025",
      streaming: false,
      system: "You help with weather.",
      messages: [
        { role: "user", content: "Weather in Toronto?" },
        { role: "assistant", content: "I will look it up.", toolCalls: [{ id: "get_weather_1", name: "get_weather", arguments: '{"city":"Toronto"}' }] },
        { role: "tool", toolCallId: "get_weather_1" },
      ],
      tools: [{ name: "get_weather", type: "function", description: "Weather by city" }],
      parameters: { temperature: 0.3, top_p: 0.8, max_tokens: 400, stop: ["--"] },
      auth: { type: "api_key", keyHash: expect.stringMatching(/^sha256:/) },
    });
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      providerRequestId: "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
      content: "It is 5°C in Toronto.",
      toolCalls: [],
      finishReason: "stop",
      rawFinishReason: "COMPLETE",
      usage: { promptTokens: 820, completionTokens: 9 },
    });
  });

  test("SSE stream with a tool plan and a streamed tool call", () => {
    const request = httpRequest("POST", "/v2/chat", HOST, HEADERS, JSON.stringify({ ...chatBody, messages: chatBody.messages.slice(0, 2), stream: true }));
    const sse = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    const events = [
      sse("message-start", { id: "msg-7", delta: { message: { role: "assistant", content: [], tool_plan: "", tool_calls: [], citations: [] } } }),
      sse("tool-plan-delta", { delta: { message: { tool_plan: "I will check " } } }) + sse("tool-plan-delta", { delta: { message: { tool_plan: "the weather." } } }),
      sse("tool-call-start", { index: 0, delta: { message: { tool_calls: { id: "get_weather_x1", type: "function", function: { name: "get_weather", arguments: "" } } } } }),
      sse("tool-call-delta", { index: 0, delta: { message: { tool_calls: { function: { arguments: '{"city":' } } } } }),
      sse("tool-call-delta", { index: 0, delta: { message: { tool_calls: { function: { arguments: '"Toronto"}' } } } } }) + sse("tool-call-end", { index: 0 }),
      sse("message-end", { delta: { finish_reason: "TOOL_CALL", usage: { billed_units: { input_tokens: 30, output_tokens: 21 }, tokens: { input_tokens: 900, output_tokens: 40 } } } }),
    ];
    const { req, res } = parse(request, httpResponse(200, { "Content-Type": "text/event-stream" }, events));
    expect(req.streaming).toBe(true);
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      providerRequestId: "msg-7",
      thinking: "I will check the weather.",
      toolCalls: [{ id: "get_weather_x1", name: "get_weather", arguments: '{"city":"Toronto"}' }],
      finishReason: "tool_calls",
      rawFinishReason: "TOOL_CALL",
      usage: { promptTokens: 900, completionTokens: 40 },
      firstTokenTs: 30,
    });
  });

  test("SSE text stream cut before message-end is incomplete; 429 error", () => {
    const request = httpRequest("POST", "/v2/chat", HOST, HEADERS, JSON.stringify({ model: "command-r", messages: [{ role: "user", content: "hi" }], stream: true }));
    const parts = httpResponse(200, { "Content-Type": "text/event-stream" }, [
      'event: content-start\ndata: {"type":"content-start","index":0,"delta":{"message":{"content":{"type":"text","text":""}}}}\n\n',
      'event: content-delta\ndata: {"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"Hel"}}}}\n\n',
    ]);
    parts.pop();
    const ex = exchangeOf(request, parts);
    expect(parseCohereResponse(parseCohereRequest(ex.request, match)!, ex.response!)).toMatchObject({ content: "Hel", incomplete: true, firstTokenTs: 30 });

    const limited = exchangeOf(request, httpResponse(429, RES, ['{"id":"e1","message":"You are using a Trial key, which is limited to 10 API calls / minute."}']));
    const res = parseCohereResponse(parseCohereRequest(limited.request, match)!, limited.response!);
    expect(res.success).toBe(false);
    expect(res.error?.message).toContain("Trial key");
  });
});

describe("Cohere v1 and embed", () => {
  test("v1 chat NDJSON stream", () => {
    const request = httpRequest("POST", "/v1/chat", HOST, HEADERS, JSON.stringify({ model: "command-r", message: "Hi", preamble: "Be nice.", chat_history: [{ role: "USER", message: "Hello" }, { role: "CHATBOT", message: "Hey" }], stream: true }));
    const lines = [
      '{"is_finished":false,"event_type":"stream-start","generation_id":"gen-1"}\n',
      '{"is_finished":false,"event_type":"text-generation","text":"Hi"}\n{"is_finished":false,"event_type":"text-generation","text":" there"}\n',
      '{"is_finished":true,"event_type":"stream-end","response":{"response_id":"r","text":"Hi there","generation_id":"gen-1","finish_reason":"COMPLETE","meta":{"billed_units":{"input_tokens":5,"output_tokens":2},"tokens":{"input_tokens":70,"output_tokens":2}}},"finish_reason":"COMPLETE"}\n',
    ];
    const { req, res } = parse(request, httpResponse(200, { "Content-Type": "application/stream+json" }, lines));
    expect(req).toMatchObject({ system: "Be nice.", messages: [{ role: "user", content: "Hello" }, { role: "assistant", content: "Hey" }, { role: "user", content: "Hi" }], streaming: true });
    expect(res).toMatchObject({ providerRequestId: "gen-1", content: "Hi there", finishReason: "stop", usage: { promptTokens: 70, completionTokens: 2 }, firstTokenTs: 30 });
    expect(res.incomplete).toBeUndefined();
  });

  test("v2 embed", () => {
    const request = httpRequest("POST", "/v2/embed", HOST, HEADERS, JSON.stringify({ model: "embed-v4.0", texts: ["a", "b"], input_type: "search_document", embedding_types: ["float"] }));
    const { req, res } = parse(request, httpResponse(200, RES, [JSON.stringify({ id: "emb-1", embeddings: { float: [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]] }, texts: ["a", "b"], meta: { billed_units: { input_tokens: 2 } } })]));
    expect(req).toMatchObject({ requestType: "embedding", model: "embed-v4.0", inputCount: 2 });
    expect(res).toEqual({ statusCode: 200, success: true, providerRequestId: "emb-1", toolCalls: [], dimensions: 3, usage: { promptTokens: 2 } });
  });
});
