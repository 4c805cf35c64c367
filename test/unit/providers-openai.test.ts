import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { parseAiRequest, parseAiResponse } from "../../src/decode/providers/index.ts";
import { authFromHeaders } from "../../src/decode/providers/common.ts";
import {
  jsonResponse,
  match,
  OPENAI,
  parseRequest,
  parseStreamSplitInvariant,
  request,
  sseBlocks,
  sseResponse,
} from "./fixtures/providers.ts";

const KEY = "sk-proj-E2eTestKey0123456789abcdefSECRET";
const bearer = (key: string): [string, string] => ["authorization", `Bearer ${key}`];
const fingerprint = (key: string) => `sha256:${createHash("sha256").update(key).digest("hex").slice(0, 16)}`;

const weatherTool = {
  type: "function",
  function: { name: "get_weather", description: "Current weather for a city", parameters: { type: "object", properties: { city: { type: "string" } } } },
};

describe("OpenAI chat completions, request", () => {
  test("messages, system prompt, tools, parameters and the key's prefix and fingerprint", () => {
    const req = parseRequest(
      request(
        "/v1/chat/completions",
        {
          model: "gpt-4o-mini",
          messages: [
            { role: "system", content: "You are terse." },
            { role: "user", content: "What is the weather in Paris?" },
          ],
          tools: [weatherTool],
          tool_choice: "auto",
          temperature: 0.2,
          top_p: 0.9,
          max_tokens: 256,
          frequency_penalty: 0.5,
          presence_penalty: -0.5,
          stop: "END",
        },
        { headers: [bearer(KEY)] },
      ),
    );
    expect(req).toEqual({
      provider: "openai",
      apiFormat: "openai",
      api: "openai-chat",
      endpoint: "https://api.openai.com/v1/chat/completions",
      requestType: "chat",
      model: "gpt-4o-mini",
      streaming: false,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "What is the weather in Paris?" },
      ],
      tools: [{ name: "get_weather", type: "function", description: "Current weather for a city" }],
      toolChoice: "auto",
      parameters: { temperature: 0.2, top_p: 0.9, max_tokens: 256, frequency_penalty: 0.5, presence_penalty: -0.5, stop: ["END"] },
      auth: { type: "api_key", keyPrefix: "sk-proj-", keyHash: fingerprint(KEY) },
    });
    expect(req.auth.keyHash).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(JSON.stringify(req)).not.toContain("SECRET");
  });

  test("parts content with images, developer role, tool-call history, forced tool, reasoning effort", () => {
    const req = parseRequest(
      request("/v1/chat/completions", {
        model: "o4-mini",
        messages: [
          { role: "developer", content: [{ type: "text", text: "Be brief." }] },
          {
            role: "user",
            content: [
              { type: "text", text: "Compare these" },
              { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
              { type: "image_url", image_url: { url: "https://example.com/b.png", detail: "low" } },
              { type: "text", text: "two pictures." },
            ],
          },
          { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } }] },
          { role: "tool", tool_call_id: "call_1", content: '{"temp": 3}' },
        ],
        tools: [weatherTool],
        tool_choice: { type: "function", function: { name: "get_weather" } },
        max_completion_tokens: 1000,
        max_tokens: 5,
        reasoning_effort: "high",
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    expect(req.streaming).toBe(true);
    expect(req.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Compare these\ntwo pictures.", imageCount: 2 },
      { role: "assistant", toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Oslo"}' }] },
      { role: "tool", toolCallId: "call_1", content: '{"temp": 3}' },
    ]);
    expect(req.toolChoice).toBe("specific");
    expect(req.parameters).toEqual({ max_tokens: 1000 });
    expect(req.thinking).toEqual({ enabled: true, effort: "high" });
  });

  test("OpenAI-compatible providers: Groq, Mistral, DeepSeek, Together, OpenRouter, xAI", () => {
    const cases = [
      ["groq", "api.groq.com", "/openai/v1/chat/completions", "gsk_abcdefghijklmnopqrstuvwxyz0123", "gsk_"],
      ["mistral", "api.mistral.ai", "/v1/chat/completions", "AbCdEfGhIjKlMnOpQrStUvWxYz012345", undefined],
      ["deepseek", "api.deepseek.com", "/chat/completions", "sk-0123456789abcdef0123456789abcdef", "sk-"],
      ["together", "api.together.xyz", "/v1/chat/completions", "0123456789abcdef0123456789abcdef01234567", undefined],
      ["openrouter", "openrouter.ai", "/api/v1/chat/completions", "sk-or-v1-0123456789abcdef0123456789", "sk-or-"],
      ["xai", "api.x.ai", "/v1/chat/completions", "xai-AbCdEfGhIjKlMnOpQrStUvWx", "xai-"],
    ] as const;
    for (const [provider, host, path, key, prefix] of cases) {
      const req = parseRequest(request(path, { model: "m-1", messages: [{ role: "user", content: "hi" }] }, { host, headers: [bearer(key)] }), match(provider, host));
      expect(req.provider).toBe(provider);
      expect(req.endpoint).toBe(`https://${host}${path}`);
      expect(req.requestType).toBe("chat");
      expect(req.auth).toEqual({ type: "api_key", ...(prefix && { keyPrefix: prefix }), keyHash: fingerprint(key) });
    }
  });

  test("Azure OpenAI: the deployment is the model when the body has none; api-key header; no query in the endpoint", () => {
    const key = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    const host = "contoso.openai.azure.com";
    const req = parseRequest(
      request("/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21", { messages: [{ role: "user", content: "hi" }] }, { host, headers: [["api-key", key]] }),
      match("azure_openai", host),
    );
    expect(req.model).toBe("gpt-4o-prod");
    expect(req.endpoint).toBe(`https://${host}/openai/deployments/gpt-4o-prod/chat/completions`);
    expect(req.auth).toEqual({ type: "api_key", keyHash: fingerprint(key) });
    const withModel = parseRequest(
      request("/openai/deployments/dep/chat/completions?api-version=1", { model: "gpt-4o", messages: [] }, { host }),
      match("azure_openai", host),
    );
    expect(withModel.model).toBe("gpt-4o");
  });

  test("not AI calls: GET /v1/models, health checks, files", () => {
    expect(parseAiRequest(request("/v1/models", "", { method: "GET" }), OPENAI)).toBeUndefined();
    expect(parseAiRequest(request("/v1/chat/completions", "", { method: "GET" }), OPENAI)).toBeUndefined();
    expect(parseAiRequest(request("/health", "{}"), OPENAI)).toBeUndefined();
    expect(parseAiRequest(request("/v1/files", "{}"), OPENAI)).toBeUndefined();
    expect(parseAiRequest(request("/v1/responses/resp_1/cancel", "{}"), OPENAI)).toBeUndefined();
  });

  test("a body cut by the capture limit or malformed: still reported, with what can be salvaged", () => {
    const full = JSON.stringify({ model: "gpt-4.1", stream: true, messages: [{ role: "user", content: "x".repeat(500) }] });
    const cut = parseRequest(request("/v1/chat/completions", full.slice(0, 200), { truncated: true }));
    expect(cut.model).toBe("gpt-4.1");
    expect(cut.streaming).toBe(true);
    expect(cut.messages).toEqual([]);
    expect(cut.parseError).toContain("truncated");

    const bad = parseRequest(request("/v1/chat/completions", "{not json"));
    expect(bad.parseError).toContain("malformed JSON");
    expect(bad.model).toBeUndefined();
    expect(parseRequest(request("/v1/chat/completions", "[1,2]")).parseError).toBe("JSON body is not an object");
    expect(parseRequest(request("/v1/chat/completions", "")).parseError).toBe("empty body");
  });

  test("auth: none, OAuth/JWT bearer, unknown scheme, unknown key shape", () => {
    expect(authFromHeaders([])).toEqual({ type: "none" });
    const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln";
    expect(authFromHeaders([bearer(jwt)])).toEqual({ type: "oauth", keyHash: fingerprint(jwt) });
    expect(authFromHeaders([["Authorization", "Basic dXNlcjpwYXNz"]])).toEqual({ type: "unknown" });
    // A prefix is only reported when the key really carries a known one, and never more than 8 chars.
    expect(authFromHeaders([bearer("sk-svcacct-0123456789abcdefghij")]).keyPrefix).toBe("sk-");
    expect(authFromHeaders([bearer("sk-")]).keyPrefix).toBeUndefined();
    expect(authFromHeaders([bearer("token-0123456789abcdef")]).keyPrefix).toBeUndefined();
  });
});

const chatReq = () => parseRequest(request("/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], tools: [weatherTool] }));
const streamReq = () =>
  parseRequest(request("/v1/chat/completions", { model: "gpt-4o", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "hi" }] }));

describe("OpenAI chat completions, response", () => {
  test("a whole response with a tool call, cached and reasoning tokens", () => {
    const res = parseAiResponse(
      chatReq(),
      jsonResponse(
        200,
        {
          id: "chatcmpl-AbC123xyz",
          object: "chat.completion",
          created: 1732000000,
          model: "gpt-4o-mini-2024-07-18",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: null, tool_calls: [{ id: "call_Wx9fQ2pL", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }], refusal: null },
              logprobs: null,
              finish_reason: "tool_calls",
            },
          ],
          usage: {
            prompt_tokens: 82,
            completion_tokens: 17,
            total_tokens: 99,
            prompt_tokens_details: { cached_tokens: 64, audio_tokens: 0 },
            completion_tokens_details: { reasoning_tokens: 5, audio_tokens: 0 },
          },
          system_fingerprint: "fp_0ba0d124f1",
        },
        [["x-request-id", "req_7f3a9c"]],
      ),
    );
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      providerRequestId: "req_7f3a9c",
      model: "gpt-4o-mini-2024-07-18",
      toolCalls: [{ id: "call_Wx9fQ2pL", name: "get_weather", arguments: '{"city":"Paris"}' }],
      finishReason: "tool_calls",
      rawFinishReason: "tool_calls",
      usage: { promptTokens: 82, completionTokens: 17, totalTokens: 99, cachedTokens: 64, reasoningTokens: 5 },
    });
  });

  test("text content; the body id stands in for a missing x-request-id; finish reasons mapped", () => {
    const body = (finish: string) => ({ id: "chatcmpl-9", model: "m", choices: [{ index: 0, message: { role: "assistant", content: "Hello!" }, finish_reason: finish }] });
    const res = parseAiResponse(chatReq(), jsonResponse(200, body("stop")));
    expect(res).toMatchObject({ providerRequestId: "chatcmpl-9", content: "Hello!", finishReason: "stop" });
    expect(res.incomplete).toBeUndefined();
    const mapped = ["length", "content_filter", "function_call", "insufficient_system_resource"].map((f) => parseAiResponse(chatReq(), jsonResponse(200, body(f))).finishReason);
    expect(mapped).toEqual(["length", "content_filter", "tool_calls", "other"]);
  });

  test("DeepSeek reasoning_content becomes thinking; prompt_cache_hit_tokens become cached tokens", () => {
    const res = parseAiResponse(
      chatReq(),
      jsonResponse(200, {
        id: "x",
        model: "deepseek-reasoner",
        choices: [{ index: 0, message: { role: "assistant", content: "42", reasoning_content: "6 times 7" }, finish_reason: "stop" }],
        usage: { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30, prompt_cache_hit_tokens: 8, prompt_cache_miss_tokens: 2 },
      }),
    );
    expect(res).toMatchObject({ content: "42", thinking: "6 times 7", usage: { promptTokens: 10, cachedTokens: 8 } });
  });

  test("provider errors: OpenAI error body, non-JSON gateway page", () => {
    const rateLimited = parseAiResponse(
      chatReq(),
      jsonResponse(429, { error: { message: "Rate limit reached for requests", type: "requests", param: null, code: "rate_limit_exceeded" } }, [["x-request-id", "req_1"]]),
    );
    expect(rateLimited).toEqual({
      statusCode: 429,
      success: false,
      providerRequestId: "req_1",
      toolCalls: [],
      error: { type: "requests", message: "Rate limit reached for requests", code: "rate_limit_exceeded" },
    });
    const gateway = parseAiResponse(chatReq(), jsonResponse(502, "<html><body>Bad gateway</body></html>", [["content-type", "text/html"]]));
    expect(gateway.success).toBe(false);
    expect(gateway.error).toEqual({ type: "http_error", message: "<html><body>Bad gateway</body></html>", code: "502" });
    const numericCode = parseAiResponse(chatReq(), jsonResponse(400, { error: { message: "bad", type: "invalid_request_error", code: 400 } }));
    expect(numericCode.error).toEqual({ type: "invalid_request_error", message: "bad", code: "400" });
  });

  test("a body the HTTP decoder could not content-decode is not read as JSON", () => {
    const raw = { ...jsonResponse(200, "\x28\xb5\x2f\xfd garbage"), decodeError: "unsupported content-encoding: br2" };
    expect(parseAiResponse(chatReq(), raw)).toEqual({
      statusCode: 200,
      success: true,
      toolCalls: [],
      incomplete: true,
      parseError: "response body not decoded (unsupported content-encoding: br2)",
    });
    const failed = parseAiResponse(chatReq(), { ...raw, status: 503, reason: "Service Unavailable" });
    expect(failed.error).toEqual({ type: "http_error", message: "503 Service Unavailable", code: "503" });
  });

  test("malformed or cut JSON: marked incomplete with the reason, never thrown", () => {
    const bad = parseAiResponse(chatReq(), jsonResponse(200, '{"id":"chatcmpl-1","choices":[{"message":'));
    expect(bad).toMatchObject({ statusCode: 200, success: true, incomplete: true, toolCalls: [] });
    expect(bad.parseError).toContain("malformed JSON");
    const cut = parseAiResponse(chatReq(), jsonResponse(200, '{"id":"c","choices":[]}', [], { complete: false }));
    expect(cut.incomplete).toBe(true);
  });
});

/** The stream the OpenAI API sends for a text answer with include_usage, one event per flush. */
function textStream(): string[] {
  const base = { id: "chatcmpl-AbC123xyz", object: "chat.completion.chunk", created: 1732000000, model: "gpt-4o-2024-08-06", system_fingerprint: "fp_1" };
  const chunk = (delta: object, finish: string | null = null) => ({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null });
  return sseBlocks([
    chunk({ role: "assistant", content: "", refusal: null }),
    ...["Hello", ", Bonjour", ", Hola", "!"].map((t) => chunk({ content: t })),
    chunk({}, "stop"),
    { ...base, choices: [], usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } } },
    "[DONE]",
  ]);
}

describe("OpenAI chat completions, streamed", () => {
  test("text deltas reassembled, usage from the last chunk, first token at the first non-empty delta", () => {
    const res = parseStreamSplitInvariant(streamReq(), sseResponse(textStream(), [["x-request-id", "req_sse_1"]]));
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      providerRequestId: "req_sse_1",
      model: "gpt-4o-2024-08-06",
      content: "Hello, Bonjour, Hola!",
      toolCalls: [],
      finishReason: "stop",
      rawFinishReason: "stop",
      usage: { promptTokens: 12, completionTokens: 9, totalTokens: 21, cachedTokens: 0, reasoningTokens: 0 },
      // piece 0 (role, empty content) does not count; piece 1 ("Hello") arrived at 2010
      firstTokenTs: 2010,
    });
  });

  test("the first token's time is the arrival of the chunk that completed its event", () => {
    const blocks = textStream();
    // The "Hello" event is split across pieces 1 and 2: it is complete only when piece 2 arrives.
    const hello = blocks[1]!;
    const pieces = [blocks[0]!, hello.slice(0, 20), hello.slice(20), ...blocks.slice(2)];
    expect(parseAiResponse(streamReq(), sseResponse(pieces)).firstTokenTs).toBe(2020);
  });

  test("tool-call deltas merged by index into whole calls", () => {
    const base = { id: "chatcmpl-T", object: "chat.completion.chunk", created: 1, model: "gpt-4o-2024-08-06" };
    const chunk = (delta: object, finish: string | null = null) => ({ ...base, choices: [{ index: 0, delta, finish_reason: finish }] });
    const events: Array<object | string> = [chunk({ role: "assistant", content: null })];
    [
      { id: "call_paris1", args: ['{"ci', 'ty": "Pa', 'ris"}'] },
      { id: "call_tokyo2", args: ['{"city"', ': "Tokyo"}'] },
    ].forEach((c, index) => {
      events.push(chunk({ tool_calls: [{ index, id: c.id, type: "function", function: { name: "get_weather", arguments: "" } }] }));
      for (const part of c.args) events.push(chunk({ tool_calls: [{ index, function: { arguments: part } }] }));
    });
    events.push(chunk({}, "tool_calls"), { ...base, choices: [], usage: { prompt_tokens: 30, completion_tokens: 40, total_tokens: 70 } }, "[DONE]");
    const res = parseStreamSplitInvariant(streamReq(), sseResponse(sseBlocks(events)));
    expect(res.toolCalls).toEqual([
      { id: "call_paris1", name: "get_weather", arguments: '{"city": "Paris"}' },
      { id: "call_tokyo2", name: "get_weather", arguments: '{"city": "Tokyo"}' },
    ]);
    expect(res.content).toBeUndefined();
    expect(res.finishReason).toBe("tool_calls");
    expect(res.firstTokenTs).toBe(2010);
    expect(res.incomplete).toBeUndefined();
  });

  test("tool calls sent whole without an index (Gemini's and Mistral's compatible APIs)", () => {
    const chunk = (delta: object, finish: string | null = null) => ({ id: "x", model: "gemini-2.5-flash", choices: [{ index: 0, delta, finish_reason: finish }] });
    const events = [
      chunk({ role: "assistant", tool_calls: [{ id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] }),
      chunk({ tool_calls: [{ id: "call_b", type: "function", function: { name: "get_time", arguments: '{"tz":"CET"}' } }] }),
      chunk({}, "tool_calls"),
      "[DONE]",
    ];
    const res = parseStreamSplitInvariant(streamReq(), sseResponse(sseBlocks(events)));
    expect(res.toolCalls).toEqual([
      { id: "call_a", name: "get_weather", arguments: '{"city":"Paris"}' },
      { id: "call_b", name: "get_time", arguments: '{"tz":"CET"}' },
    ]);
  });

  test("Groq usage in x_groq, reasoning deltas, CRLF line endings", () => {
    const base = { id: "chatcmpl-g", object: "chat.completion.chunk", model: "openai/gpt-oss-20b" };
    const events = [
      { ...base, choices: [{ index: 0, delta: { role: "assistant", reasoning: "Think" } }] },
      { ...base, choices: [{ index: 0, delta: { reasoning: "ing." } }] },
      { ...base, choices: [{ index: 0, delta: { content: "Done." } }] },
      { ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }], x_groq: { id: "req_01g", usage: { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 } } },
      "[DONE]",
    ];
    const pieces = sseBlocks(events).map((b) => b.replace(/\n/g, "\r\n"));
    const res = parseStreamSplitInvariant(streamReq(), sseResponse(pieces));
    expect(res).toMatchObject({ thinking: "Thinking.", content: "Done.", usage: { promptTokens: 5, completionTokens: 6, totalTokens: 11 }, firstTokenTs: 2000 });
  });

  test("a stream cut before [DONE]: partial content, marked incomplete", () => {
    const blocks = textStream();
    const res = parseAiResponse(streamReq(), sseResponse(blocks.slice(0, 3), [], { complete: false }));
    expect(res).toMatchObject({ success: false, error: { type: "connection_closed" }, content: "Hello, Bonjour", incomplete: true });
    expect(res.usage).toBeUndefined();
    // Connection closed cleanly but the terminal event never came.
    expect(parseAiResponse(streamReq(), sseResponse(blocks.slice(0, 3))).incomplete).toBe(true);
    // Cut in the middle of an event: the half event is dropped and counted.
    const mid = parseAiResponse(streamReq(), sseResponse([...blocks.slice(0, 2), blocks[2]!.slice(0, 30)], [], { complete: false }));
    expect(mid).toMatchObject({ content: "Hello", incomplete: true, parseError: "1 stream event(s) could not be decoded" });
  });

  test("an error event inside a 200 stream", () => {
    const blocks = textStream();
    const pieces = [...blocks.slice(0, 2), ...sseBlocks([{ error: { message: "The server had an error", type: "server_error", code: null } }])];
    const res = parseAiResponse(streamReq(), sseResponse(pieces));
    expect(res).toMatchObject({ success: false, content: "Hello", finishReason: "error", error: { type: "server_error", message: "The server had an error" } });
    // The error is the stream's last word: the stream ended as the server meant it to.
    expect(res.incomplete).toBeUndefined();
  });

  test("a stream requested but an error answered as JSON", () => {
    const res = parseAiResponse(streamReq(), jsonResponse(401, { error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } }));
    expect(res).toMatchObject({ statusCode: 401, success: false, error: { code: "invalid_api_key" } });
  });
});

describe("OpenAI legacy completions", () => {
  const req = () => parseRequest(request("/v1/completions", { model: "gpt-3.5-turbo-instruct", prompt: "Say this is a test", max_tokens: 7, temperature: 0 }));

  test("request and whole response", () => {
    expect(req()).toMatchObject({ requestType: "completion", messages: [{ role: "user", content: "Say this is a test" }], parameters: { max_tokens: 7, temperature: 0 } });
    const res = parseAiResponse(
      req(),
      jsonResponse(200, {
        id: "cmpl-uqkvl",
        object: "text_completion",
        model: "gpt-3.5-turbo-instruct",
        choices: [{ text: "\n\nThis is indeed a test", index: 0, logprobs: null, finish_reason: "length" }],
        usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
      }),
    );
    expect(res).toMatchObject({ content: "\n\nThis is indeed a test", finishReason: "length", usage: { promptTokens: 5, completionTokens: 7, totalTokens: 12 } });
  });

  test("streamed", () => {
    const chunk = (text: string, finish: string | null = null) => ({ id: "cmpl-s", object: "text_completion", model: "gpt-3.5-turbo-instruct", choices: [{ text, index: 0, finish_reason: finish }] });
    const res = parseStreamSplitInvariant(req(), sseResponse(sseBlocks([chunk("This"), chunk(" is"), chunk("", "stop"), "[DONE]"])));
    expect(res).toMatchObject({ content: "This is", finishReason: "stop", firstTokenTs: 2000 });
  });
});

describe("OpenAI embeddings", () => {
  test("inputs counted, vector size and usage read", () => {
    const req = parseRequest(request("/v1/embeddings", { model: "text-embedding-3-small", input: ["alpha", "beta"], encoding_format: "float" }));
    expect(req).toMatchObject({ requestType: "embedding", model: "text-embedding-3-small", inputCount: 2, streaming: false, messages: [{ role: "user", content: "alpha\nbeta" }] });
    const res = parseAiResponse(
      req,
      jsonResponse(200, {
        object: "list",
        data: [0, 1].map((index) => ({ object: "embedding", index, embedding: Array.from({ length: 8 }, (_, i) => (index + 1) * 0.01 * i) })),
        model: "text-embedding-3-small",
        usage: { prompt_tokens: 4, total_tokens: 4 },
      }),
    );
    expect(res).toEqual({ statusCode: 200, success: true, toolCalls: [], model: "text-embedding-3-small", dimensions: 8, usage: { promptTokens: 4, totalTokens: 4 } });
  });

  test("single string, token arrays, base64 vectors", () => {
    expect(parseRequest(request("/v1/embeddings", { model: "m", input: "one" })).inputCount).toBe(1);
    expect(parseRequest(request("/v1/embeddings", { model: "m", input: [1, 2, 3] })).inputCount).toBe(1);
    expect(parseRequest(request("/v1/embeddings", { model: "m", input: [[1, 2], [3]] })).inputCount).toBe(2);
    const vector = Buffer.from(new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5]).buffer).toString("base64");
    const req = parseRequest(request("/v1/embeddings", { model: "m", input: "x" }));
    expect(parseAiResponse(req, jsonResponse(200, { data: [{ index: 0, embedding: vector }], usage: { prompt_tokens: 1, total_tokens: 1 } })).dimensions).toBe(5);
  });
});

describe("OpenAI Responses API", () => {
  const id = "resp_67ccd2bed1ec8190";
  const msgId = "msg_67ccd2bf17f0";
  const base = { id, object: "response", created_at: 1741290958, model: "gpt-4.1-2025-04-14", output: [] as unknown[], usage: null };

  function events(list: Array<[string, object]>): string[] {
    return sseBlocks(list.map(([type, data], n) => ({ type, sequence_number: n, ...data })), true);
  }

  test("request: input items, instructions as system, flat function tools and built-ins, reasoning", () => {
    const req = parseRequest(
      request("/v1/responses", {
        model: "gpt-5",
        instructions: "Talk like a pirate.",
        input: [
          { role: "user", content: [{ type: "input_text", text: "Weather in Paris?" }, { type: "input_image", image_url: "https://x/y.png" }] },
          { type: "function_call", call_id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}', id: "fc_1" },
          { type: "function_call_output", call_id: "call_1", output: '{"temp":18}' },
          { type: "reasoning", id: "rs_1", summary: [] },
          { type: "message", role: "assistant", content: [{ type: "output_text", text: "18 degrees." }] },
          { role: "user", content: "Thanks" },
        ],
        tools: [{ type: "function", name: "get_weather", description: "Weather", parameters: {} }, { type: "web_search_preview" }, { type: "file_search", vector_store_ids: ["vs_1"] }],
        tool_choice: "required",
        max_output_tokens: 500,
        temperature: 1,
        reasoning: { effort: "low", summary: "auto" },
      }),
    );
    expect(req).toMatchObject({
      requestType: "chat",
      model: "gpt-5",
      system: "Talk like a pirate.",
      messages: [
        { role: "user", content: "Weather in Paris?", imageCount: 1 },
        { role: "assistant", toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' }] },
        { role: "tool", toolCallId: "call_1", content: '{"temp":18}' },
        { role: "assistant", content: "18 degrees." },
        { role: "user", content: "Thanks" },
      ],
      tools: [
        { name: "get_weather", type: "function", description: "Weather" },
        { name: "web_search_preview", type: "other" },
        { name: "file_search", type: "file_search" },
      ],
      toolChoice: "required",
      parameters: { max_tokens: 500, temperature: 1 },
      thinking: { enabled: true, effort: "low" },
    });
    expect(parseRequest(request("/v1/responses", { model: "gpt-4.1", input: "Hi" })).messages).toEqual([{ role: "user", content: "Hi" }]);
  });

  test("streamed text: deltas, usage from response.completed", () => {
    const text = ["Packets ", "cross the proxy: ", "nothing lost."];
    const item = { id: msgId, type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text: text.join(""), annotations: [] }] };
    const pieces = events([
      ["response.created", { response: { ...base, status: "in_progress" } }],
      ["response.in_progress", { response: { ...base, status: "in_progress" } }],
      ["response.output_item.added", { output_index: 0, item: { id: msgId, type: "message", status: "in_progress", role: "assistant", content: [] } }],
      ["response.content_part.added", { item_id: msgId, output_index: 0, content_index: 0, part: { type: "output_text", text: "" } }],
      ...text.map((delta): [string, object] => ["response.output_text.delta", { item_id: msgId, output_index: 0, content_index: 0, delta }]),
      ["response.output_text.done", { item_id: msgId, output_index: 0, content_index: 0, text: text.join("") }],
      ["response.output_item.done", { output_index: 0, item }],
      [
        "response.completed",
        {
          response: {
            ...base,
            status: "completed",
            output: [item],
            usage: { input_tokens: 15, input_tokens_details: { cached_tokens: 3 }, output_tokens: 11, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 26 },
          },
        },
      ],
    ]);
    const req = parseRequest(request("/v1/responses", { model: "gpt-4.1", input: "Write a haiku about proxies.", stream: true }));
    const res = parseStreamSplitInvariant(req, sseResponse(pieces));
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      providerRequestId: id,
      model: "gpt-4.1-2025-04-14",
      content: "Packets cross the proxy: nothing lost.",
      toolCalls: [],
      finishReason: "stop",
      rawFinishReason: "completed",
      usage: { promptTokens: 15, completionTokens: 11, totalTokens: 26, cachedTokens: 3, reasoningTokens: 2 },
      firstTokenTs: 2040,
    });
  });

  test("streamed function call with reasoning summary", () => {
    const call = { id: "fc_1", type: "function_call", status: "completed", call_id: "call_abc", name: "get_weather", arguments: '{"city":"Tokyo"}' };
    const pieces = events([
      ["response.created", { response: { ...base, status: "in_progress" } }],
      ["response.output_item.added", { output_index: 0, item: { id: "rs_1", type: "reasoning", summary: [] } }],
      ["response.reasoning_summary_text.delta", { item_id: "rs_1", output_index: 0, summary_index: 0, delta: "Need the " }],
      ["response.reasoning_summary_text.delta", { item_id: "rs_1", output_index: 0, summary_index: 0, delta: "weather tool." }],
      ["response.output_item.done", { output_index: 0, item: { id: "rs_1", type: "reasoning", summary: [{ type: "summary_text", text: "Need the weather tool." }] } }],
      ["response.output_item.added", { output_index: 1, item: { ...call, status: "in_progress", arguments: "" } }],
      ["response.function_call_arguments.delta", { item_id: "fc_1", output_index: 1, delta: '{"city":' }],
      ["response.function_call_arguments.delta", { item_id: "fc_1", output_index: 1, delta: '"Tokyo"}' }],
      ["response.function_call_arguments.done", { item_id: "fc_1", output_index: 1, arguments: '{"city":"Tokyo"}' }],
      ["response.output_item.done", { output_index: 1, item: call }],
      ["response.completed", { response: { ...base, status: "completed", output: [call], usage: { input_tokens: 40, output_tokens: 20, total_tokens: 60 } } }],
    ]);
    const req = parseRequest(request("/v1/responses", { model: "o4-mini", input: "Weather in Tokyo?", stream: true }));
    const res = parseStreamSplitInvariant(req, sseResponse(pieces));
    expect(res).toMatchObject({
      thinking: "Need the weather tool.",
      toolCalls: [{ id: "call_abc", name: "get_weather", arguments: '{"city":"Tokyo"}' }],
      finishReason: "tool_calls",
      firstTokenTs: 2020,
    });
    expect(res.content).toBeUndefined();
  });

  test("whole response: message, function call, reasoning summary; incomplete for max tokens", () => {
    const req = parseRequest(request("/v1/responses", { model: "o3", input: "x" }));
    const res = parseAiResponse(
      req,
      jsonResponse(200, {
        ...base,
        status: "incomplete",
        incomplete_details: { reason: "max_output_tokens" },
        output: [
          { id: "rs_1", type: "reasoning", summary: [{ type: "summary_text", text: "Plan." }] },
          { id: "msg_1", type: "message", role: "assistant", content: [{ type: "output_text", text: "Partial answer", annotations: [] }] },
          { id: "fc_1", type: "function_call", call_id: "call_9", name: "lookup", arguments: "{}" },
        ],
        usage: { input_tokens: 9, output_tokens: 100, total_tokens: 109 },
      }),
    );
    expect(res).toMatchObject({
      providerRequestId: id,
      content: "Partial answer",
      thinking: "Plan.",
      toolCalls: [{ id: "call_9", name: "lookup", arguments: "{}" }],
      finishReason: "length",
      rawFinishReason: "max_output_tokens",
      usage: { promptTokens: 9, completionTokens: 100 },
    });
  });

  test("response.failed and error events; a stream without its terminal event", () => {
    const req = parseRequest(request("/v1/responses", { model: "gpt-4.1", input: "x", stream: true }));
    const failed = parseAiResponse(
      req,
      sseResponse(
        events([
          ["response.created", { response: { ...base, status: "in_progress" } }],
          ["response.failed", { response: { ...base, status: "failed", error: { code: "server_error", message: "The model failed" } } }],
        ]),
      ),
    );
    expect(failed).toMatchObject({ success: false, error: { message: "The model failed", code: "server_error" }, finishReason: "error" });
    expect(failed.incomplete).toBeUndefined();

    const errored = parseAiResponse(req, sseResponse(events([["error", { code: "rate_limit_exceeded", message: "Slow down", param: null }]])));
    expect(errored).toMatchObject({ success: false, error: { type: "rate_limit_exceeded", message: "Slow down", code: "rate_limit_exceeded" }, finishReason: "error" });

    const cut = parseAiResponse(
      req,
      sseResponse(
        events([
          ["response.created", { response: { ...base, status: "in_progress" } }],
          ["response.output_text.delta", { item_id: msgId, output_index: 0, content_index: 0, delta: "Half" }],
        ]),
        [],
        { complete: false },
      ),
    );
    expect(cut).toMatchObject({ success: false, error: { type: "connection_closed" }, content: "Half", incomplete: true });
  });
});

describe("dispatch: one table keyed by API kind", () => {
  const chat = { model: "m", messages: [{ role: "user", content: "hi" }] };
  test("the request's kind comes from its route, else the provider's own API", () => {
    const kind = (path: string, m = OPENAI, body: object = chat) => parseAiRequest(request(path, body), m)?.api;
    expect(kind("/v1/chat/completions")).toBe("openai-chat");
    expect(kind("/v1/completions", OPENAI, { model: "m", prompt: "x" })).toBe("openai-completion");
    expect(kind("/v1/responses", OPENAI, { model: "m", input: "x" })).toBe("openai-responses");
    expect(kind("/v1/embeddings", OPENAI, { model: "m", input: "x" })).toBe("openai-embeddings");
    expect(kind("/v1/messages", match("anthropic", "api.anthropic.com", "anthropic"), { model: "m", messages: [] })).toBe("anthropic-messages");
    const ollama = match("ollama", "localhost", "ollama");
    expect(kind("/api/chat", ollama)).toBe("ollama");
    expect(kind("/v1/chat/completions", ollama)).toBe("openai-chat");
    expect(kind("/v1beta/models/gemini-2.5-flash:generateContent", match("google", "generativelanguage.googleapis.com", "google"), { contents: [] })).toBe("gemini");
    expect(kind("/v1/unknown")).toBeUndefined();
  });

  test("the response is read as its request was, not re-derived from the endpoint URL", () => {
    const req = parseRequest(request("/v1/chat/completions", chat));
    const res = jsonResponse(200, { id: "c1", model: "m", choices: [{ index: 0, message: { role: "assistant", content: "hello" }, finish_reason: "stop" }] });
    // An endpoint that names no API (a shape-detected call is reported under its real path) changes nothing.
    expect(parseAiResponse({ ...req, endpoint: "https://example.test/proxy/xyz" }, res)).toMatchObject({ content: "hello", finishReason: "stop" });
    // A request not parsed here has no kind: only the status is read.
    const { api: _, ...bare } = req;
    expect(parseAiResponse(bare, res)).toEqual({ statusCode: 200, success: true, toolCalls: [] });
  });
});
