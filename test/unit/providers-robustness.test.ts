// Hostile and broken input: every JSON value replaced by a value of another type, bodies cut at
// every byte, absurd indexes, big streams. The parsers must answer (never throw, never hit their
// internal-error fallback) and stay linear.
import { describe, expect, test } from "bun:test";
import { parseAiRequest, parseAiResponse } from "../../src/decode/providers/index.ts";
import type { ParsedAiRequest, ParsedAiResponse } from "../../src/decode/providers/types.ts";
import { ANTHROPIC, OPENAI, jsonResponse, request, sseBlocks, sseResponse } from "./fixtures/providers.ts";
import type { EndpointMatch } from "../../src/spec/types.ts";

const ALTERNATES: unknown[] = [null, 7, -1.5, "s", "", true, [], [1, "x", null], {}, { type: "text" }];

/** Every copy of `value` with one node (at any depth) replaced by one alternate. */
function* mutations(value: unknown): Generator<unknown> {
  for (const alt of ALTERNATES) yield alt;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      for (const m of mutations(value[i])) yield value.map((v, j) => (j === i ? m : v));
    }
  } else if (value && typeof value === "object") {
    for (const key of Object.keys(value)) {
      for (const m of mutations((value as Record<string, unknown>)[key])) yield { ...(value as object), [key]: m };
    }
  }
}

function noInternalError(r: ParsedAiRequest | ParsedAiResponse | undefined, what: string): void {
  if (r?.parseError?.startsWith("internal")) throw new Error(`${what}: ${r.parseError}`);
  // Must survive the JSON round trip the event store does.
  JSON.stringify(r);
}

const chatBody = {
  model: "gpt-4o",
  stream: true,
  messages: [
    { role: "system", content: "s" },
    { role: "user", content: [{ type: "text", text: "t" }, { type: "image_url", image_url: { url: "u" } }] },
    { role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }] },
    { role: "tool", tool_call_id: "c", content: "r" },
  ],
  tools: [{ type: "function", function: { name: "f", description: "d" } }],
  tool_choice: { type: "function", function: { name: "f" } },
  stop: ["x"],
  temperature: 1,
};
const responsesBody = {
  model: "gpt-5",
  instructions: "i",
  input: [
    { role: "user", content: [{ type: "input_text", text: "t" }] },
    { type: "function_call", call_id: "c", name: "f", arguments: "{}" },
    { type: "function_call_output", call_id: "c", output: "o" },
  ],
  tools: [{ type: "function", name: "f" }],
  reasoning: { effort: "low" },
};
const anthropicBody = {
  model: "claude",
  system: [{ type: "text", text: "s" }],
  messages: [
    { role: "user", content: [{ type: "text", text: "t" }, { type: "image", source: {} }] },
    { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "f", input: { a: 1 } }] },
    { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: [{ type: "text", text: "r" }] }] },
  ],
  tools: [{ name: "f", input_schema: {} }],
  tool_choice: { type: "tool", name: "f" },
  thinking: { type: "enabled", budget_tokens: 10 },
  stop_sequences: ["x"],
};

const requestCases: Array<[string, string, object, EndpointMatch]> = [
  ["chat", "/v1/chat/completions", chatBody, OPENAI],
  ["completion", "/v1/completions", { model: "m", prompt: ["a", "b"], max_tokens: 3 }, OPENAI],
  ["responses", "/v1/responses", responsesBody, OPENAI],
  ["embeddings", "/v1/embeddings", { model: "m", input: ["a", "b"] }, OPENAI],
  ["anthropic", "/v1/messages", anthropicBody, ANTHROPIC],
];

describe("requests", () => {
  for (const [name, path, body, m] of requestCases) {
    test(`${name}: any value of any type anywhere, and the body cut at every byte`, () => {
      let n = 0;
      for (const mutated of mutations(body)) {
        const parsed = parseAiRequest(request(path, mutated as object), m);
        expect(parsed).toBeDefined();
        noInternalError(parsed, `${name} ${JSON.stringify(mutated)}`);
        n++;
      }
      expect(n).toBeGreaterThan(40);
      const text = JSON.stringify(body);
      for (let at = 0; at < text.length; at++) {
        const parsed = parseAiRequest(request(path, text.slice(0, at), { truncated: true }), m)!;
        noInternalError(parsed, `${name} cut at ${at}`);
        expect(parsed.parseError).toBeDefined();
      }
    });
  }
});

const chatResponse = {
  id: "c",
  model: "m",
  choices: [{ index: 0, message: { role: "assistant", content: "x", tool_calls: [{ id: "c", function: { name: "f", arguments: "{}" } }] }, finish_reason: "stop" }],
  usage: { prompt_tokens: 1, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 1 } },
};
const responsesResponse = {
  id: "r",
  status: "incomplete",
  incomplete_details: { reason: "max_output_tokens" },
  output: [
    { type: "message", content: [{ type: "output_text", text: "x" }] },
    { type: "function_call", call_id: "c", name: "f", arguments: "{}" },
    { type: "reasoning", summary: [{ type: "summary_text", text: "r" }] },
  ],
  usage: { input_tokens: 1, output_tokens: 2, input_tokens_details: { cached_tokens: 0 } },
};
const anthropicResponse = {
  id: "m",
  model: "c",
  content: [
    { type: "text", text: "x" },
    { type: "thinking", thinking: "t" },
    { type: "tool_use", id: "t", name: "f", input: {} },
  ],
  stop_reason: "end_turn",
  usage: { input_tokens: 1, output_tokens: 2, cache_read_input_tokens: 3 },
};
const embeddingResponse = { data: [{ embedding: [0.1, 0.2] }], model: "m", usage: { prompt_tokens: 1, total_tokens: 1 } };

const responseCases: Array<[string, string, object, object, EndpointMatch]> = [
  ["chat", "/v1/chat/completions", chatBody, chatResponse, OPENAI],
  ["responses", "/v1/responses", responsesBody, responsesResponse, OPENAI],
  ["anthropic", "/v1/messages", anthropicBody, anthropicResponse, ANTHROPIC],
  ["embeddings", "/v1/embeddings", { model: "m", input: "a" }, embeddingResponse, OPENAI],
];

describe("responses", () => {
  for (const [name, path, reqBody, resBody, m] of responseCases) {
    test(`${name}: mutated whole bodies, error bodies, and the same objects as stream events`, () => {
      const req = parseAiRequest(request(path, reqBody), m)!;
      for (const mutated of mutations(resBody)) {
        noInternalError(parseAiResponse(req, jsonResponse(200, mutated as object)), `${name} ${JSON.stringify(mutated)}`);
        noInternalError(parseAiResponse(req, jsonResponse(500, mutated as object)), `${name} 500 ${JSON.stringify(mutated)}`);
        // Each mutation as every kind of stream event this parser knows.
        const events = [mutated, { type: "message_start", message: mutated }, { type: "response.completed", response: mutated }, { type: "content_block_start", index: 0, content_block: mutated }];
        noInternalError(parseAiResponse(req, sseResponse(sseBlocks(events as object[]))), `${name} stream ${JSON.stringify(mutated)}`);
      }
    });
  }

  test("stream events with hostile shapes: huge and negative indexes, deltas before starts, wrong types", () => {
    const req = parseAiRequest(request("/v1/chat/completions", chatBody), OPENAI)!;
    const many = Array.from({ length: 1000 }, (_, i) => ({ choices: [{ index: 0, delta: { tool_calls: [{ index: i * 1_000_000, id: `c${i}`, function: { name: "f", arguments: "{}" } }] } }] }));
    const res = parseAiResponse(req, sseResponse(sseBlocks([...many, { choices: [{ index: 0, delta: { tool_calls: [{ index: -5, function: { arguments: 3 } }] } }] }, "[DONE]"])));
    // Tool calls tracked per response are bounded.
    expect(res.toolCalls.length).toBe(256);

    const areq = parseAiRequest(request("/v1/messages", anthropicBody, { host: "api.anthropic.com" }), ANTHROPIC)!;
    const ares = parseAiResponse(
      areq,
      sseResponse(
        sseBlocks(
          [
            { type: "content_block_delta", index: 9, delta: { type: "text_delta", text: "orphan" } },
            { type: "content_block_start", index: Number.MAX_SAFE_INTEGER, content_block: { type: "text", text: "far" } },
            { type: "message_delta", delta: { stop_reason: 5 }, usage: { output_tokens: "many" } },
            { type: "message_stop" },
          ],
          true,
        ),
      ),
    );
    expect(ares).toMatchObject({ success: true, content: "far" });
    expect(ares.finishReason).toBeUndefined();
    expect(ares.usage).toBeUndefined();
  });

  test("a large stream parses in linear time", () => {
    const req = parseAiRequest(request("/v1/chat/completions", chatBody), OPENAI)!;
    const piece = "data: " + JSON.stringify({ id: "c", model: "m", choices: [{ index: 0, delta: { content: "token " } }] }) + "\n\n";
    const count = 50_000; // ~4.5 MB of SSE
    const body = piece.repeat(count) + "data: [DONE]\n\n";
    const chunks = body.match(/[\s\S]{1,4096}/g)!;
    const started = performance.now();
    const res = parseAiResponse(req, sseResponse(chunks));
    const ms = performance.now() - started;
    expect(res.content!.length).toBe("token ".length * count);
    expect(res.incomplete).toBeUndefined();
    console.log(`providers: ${(body.length / 1e6).toFixed(1)} MB chat stream, ${count} events, parsed in ${ms.toFixed(0)} ms`);
  }, 5000); // a quadratic parse of 50,000 events overruns this timeout: the bound, without a wall-clock assertion
});
