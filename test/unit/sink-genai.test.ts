// OISP events → GenAI semantic-convention spans and metric attributes (the pure half of the OTLP exporter).
import { expect, test } from "bun:test";
import { buildAiRequest, buildAiResponse, redactEvent } from "../../src/events/index.ts";
import { GenAiCorrelator } from "../../src/sinks/genai.ts";
import { connContext, exchange, parsedRequest, parsedResponse } from "./events.fixtures.ts";

function call(reqOver: Parameters<typeof parsedRequest>[0], resOver: Parameters<typeof parsedResponse>[0], seq = 0, opts = { includeContent: false }) {
  const ctx = connContext();
  const ex = exchange({ seq });
  const req = parsedRequest(reqOver);
  const res = parsedResponse(resOver);
  const request = buildAiRequest(ctx, ex, req);
  const response = buildAiResponse(ctx, ex, req, res, request);
  return { request: redactEvent(request, "safe"), response: redactEvent(response, "safe"), c: new GenAiCorrelator(opts) };
}

test("Anthropic: input tokens include cache reads and writes, as semconv asks", () => {
  const { request, response, c } = call(
    { provider: "anthropic", apiFormat: "anthropic", endpoint: "https://api.anthropic.com/v1/messages", model: "claude-sonnet-4-5" },
    { model: "claude-sonnet-4-5-20250929", usage: { promptTokens: 500, completionTokens: 100, cachedTokens: 400, cacheWriteTokens: 100 }, toolCalls: [] },
  );
  expect(c.add(request)).toBeUndefined();
  const out = c.add(response)!;
  expect(out.name).toBe("chat claude-sonnet-4-5");
  expect(out.attributes).toMatchObject({
    "gen_ai.provider.name": "anthropic",
    "gen_ai.usage.input_tokens": 1000, // 500 + 400 read + 100 written
    "gen_ai.usage.cache_read.input_tokens": 400,
    "gen_ai.usage.cache_creation.input_tokens": 100,
    "gen_ai.usage.output_tokens": 100,
  });
  expect(out.metric).toMatchObject({ inputTokens: 1000, outputTokens: 100 });
  expect(out.tools).toEqual([]);
});

test("provider names map to semconv values; operation from the request type", () => {
  const { request, response, c } = call(
    { provider: "azure_openai", endpoint: "https://acme.openai.azure.com/openai/deployments/x/embeddings", requestType: "embedding", model: "text-embedding-3-small" },
    { model: "text-embedding-3-small", toolCalls: [], content: undefined },
  );
  c.add(request);
  const out = c.add(response)!;
  expect(out.name).toBe("embeddings text-embedding-3-small");
  expect(out.attributes["gen_ai.provider.name"]).toBe("azure.ai.openai");
  expect(out.attributes["server.address"]).toBe("acme.openai.azure.com");
});

test("providers OISP names 'other' export under their semconv name (xAI, DeepSeek) or bundle id (OpenRouter)", () => {
  for (const [provider, expected] of [["xai", "x_ai"], ["deepseek", "deepseek"], ["openrouter", "openrouter"]] as const) {
    const { request, response, c } = call({ provider, endpoint: "https://example.test/v1/chat/completions" }, {});
    expect((request.data as { provider?: { name?: string } }).provider?.name).toBe("other");
    c.add(request);
    expect(c.add(response)!.attributes["gen_ai.provider.name"]).toBe(expected);
  }
});

test("a response whose request was never seen still gives a span, timed from its latency", () => {
  const { response, c } = call({}, {});
  const out = c.add(response)!;
  const latency = (response.data as { latency_ms: number }).latency_ms;
  expect(out.endMs - out.startMs).toBe(latency);
  expect(out.attributes["gen_ai.request.model"]).toBe("gpt-4o-2024-11-20"); // falls back to the response model
  expect(out.attributes["gen_ai.request.temperature"]).toBeUndefined();
});

test("the pending-request window is bounded", () => {
  const c = new GenAiCorrelator({ includeContent: false, maxPending: 2 });
  const calls = [0, 1, 2].map((seq) => call({}, {}, seq));
  for (const x of calls) c.add(x.request);
  // The oldest request was evicted: its response has no request parameters.
  expect(c.add(calls[0]!.response)!.attributes["gen_ai.request.temperature"]).toBeUndefined();
  expect(c.add(calls[2]!.response)!.attributes["gen_ai.request.temperature"]).toBe(0.2);
});

test("one call, one model: span and metric carry the requested alias, the answering snapshot as response.model", () => {
  const { request, response, c } = call(
    { provider: "openai", model: "gpt-4o-mini" },
    { model: "gpt-4o-mini-2024-07-18", usage: { promptTokens: 10, completionTokens: 2 }, toolCalls: [] },
  );
  c.add(request);
  const out = c.add(response)!;
  // The same grouping as the inventory and `oisp analyze`: a backend grouping by gen_ai.request.model
  // puts this call's tokens on the alias's row.
  expect(out.name).toBe("chat gpt-4o-mini");
  expect(out.attributes).toMatchObject({ "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18" });
  expect(out.metric.attributes).toMatchObject({ "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18" });
  expect(out.metric.inputTokens).toBe(10);
});
