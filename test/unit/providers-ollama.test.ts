// Ollama native API on wire bytes shaped like a real server's (NDJSON streams over plain HTTP).
import { describe, expect, test } from "bun:test";
import { ollamaRoute, parseOllamaRequest, parseOllamaResponse } from "../../src/decode/providers/ollama.ts";
import type { EndpointMatch } from "../../src/spec/types.ts";
import { exchangeOf, httpRequest, httpResponse, providerParse } from "./providers-gemini-wire.ts";

const HOST = "localhost:11434";
const match: EndpointMatch = { provider: "ollama", apiFormat: "ollama", host: "localhost" };
const NDJSON = { "Content-Type": "application/x-ndjson", Date: "Wed, 25 Nov 2026 07:00:00 GMT" };
const JSON_RES = { "Content-Type": "application/json; charset=utf-8" };

const parse = providerParse(parseOllamaRequest, parseOllamaResponse, match);

const line = (o: object) => `${JSON.stringify(o)}\n`;
const at = "2026-11-25T07:00:00.000000Z";

describe("Ollama /api/chat", () => {
  test("routes", () => {
    expect(ollamaRoute("/api/chat")).toBe("chat");
    expect(ollamaRoute("/api/embed")).toBe("embed");
    expect(ollamaRoute("/api/tags")).toBeUndefined();
    expect(ollamaRoute("/v1/chat/completions")).toBeUndefined();
  });

  test("streams by default: NDJSON deltas, thinking, final counts as tokens", () => {
    const body = { model: "qwen3:8b", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Why is the sky blue?", images: ["iVBORw0KGgo="] }], think: true, options: { temperature: 0.6, num_predict: 128, stop: ["\n\n"] } };
    const request = httpRequest("POST", "/api/chat", HOST, { "Content-Type": "application/json", "User-Agent": "ollama-js/0.6.0" }, JSON.stringify(body));
    const lines = [
      line({ model: "qwen3:8b", created_at: at, message: { role: "assistant", content: "", thinking: "Rayleigh" }, done: false }),
      line({ model: "qwen3:8b", created_at: at, message: { role: "assistant", content: "Rayleigh" }, done: false }) + line({ model: "qwen3:8b", created_at: at, message: { role: "assistant", content: " scattering." }, done: false }),
      line({ model: "qwen3:8b", created_at: at, message: { role: "assistant", content: "" }, done_reason: "stop", done: true, total_duration: 4883583458, load_duration: 1334875, prompt_eval_count: 26, prompt_eval_duration: 342546000, eval_count: 282, eval_duration: 4535599000 }),
    ];
    const { req, res } = parse(request, httpResponse(200, NDJSON, lines));
    expect(req).toEqual({
      provider: "ollama",
      apiFormat: "ollama",
      endpoint: "http://localhost:11434/api/chat",
      requestType: "chat",
      model: "qwen3:8b",
      streaming: true,
      system: "Be brief.",
      messages: [{ role: "user", content: "Why is the sky blue?", imageCount: 1 }],
      tools: [],
      parameters: { temperature: 0.6, max_tokens: 128, stop: ["\n\n"] },
      thinking: { enabled: true },
      auth: { type: "none" },
    });
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      model: "qwen3:8b",
      content: "Rayleigh scattering.",
      thinking: "Rayleigh",
      toolCalls: [],
      finishReason: "stop",
      rawFinishReason: "stop",
      usage: { promptTokens: 26, completionTokens: 282, totalTokens: 308 },
      firstTokenTs: 20,
    });
  });

  test("stream: false with a tool call; tool result in the history", () => {
    const body = {
      model: "llama3.2",
      stream: false,
      messages: [
        { role: "user", content: "Weather in Oslo?" },
        { role: "assistant", content: "", tool_calls: [{ function: { name: "get_weather", arguments: { city: "Oslo" } } }] },
        { role: "tool", tool_name: "get_weather", content: "-3C" },
      ],
      tools: [{ type: "function", function: { name: "get_weather", description: "Current weather", parameters: { type: "object" } } }],
    };
    const request = httpRequest("POST", "/api/chat", HOST, { "Content-Type": "application/json" }, JSON.stringify(body));
    const reply = { model: "llama3.2", created_at: at, message: { role: "assistant", content: "", tool_calls: [{ function: { name: "get_weather", arguments: { city: "Bergen" } } }] }, done_reason: "stop", done: true, prompt_eval_count: 180, eval_count: 20 };
    const { req, res } = parse(request, httpResponse(200, JSON_RES, [JSON.stringify(reply)]));
    expect(req.streaming).toBe(false);
    expect(req.messages).toEqual([
      { role: "user", content: "Weather in Oslo?" },
      { role: "assistant", content: "", toolCalls: [{ name: "get_weather", arguments: '{"city":"Oslo"}' }] },
      { role: "tool", name: "get_weather", content: "-3C" },
    ]);
    expect(req.tools).toEqual([{ name: "get_weather", type: "function", description: "Current weather" }]);
    expect(res).toEqual({
      statusCode: 200,
      success: true,
      model: "llama3.2",
      content: "",
      toolCalls: [{ name: "get_weather", arguments: '{"city":"Bergen"}' }],
      finishReason: "tool_calls",
      rawFinishReason: "stop",
      usage: { promptTokens: 180, completionTokens: 20, totalTokens: 200 },
    });
  });

  test("model not found (404) and an error line mid-stream; a cut stream", () => {
    const request = httpRequest("POST", "/api/chat", HOST, {}, '{"model":"nope","messages":[{"role":"user","content":"hi"}]}');
    const { res } = parse(request, httpResponse(404, JSON_RES, ['{"error":"model \\"nope\\" not found, try pulling it first"}']));
    expect(res).toEqual({ statusCode: 404, success: false, toolCalls: [], finishReason: "error", error: { type: "error", message: 'model "nope" not found, try pulling it first' } });

    const mid = exchangeOf(request, httpResponse(200, NDJSON, [line({ model: "x", message: { role: "assistant", content: "Hi" }, done: false }), line({ error: "an error was encountered while running the model: unexpected EOF" })]));
    const midRes = parseOllamaResponse(parseOllamaRequest(mid.request, match)!, mid.response!);
    expect(midRes).toMatchObject({ success: false, content: "Hi", finishReason: "error", error: { message: expect.stringContaining("unexpected EOF") } });

    const parts = httpResponse(200, NDJSON, [line({ model: "x", message: { role: "assistant", content: "Hi" }, done: false }), line({ model: "x", message: { role: "assistant", content: "!" }, done: false })]);
    parts.pop();
    const cut = exchangeOf(request, parts);
    expect(parseOllamaResponse(parseOllamaRequest(cut.request, match)!, cut.response!)).toMatchObject({ content: "Hi!", incomplete: true });
  });
});

describe("Ollama /api/generate and /api/embed", () => {
  test("generate stream", () => {
    const request = httpRequest("POST", "/api/generate", HOST, { "Content-Type": "application/json" }, JSON.stringify({ model: "llama3.2", prompt: "Count to 3", system: "Numbers only" }));
    const { req, res } = parse(
      request,
      httpResponse(200, NDJSON, [
        line({ model: "llama3.2", created_at: at, response: "1", done: false }),
        line({ model: "llama3.2", created_at: at, response: " 2 3", done: false }),
        line({ model: "llama3.2", created_at: at, response: "", done: true, done_reason: "length", context: [1, 2, 3], prompt_eval_count: 12, eval_count: 3 }),
      ]),
    );
    expect(req).toMatchObject({ requestType: "completion", streaming: true, system: "Numbers only", messages: [{ role: "user", content: "Count to 3" }] });
    expect(res).toMatchObject({ content: "1 2 3", finishReason: "length", usage: { promptTokens: 12, completionTokens: 3, totalTokens: 15 }, firstTokenTs: 20 });
  });

  test("embed", () => {
    const request = httpRequest("POST", "/api/embed", HOST, { "Content-Type": "application/json" }, JSON.stringify({ model: "all-minilm", input: ["a", "b", "c"] }));
    const { req, res } = parse(request, httpResponse(200, JSON_RES, [JSON.stringify({ model: "all-minilm", embeddings: [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], total_duration: 14143917, load_duration: 1019500, prompt_eval_count: 8 })]));
    expect(req).toMatchObject({ requestType: "embedding", streaming: false, inputCount: 3, model: "all-minilm" });
    expect(res).toEqual({ statusCode: 200, success: true, model: "all-minilm", toolCalls: [], dimensions: 2, usage: { promptTokens: 8 } });
  });
});
