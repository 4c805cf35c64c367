// The provider parsers between the real neighbours they run between in the sensor: raw HTTP/1.1
// bytes (gzip bodies, chunked SSE) through HttpConnectionDecoder, then parseAiRequest/Response, then
// the OISP event builders, checked against the schema and what the end-to-end tests expect.
import { describe, expect, test } from "bun:test";
import zlib from "node:zlib";
import { HttpConnectionDecoder } from "../../src/decode/connection.ts";
import type { ConnectionOutput } from "../../src/decode/connection-decoder.ts";
import { parseAiRequest, parseAiResponse } from "../../src/decode/providers/index.ts";
import type { HttpExchange } from "../../src/decode/types.ts";
import { buildAiRequest, buildAiResponse, buildToolCalls, redactEvent, type OispEvent } from "../../src/events/index.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";
import { connContext, connMeta } from "./events.fixtures.ts";
import { ANTHROPIC, OPENAI, sseBlocks } from "./fixtures/providers.ts";
import type { EndpointMatch } from "../../src/spec/types.ts";

const OPENAI_KEY = "sk-proj-E2eTestKey0123456789abcdefSECRET";
const ANTHROPIC_KEY = "sk-ant-api03-E2eTestKeyABCDEFSECRET";

function httpRequest(host: string, path: string, headers: string[], body: object): Buffer {
  const payload = Buffer.from(JSON.stringify(body));
  return Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\n${headers.map((h) => `${h}\r\n`).join("")}Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n`),
    payload,
  ]);
}

function gzipJsonResponse(status: number, body: object, headers: string[] = []): Buffer {
  const payload = zlib.gzipSync(Buffer.from(JSON.stringify(body)));
  return Buffer.concat([
    Buffer.from(`HTTP/1.1 ${status} X\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n${headers.map((h) => `${h}\r\n`).join("")}Content-Length: ${payload.length}\r\n\r\n`),
    payload,
  ]);
}

/** An SSE response head and one HTTP chunk per event, each pushed separately (as the server flushes). */
function chunkedSse(blocks: string[], headers: string[] = []): Buffer[] {
  const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n${headers.map((h) => `${h}\r\n`).join("")}Transfer-Encoding: chunked\r\n\r\n`);
  const chunks = blocks.map((b) => {
    const data = Buffer.from(b);
    return Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from("\r\n")]);
  });
  return [head, ...chunks, Buffer.from("0\r\n\r\n")];
}

/** Runs the sensor's path for one exchange: decoder → parsers → builders; returns the events. */
function sensorPath(m: EndpointMatch, req: Buffer, resPieces: Buffer[]): OispEvent[] {
  const decoder = new HttpConnectionDecoder("c-7f3a");
  const outputs: ConnectionOutput[] = [...decoder.push("c2s", req, 1000)];
  resPieces.forEach((p, i) => outputs.push(...decoder.push("s2c", p, 1100 + 10 * i)));
  outputs.push(...decoder.close(2000));
  const done = outputs.find((o): o is { kind: "exchange"; exchange: HttpExchange } => o.kind === "exchange");
  if (!done) throw new Error(`no exchange: ${JSON.stringify(outputs.map((o) => o.kind))}`);
  const ctx = connContext(connMeta({ host: m.host, sni: m.host }));
  const parsed = parseAiRequest(done.exchange.request, m)!;
  const reqEvent = buildAiRequest(ctx, done.exchange, parsed);
  const parsedRes = parseAiResponse(parsed, done.exchange.response!);
  const resEvent = buildAiResponse(ctx, done.exchange, parsed, parsedRes, reqEvent);
  const events = [reqEvent, resEvent, ...buildToolCalls(ctx, parsedRes, resEvent)];
  for (const e of events) {
    validateOispEvent(e);
    validateOispEvent(redactEvent(e, "safe"));
  }
  return events;
}

const data = (e: OispEvent | undefined) => (e as unknown as { data: any }).data;

describe("provider parsers inside the sensor's path", () => {
  test("OpenAI chat with a tool call, gzip JSON response", () => {
    const events = sensorPath(
      OPENAI,
      httpRequest("api.openai.com", "/v1/chat/completions", [`Authorization: Bearer ${OPENAI_KEY}`], {
        model: "gpt-4o-mini",
        messages: [
          { role: "system", content: "You are terse." },
          { role: "user", content: "What is the weather in Paris?" },
        ],
        tools: [{ type: "function", function: { name: "get_weather", description: "Current weather for a city", parameters: {} } }],
        temperature: 0.2,
      }),
      [
        gzipJsonResponse(
          200,
          {
            id: "chatcmpl-AbC123xyz",
            object: "chat.completion",
            model: "gpt-4o-mini-2024-07-18",
            choices: [{ index: 0, message: { role: "assistant", content: null, tool_calls: [{ id: "call_Wx9fQ2pL", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] }, finish_reason: "tool_calls" }],
            usage: { prompt_tokens: 82, completion_tokens: 17, total_tokens: 99, prompt_tokens_details: { cached_tokens: 64 } },
          },
          ["x-request-id: req_7f3a9c"],
        ),
      ],
    );
    const [req, res, call] = events;
    expect(data(req).messages.map((m: any) => [m.role, m.content])).toEqual([
      ["system", "You are terse."],
      ["user", "What is the weather in Paris?"],
    ]);
    expect(data(req).auth).toEqual({ type: "api_key", key_prefix: "sk-proj-", key_hash: expect.stringMatching(/^sha256:[0-9a-f]{16}$/) });
    expect(data(req).parameters.temperature).toBe(0.2);
    expect(data(res)).toMatchObject({
      provider_request_id: "req_7f3a9c",
      model: { id: "gpt-4o-mini-2024-07-18" },
      status_code: 200,
      success: true,
      finish_reason: "tool_calls",
      usage: { prompt_tokens: 82, completion_tokens: 17, total_tokens: 99, cached_tokens: 64 },
    });
    expect(data(res).tool_calls).toEqual([{ id: "call_Wx9fQ2pL", name: "get_weather", type: "function", arguments: '{"city":"Paris"}', arguments_hash: expect.any(String) }]);
    expect(data(call).arguments).toEqual({ city: "Paris" });
    expect(JSON.stringify(events)).not.toContain("SECRET");
  });

  test("OpenAI streamed chat over chunked transfer: content, usage and time to first token", () => {
    const base = { id: "chatcmpl-1", object: "chat.completion.chunk", model: "gpt-4o-mini-2024-08-06" };
    const chunk = (delta: object, finish: string | null = null) => ({ ...base, choices: [{ index: 0, delta, finish_reason: finish }], usage: null });
    const blocks = sseBlocks([
      chunk({ role: "assistant", content: "" }),
      ...["Hello", ", Bonjour", ", Hola", "!"].map((content) => chunk({ content })),
      chunk({}, "stop"),
      { ...base, choices: [], usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 } },
      "[DONE]",
    ]);
    const events = sensorPath(
      OPENAI,
      httpRequest("api.openai.com", "/v1/chat/completions", [`Authorization: Bearer ${OPENAI_KEY}`], {
        model: "gpt-4o-mini",
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: "user", content: "Say hello in three languages." }],
      }),
      chunkedSse(blocks, ["x-request-id: req_sse_1"]),
    );
    const res = data(events[1]);
    expect(res.choices[0].message.content).toBe("Hello, Bonjour, Hola!");
    expect(res.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 });
    expect(res.finish_reason).toBe("stop");
    // Request ended at 1000; the head came at 1100, the empty role chunk at 1110, "Hello" at 1120.
    expect(res.time_to_first_token_ms).toBe(120);
  });

  test("Anthropic stream with thinking and a tool call", () => {
    const ev = (type: string, d: object = {}) => ({ type, ...d });
    const blocks = sseBlocks(
      [
        ev("message_start", { message: { id: "msg_01X", model: "claude-sonnet-4-5", usage: { input_tokens: 472, cache_creation_input_tokens: 0, cache_read_input_tokens: 128, output_tokens: 2 } } }),
        ev("content_block_start", { index: 0, content_block: { type: "thinking", thinking: "" } }),
        ev("content_block_delta", { index: 0, delta: { type: "thinking_delta", thinking: "The user wants Rome's weather; call the tool." } }),
        ev("content_block_start", { index: 1, content_block: { type: "text", text: "" } }),
        ev("content_block_delta", { index: 1, delta: { type: "text_delta", text: "Checking Rome." } }),
        ev("content_block_start", { index: 2, content_block: { type: "tool_use", id: "toolu_01", name: "get_weather", input: {} } }),
        ev("content_block_delta", { index: 2, delta: { type: "input_json_delta", partial_json: '{"city": "Rome"}' } }),
        ev("message_delta", { delta: { stop_reason: "tool_use" }, usage: { output_tokens: 89 } }),
        ev("message_stop"),
      ],
      true,
    );
    const events = sensorPath(
      ANTHROPIC,
      httpRequest("api.anthropic.com", "/v1/messages", [`x-api-key: ${ANTHROPIC_KEY}`, "anthropic-version: 2023-06-01"], {
        model: "claude-sonnet-4-5",
        max_tokens: 2048,
        stream: true,
        thinking: { type: "enabled", budget_tokens: 1024 },
        messages: [{ role: "user", content: "Think, then check the weather in Rome." }],
      }),
      chunkedSse(blocks, ["request-id: req_011CV"]),
    );
    const [req, res, call] = events;
    expect(data(req).auth.key_prefix).toBe("sk-ant-");
    expect(data(res).choices[0].message.content).toBe("Checking Rome.");
    expect((res!.attrs as any).thinking).toBe("The user wants Rome's weather; call the tool.");
    // Input tokens include cache reads (src/events/input-tokens.ts); Anthropic's own count stays in attrs.
    expect(data(res).usage).toMatchObject({ prompt_tokens: 600, completion_tokens: 89, cached_tokens: 128 });
    expect((res!.attrs as any).prompt_tokens_raw).toBe(472);
    expect(data(res).tool_calls).toEqual([{ id: "toolu_01", name: "get_weather", type: "function", arguments: '{"city": "Rome"}', arguments_hash: expect.any(String) }]);
    expect(data(call).arguments).toEqual({ city: "Rome" });
    expect(JSON.stringify(events)).not.toContain("SECRET");
  });

  test("a rate-limit error and an Anthropic auth error", () => {
    const openai = sensorPath(
      OPENAI,
      httpRequest("api.openai.com", "/v1/chat/completions", [], { model: "rate-limited-model", messages: [{ role: "user", content: "hi" }] }),
      [gzipJsonResponse(429, { error: { message: "Rate limit reached for requests", type: "requests", param: null, code: "rate_limit_exceeded" } })],
    );
    expect(data(openai[1])).toMatchObject({ success: false, status_code: 429, error: { type: "requests", code: "rate_limit_exceeded" } });
    expect(data(openai[0]).auth).toEqual({ type: "none" });
    const anthropic = sensorPath(
      ANTHROPIC,
      httpRequest("api.anthropic.com", "/v1/messages", [], { model: "claude-sonnet-4-5", max_tokens: 5, messages: [] }),
      [gzipJsonResponse(401, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } })],
    );
    expect(data(anthropic[1])).toMatchObject({ success: false, status_code: 401, error: { type: "authentication_error", message: "invalid x-api-key" } });
  });
});
