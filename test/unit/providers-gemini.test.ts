// Gemini (AI Studio and Vertex) request/response parsing on wire bytes shaped like the real API.
import { describe, expect, test } from "bun:test";
import { geminiRoute, parseGeminiRequest, parseGeminiResponse } from "../../src/decode/providers/gemini.ts";
import type { ParsedAiResponse } from "../../src/decode/providers/types.ts";
import type { EndpointMatch } from "../../src/spec/types.ts";
import { exchangeOf, httpRequest, httpResponse, providerParse } from "./providers-gemini-wire.ts";

const HOST = "generativelanguage.googleapis.com";
const match: EndpointMatch = { provider: "google", apiFormat: "google", host: HOST };
const KEY = "AIzaSyD-test-key-0123456789abcdefghijklm";
const JSON_HEADERS = { "Content-Type": "application/json; charset=UTF-8", Vary: "Origin", Server: "scaffolding on HTTPServer2" };

const chatBody = {
  contents: [
    { role: "user", parts: [{ text: "What's the weather in Paris?" }, { inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } }] },
    { role: "model", parts: [{ functionCall: { name: "get_weather", args: { city: "Paris" } } }] },
    { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { tempC: 21 } } }] },
  ],
  systemInstruction: { parts: [{ text: "You are terse." }] },
  tools: [{ functionDeclarations: [{ name: "get_weather", description: "Weather for a city", parameters: { type: "OBJECT", properties: { city: { type: "STRING" } } } }] }, { googleSearch: {} }],
  toolConfig: { functionCallingConfig: { mode: "AUTO" } },
  generationConfig: { temperature: 0.2, topP: 0.9, maxOutputTokens: 256, stopSequences: ["END"], thinkingConfig: { thinkingBudget: 1024, includeThoughts: true } },
};

const parse = providerParse(parseGeminiRequest, parseGeminiResponse, match);

describe("Gemini request", () => {
  test("routes: model and action from the path, URL-decoded; other paths are not AI calls", () => {
    expect(geminiRoute("/v1beta/models/gemini-2.5-flash:generateContent")).toEqual({ model: "gemini-2.5-flash", action: "generateContent" });
    expect(geminiRoute("/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro%40001:streamGenerateContent?alt=sse")).toEqual({
      model: "gemini-2.5-pro@001",
      action: "streamGenerateContent",
    });
    expect(geminiRoute("/v1beta/models/gemini-2.5-flash:countTokens")).toBeUndefined();
    expect(geminiRoute("/v1beta/models")).toBeUndefined();
  });
});

describe("Gemini generateContent", () => {
  test("history with function call and response, tools, thinking; answer with a function call, thoughts and full usage", () => {
    const request = httpRequest("POST", "/v1beta/models/gemini-2.5-flash:generateContent", HOST, { "x-goog-api-key": KEY, "Content-Type": "application/json" }, JSON.stringify(chatBody));
    const body = JSON.stringify(
      {
        candidates: [
          {
            content: { parts: [{ text: "Considering the forecast tool.", thought: true }, { text: "Checking." }, { functionCall: { name: "get_weather", args: { city: "Lyon" } } }], role: "model" },
            finishReason: "STOP",
            index: 0,
          },
        ],
        usageMetadata: { promptTokenCount: 120, candidatesTokenCount: 12, totalTokenCount: 180, cachedContentTokenCount: 64, thoughtsTokenCount: 48, promptTokensDetails: [{ modality: "TEXT", tokenCount: 120 }] },
        modelVersion: "gemini-2.5-flash",
        responseId: "mJ0kaP2aLq-Bm9IP1Zy0sAg",
      },
      null,
      2,
    );
    const { req, res } = parse(request, httpResponse(200, JSON_HEADERS, [body]));
    expect(req).toEqual({
      provider: "google",
      apiFormat: "google",
      endpoint: `https://${HOST}/v1beta/models/gemini-2.5-flash:generateContent`,
      requestType: "chat",
      model: "gemini-2.5-flash",
      streaming: false,
      messages: [
        { role: "user", content: "What's the weather in Paris?", imageCount: 1 },
        { role: "assistant", toolCalls: [{ name: "get_weather", arguments: '{"city":"Paris"}' }] },
        { role: "tool", name: "get_weather", content: '{"tempC":21}' },
      ],
      system: "You are terse.",
      tools: [
        { name: "get_weather", type: "function", description: "Weather for a city" },
        { name: "googleSearch", type: "other" },
      ],
      toolChoice: "auto",
      parameters: { temperature: 0.2, top_p: 0.9, max_tokens: 256, stop: ["END"] },
      thinking: { enabled: true, budgetTokens: 1024 },
      auth: { type: "api_key", keyPrefix: "AIza", keyHash: expect.stringMatching(/^sha256:[0-9a-f]{16}$/) },
    });
    expect(JSON.stringify(req)).not.toContain(KEY.slice(4));
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      providerRequestId: "mJ0kaP2aLq-Bm9IP1Zy0sAg",
      model: "gemini-2.5-flash",
      content: "Checking.",
      thinking: "Considering the forecast tool.",
      toolCalls: [{ name: "get_weather", arguments: '{"city":"Lyon"}' }],
      finishReason: "tool_calls",
      rawFinishReason: "STOP",
      usage: { promptTokens: 120, completionTokens: 12, totalTokens: 180, cachedTokens: 64, reasoningTokens: 48 },
    });
  });

  test("an error body (400 INVALID_ARGUMENT) becomes the error", () => {
    const request = httpRequest("POST", `/v1beta/models/gemini-2.5-flash:generateContent?key=${KEY}`, HOST, { "Content-Type": "application/json" }, '{"contents":[{"parts":[{"text":"hi"}]}]}');
    const error = '{\n  "error": {\n    "code": 400,\n    "message": "API key not valid. Please pass a valid API key.",\n    "status": "INVALID_ARGUMENT"\n  }\n}\n';
    const { req, res } = parse(request, httpResponse(400, JSON_HEADERS, [error]));
    expect(req.endpoint).toBe(`https://${HOST}/v1beta/models/gemini-2.5-flash:generateContent`);
    expect(req.auth.type).toBe("api_key");
    expect(req.messages).toEqual([{ role: "user", content: "hi" }]);
    expect(res).toEqual({
      statusCode: 400,
      success: false,
      toolCalls: [],
      error: { type: "INVALID_ARGUMENT", message: "API key not valid. Please pass a valid API key.", code: "400" },
    });
  });
});

describe("Gemini streamGenerateContent", () => {
  const chunks = [
    { candidates: [{ content: { parts: [{ text: "The" }], role: "model" }, index: 0 }], usageMetadata: { promptTokenCount: 8, totalTokenCount: 8 }, modelVersion: "gemini-2.5-flash", responseId: "r-1" },
    { candidates: [{ content: { parts: [{ text: " sky is" }], role: "model" }, index: 0 }], usageMetadata: { promptTokenCount: 8, totalTokenCount: 8 }, modelVersion: "gemini-2.5-flash", responseId: "r-1" },
    {
      candidates: [{ content: { parts: [{ text: " blue." }], role: "model" }, finishReason: "STOP", index: 0 }],
      usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 5, totalTokenCount: 13 },
      modelVersion: "gemini-2.5-flash",
      responseId: "r-1",
    },
  ];
  const expected: ParsedAiResponse = {
    statusCode: 200,
    success: true,
    providerRequestId: "r-1",
    model: "gemini-2.5-flash",
    content: "The sky is blue.",
    toolCalls: [],
    finishReason: "stop",
    rawFinishReason: "STOP",
    usage: { promptTokens: 8, completionTokens: 5, totalTokens: 13 },
    firstTokenTs: 20,
  };

  test("alt=sse with the key in the query string", () => {
    const request = httpRequest("POST", `/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=${KEY}`, HOST, { "Content-Type": "application/json" }, '{"contents":[{"role":"user","parts":[{"text":"Why is the sky blue?"}]}]}');
    const { req, res } = parse(
      request,
      httpResponse(200, { "Content-Type": "text/event-stream", "Content-Disposition": "attachment" }, [...chunks.map((c) => `data: ${JSON.stringify(c)}\r\n\r\n`)]),
    );
    expect(req.streaming).toBe(true);
    expect(req.endpoint).toBe(`https://${HOST}/v1beta/models/gemini-2.5-flash:streamGenerateContent`);
    expect(req.auth).toMatchObject({ type: "api_key", keyPrefix: "AIza" });
    // The head arrives at ts 10, the first data chunk at 20.
    expect(res).toEqual(expected);
  });

  test("without alt=sse: one JSON array streamed element by element", () => {
    const request = httpRequest("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", HOST, { "x-goog-api-key": KEY, "Content-Type": "application/json" }, '{"contents":[{"role":"user","parts":[{"text":"Why is the sky blue?"}]}]}');
    const pieces = chunks.map((c, i) => `${i === 0 ? "[" : "\r\n,"}${JSON.stringify(c, null, 2)}`);
    pieces.push("\r\n]");
    const { res } = parse(request, httpResponse(200, JSON_HEADERS, pieces));
    expect(res).toEqual(expected);
  });

  test("a stream cut before its finishReason is incomplete", () => {
    const request = httpRequest("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", HOST, { "x-goog-api-key": KEY }, '{"contents":[{"parts":[{"text":"x"}]}]}');
    const res = httpResponse(200, { "Content-Type": "text/event-stream" }, chunks.slice(0, 2).map((c) => `data: ${JSON.stringify(c)}\r\n\r\n`));
    res.pop(); // no final chunk: the connection just ends
    const ex = exchangeOf(request, res);
    const parsed = parseGeminiResponse(parseGeminiRequest(ex.request, match)!, ex.response!);
    expect(parsed.content).toBe("The sky is");
    expect(parsed.incomplete).toBe(true);
  });

  test("Vertex AI path with an OAuth token", () => {
    const host = "us-central1-aiplatform.googleapis.com";
    const path = "/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse";
    const request = httpRequest("POST", path, host, { Authorization: "Bearer ya29.a0AfB_byC-token", "Content-Type": "application/json" }, '{"contents":{"role":"user","parts":[{"text":"hello"}]}}');
    const ex = exchangeOf(request, httpResponse(200, { "Content-Type": "text/event-stream" }, chunks.map((c) => `data: ${JSON.stringify(c)}\r\n\r\n`)));
    const req = parseGeminiRequest(ex.request, { provider: "vertex_ai", apiFormat: "google", host })!;
    expect(req).toMatchObject({ provider: "vertex_ai", model: "gemini-2.5-pro", streaming: true, endpoint: `https://${host}${path.split("?")[0]}`, auth: { type: "oauth" }, messages: [{ role: "user", content: "hello" }] });
    expect(parseGeminiResponse(req, ex.response!).content).toBe("The sky is blue.");
  });
});

describe("Gemini embeddings", () => {
  test("embedContent and batchEmbedContents", () => {
    const request = httpRequest("POST", "/v1beta/models/text-embedding-004:embedContent", HOST, { "x-goog-api-key": KEY }, '{"model":"models/text-embedding-004","content":{"parts":[{"text":"hello world"}]}}');
    const { req, res } = parse(request, httpResponse(200, JSON_HEADERS, ['{\n  "embedding": {\n    "values": [0.013, -0.008, 0.042, 0.5]\n  }\n}\n']));
    expect(req).toMatchObject({ requestType: "embedding", model: "text-embedding-004", inputCount: 1, streaming: false });
    expect(res).toEqual({ statusCode: 200, success: true, toolCalls: [], dimensions: 4 });

    const batch = httpRequest("POST", "/v1beta/models/gemini-embedding-001:batchEmbedContents", HOST, { "x-goog-api-key": KEY }, JSON.stringify({ requests: [1, 2, 3].map((n) => ({ model: "models/gemini-embedding-001", content: { parts: [{ text: `t${n}` }] } })) }));
    const ex = exchangeOf(batch, httpResponse(200, JSON_HEADERS, ['{"embeddings":[{"values":[1,2]},{"values":[3,4]},{"values":[5,6]}]}']));
    const breq = parseGeminiRequest(ex.request, match)!;
    expect(breq.inputCount).toBe(3);
    expect(parseGeminiResponse(breq, ex.response!).dimensions).toBe(2);
  });

  test("not an AI call: GET models list, countTokens", () => {
    const get = exchangeOf(httpRequest("GET", "/v1beta/models", HOST, { "x-goog-api-key": KEY }), httpResponse(200, JSON_HEADERS, ['{"models":[]}']));
    expect(parseGeminiRequest(get.request, match)).toBeUndefined();
    const count = exchangeOf(httpRequest("POST", "/v1beta/models/gemini-2.5-flash:countTokens", HOST, {}, "{}"), httpResponse(200, JSON_HEADERS, ['{"totalTokens":3}']));
    expect(parseGeminiRequest(count.request, match)).toBeUndefined();
  });

  test("malformed request body still yields the call with a parse error", () => {
    const ex = exchangeOf(httpRequest("POST", "/v1beta/models/gemini-2.5-flash:generateContent", HOST, {}, '{"contents": [ {"parts": '), httpResponse(400, JSON_HEADERS, ['{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}']));
    const req = parseGeminiRequest(ex.request, match)!;
    expect(req.model).toBe("gemini-2.5-flash");
    expect(req.parseError).toContain("malformed JSON");
    expect(req.auth).toEqual({ type: "none" });
  });
});

describe("robustness of the Gemini, Bedrock, Cohere and Ollama parsers", () => {
  test("ill-typed JSON everywhere never throws", async () => {
    const { parseBedrockRequest, parseBedrockResponse } = await import("../../src/decode/providers/bedrock.ts");
    const { parseCohereRequest, parseCohereResponse } = await import("../../src/decode/providers/cohere.ts");
    const { parseOllamaRequest, parseOllamaResponse } = await import("../../src/decode/providers/ollama.ts");
    const weird: unknown[] = [null, 5, "x", [], [null], { a: 1 }, [{ parts: null }], [{ role: 7, content: { text: 1 } }], { text: [] }];
    const keys = ["contents", "messages", "system", "systemInstruction", "tools", "toolConfig", "generationConfig", "inferenceConfig", "options", "content", "requests", "input", "texts", "candidates", "usageMetadata", "output", "usage", "message", "embedding", "embeddings", "choices", "generation", "results"];
    const parsers = [
      { path: "/v1beta/models/m:generateContent", host: HOST, m: match, req: parseGeminiRequest, res: parseGeminiResponse },
      { path: "/v1beta/models/m:streamGenerateContent", host: HOST, m: match, req: parseGeminiRequest, res: parseGeminiResponse },
      { path: "/model/anthropic.claude-x/invoke", host: "bedrock-runtime.us-east-1.amazonaws.com", m: { ...match, apiFormat: "bedrock" as const }, req: parseBedrockRequest, res: parseBedrockResponse },
      { path: "/model/amazon.nova-x/converse", host: "bedrock-runtime.us-east-1.amazonaws.com", m: { ...match, apiFormat: "bedrock" as const }, req: parseBedrockRequest, res: parseBedrockResponse },
      { path: "/model/meta.llama-x/invoke", host: "bedrock-runtime.us-east-1.amazonaws.com", m: { ...match, apiFormat: "bedrock" as const }, req: parseBedrockRequest, res: parseBedrockResponse },
      { path: "/v2/chat", host: "api.cohere.com", m: { ...match, apiFormat: "cohere" as const }, req: parseCohereRequest, res: parseCohereResponse },
      { path: "/api/chat", host: "localhost:11434", m: { ...match, apiFormat: "ollama" as const }, req: parseOllamaRequest, res: parseOllamaResponse },
    ];
    let n = 0;
    for (const p of parsers) {
      for (const key of keys) {
        for (const value of weird) {
          const body = JSON.stringify({ [key]: value, model: value, stream: value });
          const ex = exchangeOf(httpRequest("POST", p.path, p.host, {}, body), httpResponse(200, JSON_HEADERS, [body]));
          const req = p.req(ex.request, p.m);
          expect(req).toBeDefined();
          p.res(req!, ex.response!);
          n++;
        }
      }
    }
    expect(n).toBe(parsers.length * keys.length * weird.length);
  });
});

describe("Gemini over real HTTP/2 (node:http2 through a relay, decoded by H2ConnectionDecoder)", () => {
  test("streamGenerateContent as SSE and as a gzip JSON array on concurrent streams", async () => {
    const { captureH2, feed, pieces } = await import("./decode-h2-support.ts");
    const zlib = await import("node:zlib");
    const events = [
      { candidates: [{ content: { parts: [{ text: "Bonjour" }], role: "model" } }], modelVersion: "gemini-2.5-flash", responseId: "h2-1" },
      { candidates: [{ content: { parts: [{ text: " !" }], role: "model" }, finishReason: "STOP" }], usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 2, totalTokenCount: 5 }, modelVersion: "gemini-2.5-flash", responseId: "h2-1" },
    ];
    // Each stream's second part goes out only once the client has read its first (a timer instead let a loaded
    // machine deliver both in one read, and the SSE stream's first token then came at its end).
    const firstRead = { sse: Promise.withResolvers<void>(), gzip: Promise.withResolvers<void>() };
    const steps = await captureH2(
      (req, res) => {
        req.resume();
        req.on("end", () => {
          if (String(req.url).includes("alt=sse")) {
            res.writeHead(200, { "content-type": "text/event-stream" });
            res.write(`data: ${JSON.stringify(events[0])}\r\n\r\n`);
            void firstRead.sse.promise.then(() => res.end(`data: ${JSON.stringify(events[1])}\r\n\r\n`));
          } else {
            const gz = zlib.gzipSync(`[${JSON.stringify(events[0])}\r\n,${JSON.stringify(events[1])}\r\n]`);
            res.writeHead(200, { "content-type": "application/json; charset=UTF-8", "content-encoding": "gzip" });
            res.write(gz.subarray(0, 20));
            void firstRead.gzip.promise.then(() => res.end(gz.subarray(20)));
          }
        });
      },
      async (client) => {
        const { request } = await import("./decode-h2-support.ts");
        const body = '{"contents":[{"role":"user","parts":[{"text":"Dis bonjour"}]}]}';
        const headers = (path: string) => ({ ":method": "POST", ":path": path, ":authority": HOST, "x-goog-api-key": KEY, "content-type": "application/json", "accept-encoding": "gzip" });
        await Promise.all([
          request(client, headers("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"), body, () => firstRead.sse.resolve()),
          request(client, headers("/v1beta/models/gemini-2.5-flash:streamGenerateContent"), body, () => firstRead.gzip.resolve()),
        ]);
      },
    );
    for (const cut of [undefined, pieces(1), pieces(100)]) {
      const outs = feed(steps, cut);
      const exchanges = outs.filter((o) => o.kind === "exchange").map((o) => (o as { exchange: import("../../src/decode/types.ts").HttpExchange }).exchange);
      expect(exchanges.length).toBe(2);
      for (const ex of exchanges) {
        expect(ex.request.host).toBe(HOST);
        const req = parseGeminiRequest(ex.request, match)!;
        expect(req).toMatchObject({ model: "gemini-2.5-flash", streaming: true, auth: { type: "api_key", keyPrefix: "AIza" }, messages: [{ role: "user", content: "Dis bonjour" }] });
        const res = parseGeminiResponse(req, ex.response!);
        expect(res).toMatchObject({ success: true, content: "Bonjour !", finishReason: "stop", usage: { promptTokens: 3, completionTokens: 2, totalTokens: 5 }, providerRequestId: "h2-1" });
        expect(res.incomplete).toBeUndefined();
        // SSE: the first event arrived before the end. Gzip: 20 bytes of gzip may decode to nothing yet.
        if (ex.request.path.includes("alt=sse")) expect(res.firstTokenTs).toBeLessThan(ex.response!.endTs);
        else expect(res.firstTokenTs).toBeLessThanOrEqual(ex.response!.endTs);
      }
    }
  }, 15_000);
});
