// Request handlers that answer like the real OpenAI and Anthropic APIs (same paths, headers, JSON and SSE
// event order), with fixed content so tests can assert exact events. Served over TLS by upstream.ts.
import type http from "node:http";
import zlib from "node:zlib";

export const FIXED = {
  openaiChatId: "chatcmpl-AbC123xyz",
  openaiToolCallId: "call_Wx9fQ2pL",
  weatherArgs: '{"city":"Paris"}',
  streamedText: ["Hello", ", Bonjour", ", Hola", "!"],
  responsesText: ["Packets ", "cross the proxy: ", "nothing lost."],
  anthropicMsgId: "msg_01XFDUDYJgAACzvnptvVoYEL",
  anthropicToolId: "toolu_01A09q90qw90lq917835lq9",
  thinking: "The user wants Rome's weather; call the tool.",
};

export type Json = Record<string, unknown>;

/** Answers one request itself (true) or leaves it to the OpenAI/Anthropic routes (false). */
export type ExtraRoute = (req: http.IncomingMessage, res: http.ServerResponse, body: Json, raw: Buffer) => boolean;

/** OpenAI-compatible providers serve chat under their own prefixes (/openai/v1, /api/v1, none): answered as /v1. */
export const anyChatCompletionsPath: ExtraRoute = (req) => {
  if (req.url?.endsWith("/chat/completions")) req.url = "/v1/chat/completions";
  return false;
};

export function fakeProviderHandler(opts: { onRequest?: (req: http.IncomingMessage, body: string) => void; extra?: ExtraRoute } = {}) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const body = (req.headers["content-encoding"] === "gzip" ? zlib.gunzipSync(raw) : raw).toString("utf8");
      opts.onRequest?.(req, body);
      let json: Json = {};
      try {
        json = body ? (JSON.parse(body) as Json) : {};
      } catch {
        return sendJson(req, res, 400, { error: { message: "body is not JSON", type: "invalid_request_error" } });
      }
      if (opts.extra?.(req, res, json, raw)) return;
      route(req, res, json);
    });
  };
}

function route(req: http.IncomingMessage, res: http.ServerResponse, body: Json) {
  const url = new URL(req.url ?? "/", "https://x");
  if (req.method === "POST" && url.pathname === "/v1/chat/completions") return openaiChat(req, res, body);
  if (req.method === "POST" && url.pathname === "/v1/responses") return openaiResponses(res, body);
  if (req.method === "POST" && url.pathname === "/v1/embeddings") return sendJson(req, res, 200, openaiEmbeddings(body));
  if (req.method === "POST" && url.pathname === "/v1/messages") return anthropicMessages(req, res, body);
  if (req.method === "GET" && url.pathname === "/v1/models") return sendJson(req, res, 200, { object: "list", data: [] });
  sendJson(req, res, 404, { error: { message: `Unknown path ${url.pathname}`, type: "invalid_request_error", code: "unknown_url" } });
}

/** JSON responses are gzipped when the client accepts it, as the real APIs do. */
export function sendJson(req: http.IncomingMessage, res: http.ServerResponse, status: number, json: unknown, headers: Json = {}) {
  let payload: Buffer = Buffer.from(JSON.stringify(json));
  const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
  if (gzip) payload = zlib.gzipSync(payload);
  res.writeHead(status, {
    "content-type": "application/json",
    "x-request-id": "req_7f3a9c",
    ...(gzip ? { "content-encoding": "gzip" } : {}),
    ...headers,
  });
  res.end(payload);
}

export function startSse(res: http.ServerResponse) {
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-request-id": "req_sse_1" });
  return (data: unknown, event?: string) => res.write(`${event ? `event: ${event}\n` : ""}data: ${JSON.stringify(data)}\n\n`);
}

function openaiChat(req: http.IncomingMessage, res: http.ServerResponse, body: Json) {
  const model = String(body.model);
  if (model === "rate-limited-model") {
    return sendJson(req, res, 429, {
      error: { message: "Rate limit reached for requests", type: "requests", param: null, code: "rate_limit_exceeded" },
    });
  }
  const created = 1_732_000_000;
  if (model === "echo-model") return openaiEcho(req, res, body, created);
  const wantsTools = Array.isArray(body.tools) && body.tools.length > 0;
  if (!body.stream) {
    const message = wantsTools
      ? {
          role: "assistant",
          content: null,
          tool_calls: [{ id: FIXED.openaiToolCallId, type: "function", function: { name: "get_weather", arguments: FIXED.weatherArgs } }],
          refusal: null,
        }
      : { role: "assistant", content: "Hello!", refusal: null };
    return sendJson(req, res, 200, {
      id: FIXED.openaiChatId,
      object: "chat.completion",
      created,
      model: `${model}-2024-07-18`,
      choices: [{ index: 0, message, logprobs: null, finish_reason: wantsTools ? "tool_calls" : "stop" }],
      usage: {
        prompt_tokens: 82,
        completion_tokens: 17,
        total_tokens: 99,
        prompt_tokens_details: { cached_tokens: 64, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
      },
      system_fingerprint: "fp_0ba0d124f1",
    });
  }
  const send = startSse(res);
  const base = { id: FIXED.openaiChatId, object: "chat.completion.chunk", created, model: `${model}-2024-08-06`, system_fingerprint: "fp_1" };
  const chunk = (delta: Json, finish: string | null = null) => send({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null });
  chunk({ role: "assistant", content: "", refusal: null });
  if (wantsTools) {
    const calls = [
      { id: "call_paris1", args: ['{"ci', 'ty": "Pa', 'ris"}'] },
      { id: "call_tokyo2", args: ['{"city"', ': "Tokyo"}'] },
    ];
    calls.forEach((c, index) => {
      chunk({ tool_calls: [{ index, id: c.id, type: "function", function: { name: "get_weather", arguments: "" } }] });
      for (const part of c.args) chunk({ tool_calls: [{ index, function: { arguments: part } }] });
    });
    chunk({}, "tool_calls");
  } else {
    for (const text of FIXED.streamedText) chunk({ content: text });
    chunk({}, "stop");
  }
  send({ ...base, choices: [], usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } } });
  res.end("data: [DONE]\n\n");
}

/** Answers with the last user message, so tests can check each answer is paired with its own request. */
function openaiEcho(req: http.IncomingMessage, res: http.ServerResponse, body: Json, created: number) {
  const messages = (body.messages ?? []) as Array<{ role: string; content: unknown }>;
  const last = [...messages].reverse().find((m) => m.role === "user");
  const text = `echo: ${typeof last?.content === "string" ? last.content : ""}`;
  const usage = { prompt_tokens: text.length, completion_tokens: 3, total_tokens: text.length + 3 };
  if (!body.stream) {
    return sendJson(req, res, 200, {
      id: `chatcmpl-echo-${text.length}`,
      object: "chat.completion",
      created,
      model: "echo-model",
      choices: [{ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: "stop" }],
      usage,
    });
  }
  const send = startSse(res);
  const base = { id: "chatcmpl-echo", object: "chat.completion.chunk", created, model: "echo-model" };
  for (const part of [text.slice(0, 6), text.slice(6)]) send({ ...base, choices: [{ index: 0, delta: { content: part }, finish_reason: null }] });
  send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
  send({ ...base, choices: [], usage });
  res.end("data: [DONE]\n\n");
}

function openaiResponses(res: http.ServerResponse, body: Json) {
  const send = startSse(res);
  const id = "resp_67ccd2bed1ec8190";
  const msgId = "msg_67ccd2bf17f0";
  const base = { id, object: "response", created_at: 1_741_290_958, model: `${body.model}-2025-04-14`, output: [] as unknown[], usage: null };
  let n = 0;
  const ev = (type: string, data: Json) => send({ type, sequence_number: n++, ...data }, type);
  ev("response.created", { response: { ...base, status: "in_progress" } });
  ev("response.in_progress", { response: { ...base, status: "in_progress" } });
  ev("response.output_item.added", { output_index: 0, item: { id: msgId, type: "message", status: "in_progress", role: "assistant", content: [] } });
  ev("response.content_part.added", { item_id: msgId, output_index: 0, content_index: 0, part: { type: "output_text", text: "", annotations: [] } });
  for (const delta of FIXED.responsesText) ev("response.output_text.delta", { item_id: msgId, output_index: 0, content_index: 0, delta });
  const text = FIXED.responsesText.join("");
  ev("response.output_text.done", { item_id: msgId, output_index: 0, content_index: 0, text });
  const item = { id: msgId, type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text, annotations: [] }] };
  ev("response.output_item.done", { output_index: 0, item });
  ev("response.completed", {
    response: {
      ...base,
      status: "completed",
      output: [item],
      usage: { input_tokens: 15, input_tokens_details: { cached_tokens: 0 }, output_tokens: 11, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 26 },
    },
  });
  res.end();
}

function openaiEmbeddings(body: Json) {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  return {
    object: "list",
    data: inputs.map((_, index) => ({ object: "embedding", index, embedding: Array.from({ length: 8 }, (_, i) => (index + 1) * 0.01 * i) })),
    model: body.model,
    usage: { prompt_tokens: 4, total_tokens: 4 },
  };
}

function anthropicMessages(req: http.IncomingMessage, res: http.ServerResponse, body: Json) {
  const model = String(body.model);
  // The API takes the key as x-api-key or, as @anthropic-ai/sdk 1.x sends it, as a Bearer token.
  if (!req.headers["x-api-key"] && !/^Bearer sk-ant-/.test(String(req.headers.authorization ?? ""))) {
    return sendJson(req, res, 401, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } });
  }
  const usageStart = { input_tokens: 472, cache_creation_input_tokens: 0, cache_read_input_tokens: 128, output_tokens: 2 };
  if (!body.stream) {
    return sendJson(req, res, 200, {
      id: FIXED.anthropicMsgId,
      type: "message",
      role: "assistant",
      model,
      content: [
        { type: "text", text: "Let me check the weather." },
        { type: "tool_use", id: FIXED.anthropicToolId, name: "get_weather", input: { city: "Berlin" } },
      ],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage: { ...usageStart, output_tokens: 57 },
    }, { "request-id": "req_011CV" });
  }
  const send = startSse(res);
  const ev = (type: string, data: Json) => send({ type, ...data }, type);
  ev("message_start", { message: { id: FIXED.anthropicMsgId, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: usageStart } });
  ev("content_block_start", { index: 0, content_block: { type: "thinking", thinking: "", signature: "" } });
  for (const part of ["The user wants Rome's weather", "; call the tool."]) ev("content_block_delta", { index: 0, delta: { type: "thinking_delta", thinking: part } });
  ev("content_block_delta", { index: 0, delta: { type: "signature_delta", signature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3h" } });
  ev("content_block_stop", { index: 0 });
  ev("content_block_start", { index: 1, content_block: { type: "text", text: "" } });
  ev("content_block_delta", { index: 1, delta: { type: "text_delta", text: "Checking Rome." } });
  ev("content_block_stop", { index: 1 });
  send({ type: "ping" }, "ping");
  ev("content_block_start", { index: 2, content_block: { type: "tool_use", id: FIXED.anthropicToolId, name: "get_weather", input: {} } });
  for (const part of ["", '{"city": ', '"Rome"}']) ev("content_block_delta", { index: 2, delta: { type: "input_json_delta", partial_json: part } });
  ev("content_block_stop", { index: 2 });
  ev("message_delta", { delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 89 } });
  ev("message_stop", {});
  res.end();
}
