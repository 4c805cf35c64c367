// Fake upstreams for the providers with their own wire formats: Gemini (JSON, SSE with alt=sse, streamed
// JSON array), Bedrock (Converse JSON, ConverseStream and InvokeModelWithResponseStream as AWS event
// streams encoded by the AWS SDK's own codec), Cohere v2 (JSON and SSE), Azure OpenAI (deployment path,
// api-key header) and Ollama (plain HTTP, NDJSON). Paths, headers and bodies follow the real APIs, with
// fixed content so tests can assert events exactly. Plugs into fakeProviderHandler({ extra }).
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fakeProviderHandler, sendJson, startSse, type ExtraRoute, type Json } from "./fake-providers.ts";

export const MORE = {
  gemini: {
    text: "Gemini says hi.",
    streamed: ["Gem", "ini ", "streams."],
    usage: { promptTokenCount: 31, candidatesTokenCount: 7, totalTokenCount: 52, cachedContentTokenCount: 8, thoughtsTokenCount: 14 },
    call: { name: "get_weather", args: { city: "Lyon" } },
    responseId: "gem-resp-9f8e7d",
  },
  bedrock: {
    requestId: "8b2c4a1e-1111-2222-3333-444455556666",
    converseText: "Bedrock converse answer.",
    streamed: ["Bed", "rock ", "streams."],
    toolUseId: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
    usage: { inputTokens: 41, outputTokens: 13, totalTokens: 54 },
    anthropicText: ["Claude ", "on Bedrock."],
  },
  cohere: {
    id: "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
    text: "Cohere answers.",
    streamed: ["Co", "here ", "streams."],
    toolCallId: "get_weather_k9x2v7a1",
    usage: { billed_units: { input_tokens: 17, output_tokens: 6 }, tokens: { input_tokens: 211, output_tokens: 6 } },
  },
  azure: { text: "Azure says hello.", requestId: "apim-7c0a1d" },
  ollama: {
    streamed: ["Ol", "lama ", "local."],
    promptEvalCount: 26,
    evalCount: 298,
    call: { name: "get_weather", arguments: { city: "Oslo" } },
  },
};

export function moreProvidersRoute(): ExtraRoute {
  return (req, res, body) => {
    const url = new URL(req.url ?? "/", "https://x");
    const host = String(req.headers.host ?? req.headers[":authority"] ?? "").toLowerCase();
    if (req.method !== "POST") return false;
    const vertexClaude = /\/publishers\/anthropic\/models\/([^/:]+):(rawPredict|streamRawPredict)$/.exec(url.pathname);
    if (vertexClaude && host.endsWith("aiplatform.googleapis.com")) {
      vertexAnthropic(req, res, body, vertexClaude[2] === "streamRawPredict");
      return true;
    }
    const gemini = /\/models\/([^/:]+):(generateContent|streamGenerateContent|embedContent)$/.exec(url.pathname);
    if (gemini && (host.startsWith("generativelanguage.") || host.endsWith("aiplatform.googleapis.com"))) {
      geminiRoute(req, res, body, gemini[1]!, gemini[2]!, url);
      return true;
    }
    const bedrock = /^\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream)$/.exec(url.pathname);
    if (bedrock && host.startsWith("bedrock-runtime.")) {
      bedrockRoute(req, res, body, decodeURIComponent(bedrock[1]!), bedrock[2]!);
      return true;
    }
    if (url.pathname === "/v2/chat" && host.startsWith("api.cohere.")) {
      cohereChat(req, res, body);
      return true;
    }
    const azure = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/.exec(url.pathname);
    if (azure && host.endsWith(".openai.azure.com")) {
      azureChat(req, res, body, azure[1]!, url);
      return true;
    }
    return false;
  };
}

// --- Gemini -------------------------------------------------------------------------------------

function geminiRoute(req: http.IncomingMessage, res: http.ServerResponse, body: Json, model: string, action: string, url: URL) {
  // Vertex AI takes an OAuth access token; the Gemini API an API key.
  if (!req.headers["x-goog-api-key"] && !url.searchParams.get("key") && !/^Bearer ya29\./.test(String(req.headers.authorization ?? ""))) {
    return sendJson(req, res, 403, { error: { code: 403, message: "Method doesn't allow unregistered callers.", status: "PERMISSION_DENIED" } });
  }
  const g = MORE.gemini;
  if (action === "embedContent") {
    return sendJson(req, res, 200, { embedding: { values: [0.1, 0.2, 0.3, 0.4] } });
  }
  const tools = Array.isArray(body.tools) && body.tools.length > 0;
  // Once the tool result came back (functionResponse), the model answers in text.
  const answered = JSON.stringify(body.contents ?? []).includes("functionResponse");
  const parts = tools && !answered ? [{ functionCall: g.call }] : [{ text: g.text }];
  const finish = { finishReason: "STOP", index: 0 };
  const whole = { candidates: [{ content: { role: "model", parts }, ...finish }], usageMetadata: g.usage, modelVersion: `${model}-001`, responseId: g.responseId };
  if (action === "generateContent") return sendJson(req, res, 200, whole);
  const pieces = tools && !answered ? [whole] : g.streamed.map((text, i) => ({
    candidates: [{ content: { role: "model", parts: [{ text }] }, ...(i === g.streamed.length - 1 ? finish : { index: 0 }) }],
    ...(i === g.streamed.length - 1 ? { usageMetadata: g.usage } : { usageMetadata: { promptTokenCount: g.usage.promptTokenCount, totalTokenCount: g.usage.promptTokenCount } }),
    modelVersion: `${model}-001`,
    responseId: g.responseId,
  }));
  if (url.searchParams.get("alt") === "sse") {
    res.writeHead(200, { "content-type": "text/event-stream", "x-goog-request-id": "gr-1" });
    for (const p of pieces) res.write(`data: ${JSON.stringify(p)}\r\n\r\n`);
    return res.end();
  }
  // Without alt=sse the API streams one JSON array, an element at a time.
  res.writeHead(200, { "content-type": "application/json; charset=UTF-8" });
  pieces.forEach((p, i) => res.write(`${i === 0 ? "[" : ",\r\n"}${JSON.stringify(p, null, 2)}`));
  res.end("]");
}

// --- Bedrock ------------------------------------------------------------------------------------

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const esEvent = (type: string, payload: unknown) =>
  codec.encode({
    headers: {
      ":event-type": { type: "string", value: type },
      ":content-type": { type: "string", value: "application/json" },
      ":message-type": { type: "string", value: "event" },
    },
    body: fromUtf8(JSON.stringify({ ...(payload as Json), p: "abcdefghijkl" })),
  });

function bedrockRoute(req: http.IncomingMessage, res: http.ServerResponse, body: Json, modelId: string, op: string) {
  const b = MORE.bedrock;
  if (!/^AWS4-HMAC-SHA256 Credential=AKIA/.test(String(req.headers.authorization ?? ""))) {
    return sendJson(req, res, 403, { message: "The security token included in the request is invalid." }, { "x-amzn-errortype": "UnrecognizedClientException" });
  }
  const ids = { "x-amzn-requestid": b.requestId };
  const tools = !!(body.toolConfig as Json | undefined)?.tools;
  if (op === "converse") {
    const content = tools
      ? [{ text: "Let me look." }, { toolUse: { toolUseId: b.toolUseId, name: "get_weather", input: { city: "Madrid" } } }]
      : [{ text: b.converseText }];
    return sendJson(req, res, 200, {
      output: { message: { role: "assistant", content } },
      stopReason: tools ? "tool_use" : "end_turn",
      usage: b.usage,
      metrics: { latencyMs: 321 },
    }, ids);
  }
  if (op === "invoke") res.writeHead(200, { "content-type": "application/json", ...ids });
  else res.writeHead(200, { "content-type": "application/vnd.amazon.eventstream", ...ids });
  if (op === "converse-stream") {
    res.write(esEvent("messageStart", { role: "assistant" }));
    b.streamed.forEach((text, i) => {
      const frame = Buffer.from(esEvent("contentBlockDelta", { contentBlockIndex: 0, delta: { text } }));
      // Model "corrupt-crc": the second delta arrives with one payload byte flipped (message CRC fails).
      if (modelId === "corrupt-crc" && i === 1) frame[frame.length - 10]! ^= 0x01;
      res.write(frame);
    });
    res.write(esEvent("contentBlockStop", { contentBlockIndex: 0 }));
    res.write(esEvent("messageStop", { stopReason: "end_turn" }));
    res.write(esEvent("metadata", { usage: b.usage, metrics: { latencyMs: 222 } }));
    return res.end();
  }
  if (op === "invoke-with-response-stream") {
    const chunk = (inner: unknown) => esEvent("chunk", { bytes: Buffer.from(JSON.stringify(inner)).toString("base64") });
    const usage = { input_tokens: 25, output_tokens: 1 };
    res.write(chunk({ type: "message_start", message: { id: "msg_bdrk_01", type: "message", role: "assistant", model: "claude-3-5-haiku-20241022", content: [], stop_reason: null, usage } }));
    res.write(chunk({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }));
    for (const text of b.anthropicText) res.write(chunk({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text } }));
    res.write(chunk({ type: "content_block_stop", index: 0 }));
    res.write(chunk({ type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 9 } }));
    res.write(chunk({ type: "message_stop", "amazon-bedrock-invocationMetrics": { inputTokenCount: 25, outputTokenCount: 9, invocationLatency: 400, firstByteLatency: 100 } }));
    return res.end();
  }
  // InvokeModel: the model's own body (Anthropic Messages for anthropic.* ids).
  res.end(JSON.stringify({
    id: "msg_bdrk_02",
    type: "message",
    role: "assistant",
    model: modelId,
    content: [{ type: "text", text: b.anthropicText.join("") }],
    stop_reason: "end_turn",
    usage: { input_tokens: 25, output_tokens: 9 },
  }));
}

/** Claude on Vertex AI: the Messages body (model in the path, anthropic_version in the body). */
function vertexAnthropic(req: http.IncomingMessage, res: http.ServerResponse, body: Json, stream: boolean) {
  if (!/^Bearer ya29\./.test(String(req.headers.authorization ?? ""))) return sendJson(req, res, 401, { error: { code: 401, status: "UNAUTHENTICATED" } });
  const usage = { input_tokens: 33, output_tokens: 12 };
  const text = "Claude on Vertex.";
  if (!stream) {
    return sendJson(req, res, 200, { id: "msg_vrtx_01", type: "message", role: "assistant", model: "claude-3-5-sonnet-v2-20241022", content: [{ type: "text", text }], stop_reason: "end_turn", usage });
  }
  const send = startSse(res);
  const ev = (type: string, data: Json) => send({ type, ...data }, type);
  ev("message_start", { message: { id: "msg_vrtx_02", type: "message", role: "assistant", model: "claude-3-5-sonnet-v2-20241022", content: [], usage: { ...usage, output_tokens: 1 } } });
  ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
  for (const part of ["Claude ", "on Vertex."]) ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: part } });
  ev("content_block_stop", { index: 0 });
  ev("message_delta", { delta: { stop_reason: "end_turn" }, usage: { output_tokens: 12 } });
  ev("message_stop", {});
  res.end();
  void body;
}

// --- Cohere v2 ----------------------------------------------------------------------------------

function cohereChat(req: http.IncomingMessage, res: http.ServerResponse, body: Json) {
  const c = MORE.cohere;
  if (!/^Bearer \S+/.test(String(req.headers.authorization ?? ""))) return sendJson(req, res, 401, { id: "e1", message: "no api key supplied" });
  const tools = Array.isArray(body.tools) && body.tools.length > 0;
  if (!body.stream) {
    const message = tools
      ? {
          role: "assistant",
          tool_plan: "I will look up the weather.",
          tool_calls: [{ id: c.toolCallId, type: "function", function: { name: "get_weather", arguments: '{"city":"Bern"}' } }],
        }
      : { role: "assistant", content: [{ type: "text", text: c.text }] };
    return sendJson(req, res, 200, { id: c.id, message, finish_reason: tools ? "TOOL_CALL" : "COMPLETE", usage: c.usage });
  }
  res.writeHead(200, { "content-type": "text/event-stream" });
  const send = (type: string, data: Json) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  send("message-start", { id: c.id, delta: { message: { role: "assistant", content: [], tool_plan: "", tool_calls: [], citations: [] } } });
  send("content-start", { index: 0, delta: { message: { content: { type: "text", text: "" } } } });
  for (const text of c.streamed) send("content-delta", { index: 0, delta: { message: { content: { text } } } });
  send("content-end", { index: 0 });
  send("message-end", { delta: { finish_reason: "COMPLETE", usage: c.usage } });
  res.end();
}

// --- Azure OpenAI -------------------------------------------------------------------------------

function azureChat(req: http.IncomingMessage, res: http.ServerResponse, body: Json, deployment: string, url: URL) {
  const a = MORE.azure;
  if (!req.headers["api-key"] || !url.searchParams.get("api-version")) {
    return sendJson(req, res, 401, { error: { code: "401", message: "Access denied due to invalid subscription key." } });
  }
  sendJson(req, res, 200, {
    id: "chatcmpl-azure-1",
    object: "chat.completion",
    created: 1_732_000_000,
    model: "gpt-4o-2024-11-20",
    choices: [{ index: 0, message: { role: "assistant", content: a.text }, finish_reason: "stop", content_filter_results: {} }],
    usage: { prompt_tokens: 19, completion_tokens: 5, total_tokens: 24 },
    prompt_filter_results: [],
    system_fingerprint: deployment,
  }, { "apim-request-id": a.requestId });
  void body;
}

// --- Ollama (plain HTTP, like the real local server) --------------------------------------------

export interface PlainServer {
  port: number;
  close(): Promise<void>;
}

/**
 * A plain-HTTP Ollama: /api/chat (NDJSON stream by default), /api/generate, /api/embed. On Ollama's own
 * port by default, because the sensor knows local model servers by host and port (127.0.0.1:11434).
 */
export async function startFakeOllama(port = 11434): Promise<PlainServer> {
  const server = http.createServer(fakeProviderHandler({ extra: ollamaRoute }));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new Error(`fake Ollama cannot listen on 127.0.0.1:${port} (${err.code}); is a real Ollama running?`)),
    );
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** LM Studio: an OpenAI-compatible server over plain HTTP on 127.0.0.1:1234 (its default). */
export async function startFakeLmStudio(port = 1234): Promise<PlainServer> {
  const server = http.createServer(fakeProviderHandler());
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(new Error(`fake LM Studio cannot listen on 127.0.0.1:${port} (${err.code})`)));
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const ollamaRoute: ExtraRoute = (req, res, body) => {
  const o = MORE.ollama;
  const url = new URL(req.url ?? "/", "http://x");
  const model = String(body.model);
  const created = "2026-11-25T09:00:00.000000Z";
  const final = {
    model,
    created_at: created,
    done: true,
    done_reason: "stop",
    total_duration: 4_883_583_458,
    load_duration: 1_334_875,
    prompt_eval_count: o.promptEvalCount,
    prompt_eval_duration: 342_546_000,
    eval_count: o.evalCount,
    eval_duration: 4_535_599_000,
  };
  if (url.pathname === "/api/embed") {
    sendJson(req, res, 200, { model, embeddings: [[0.01, 0.02, 0.03]], total_duration: 14_143_917, load_duration: 1_019_500, prompt_eval_count: 8 });
    return true;
  }
  if (url.pathname !== "/api/chat" && url.pathname !== "/api/generate") return false;
  const chat = url.pathname === "/api/chat";
  const tools = Array.isArray(body.tools) && body.tools.length > 0;
  const stream = body.stream !== false;
  if (chat && tools) {
    const msg = { model, created_at: created, message: { role: "assistant", content: "", tool_calls: [{ function: o.call }] }, done: false };
    res.writeHead(200, { "content-type": stream ? "application/x-ndjson" : "application/json; charset=utf-8" });
    if (stream) {
      res.write(`${JSON.stringify(msg)}\n`);
      res.end(`${JSON.stringify({ ...final, message: { role: "assistant", content: "" } })}\n`);
    } else res.end(JSON.stringify({ ...final, message: msg.message }));
    return true;
  }
  const piece = (text: string) => (chat ? { model, created_at: created, message: { role: "assistant", content: text }, done: false } : { model, created_at: created, response: text, done: false });
  const last = chat ? { ...final, message: { role: "assistant", content: "" } } : { ...final, response: "", context: [1, 2, 3] };
  if (!stream) {
    const text = o.streamed.join("");
    sendJson(req, res, 200, chat ? { ...final, message: { role: "assistant", content: text } } : { ...final, response: text, context: [1, 2, 3] });
    return true;
  }
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  for (const text of o.streamed) res.write(`${JSON.stringify(piece(text))}\n`);
  res.end(`${JSON.stringify(last)}\n`);
  return true;
};
