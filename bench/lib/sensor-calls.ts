// The recorded AI calls bench/sensor.ts and bench/sensor-alloc.ts feed the sensor: wire bytes as the relay's tap
// sees them (request, then the response one network read per piece), and the connection they travel on.
import type { ConnMeta } from "../../src/tap/types.ts";

const enc = new TextEncoder();

export interface Call {
  host: string;
  c2s: Uint8Array;
  /** The response as it arrives: one piece per network read. */
  s2c: Uint8Array[];
}

function httpRequest(host: string, p: string, headers: Record<string, string>, body: string): Uint8Array {
  const lines = [`POST ${p} HTTP/1.1`, `Host: ${host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return enc.encode(`${lines.join("\r\n")}\r\n\r\n${body}`);
}

function chunked(parts: string[]): string {
  return parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join("") + "0\r\n\r\n";
}

const OPENAI_HEADERS = {
  "User-Agent": "OpenAI/Python 1.51.0",
  Accept: "application/json",
  "Content-Type": "application/json",
  Authorization: "Bearer sk-proj-Abc123def456GHI789jkl012MNO345pqr678STU901vwx",
  "X-Stainless-Lang": "python",
  "X-Stainless-Package-Version": "1.51.0",
  "X-Stainless-Runtime": "CPython",
};

const chatMessages = [
  { role: "system", content: "You are a careful code reviewer. Answer briefly and cite file names." },
  { role: "user", content: "Summarise the repository and list the risky changes in the last commits, file by file. ".repeat(6) },
];

function openaiChat(): Call {
  const host = "api.openai.com";
  const req = httpRequest(host, "/v1/chat/completions", OPENAI_HEADERS, JSON.stringify({ model: "gpt-4o-mini", messages: chatMessages, temperature: 0.2 }));
  const body = JSON.stringify({
    id: "chatcmpl-AbCdEf123456",
    object: "chat.completion",
    created: 1764000000,
    model: "gpt-4o-mini-2024-07-18",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: "The riskiest change is the migration; the rest are small refactors with tests. ".repeat(9), refusal: null },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: { prompt_tokens: 131, completion_tokens: 160, total_tokens: 291 },
    system_fingerprint: "fp_0ba0d124f1",
  });
  const head = [
    "HTTP/1.1 200 OK",
    "Date: Wed, 25 Nov 2026 11:00:00 GMT",
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    "Connection: keep-alive",
    "openai-organization: user-abc",
    "openai-processing-ms: 812",
    "x-request-id: req_0123456789abcdef",
    "x-ratelimit-remaining-tokens: 199000",
  ].join("\r\n");
  return { host, c2s: req, s2c: [enc.encode(`${head}\r\n\r\n${body}`)] };
}

function openaiStream(): Call {
  const host = "api.openai.com";
  const req = httpRequest(
    host,
    "/v1/chat/completions",
    OPENAI_HEADERS,
    JSON.stringify({ model: "gpt-4o-mini", messages: chatMessages, stream: true, stream_options: { include_usage: true } }),
  );
  const base = { id: "chatcmpl-Str123", object: "chat.completion.chunk", created: 1764000000, model: "gpt-4o-mini-2024-07-18", system_fingerprint: "fp_0ba0d124f1" };
  const events: string[] = [];
  events.push(JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] }));
  for (let i = 0; i < 38; i++) {
    events.push(JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: ` token${i} of the answer,` }, logprobs: null, finish_reason: null }] }));
  }
  events.push(JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }] }));
  events.push(JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 131, completion_tokens: 40, total_tokens: 171 } }));
  const sse = events.map((e) => `data: ${e}\n\n`);
  sse.push("data: [DONE]\n\n");
  const head = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream; charset=utf-8", "Transfer-Encoding: chunked", "Connection: keep-alive", "x-request-id: req_stream0123"].join("\r\n");
  // Head first, then one network read per SSE event (how a stream arrives).
  const s2c = [enc.encode(`${head}\r\n\r\n`), ...chunked(sse).split(/(?<=\r\n)(?=[0-9a-f]+\r\n)/).map((s) => enc.encode(s))];
  return { host, c2s: req, s2c };
}

function anthropicToolStream(): Call {
  const host = "api.anthropic.com";
  const req = httpRequest(
    host,
    "/v1/messages",
    {
      "User-Agent": "claude-cli/1.0.0 (external, cli)",
      "Content-Type": "application/json",
      "x-api-key": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopqrstuvwxyzABCDEF-AAAA",
      "anthropic-version": "2023-06-01",
      Accept: "text/event-stream",
    },
    JSON.stringify({
      model: "claude-sonnet-4-5",
      max_tokens: 1024,
      stream: true,
      system: "You are a coding agent. Use tools to read files.",
      tools: [{ name: "read_file", description: "Read a file", input_schema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] } }],
      messages: [{ role: "user", content: "Read src/index.ts and tell me what it exports." }],
    }),
  );
  const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const sse = [
    ev("message_start", {
      message: { id: "msg_01AbC", type: "message", role: "assistant", model: "claude-sonnet-4-5-20250929", content: [], stop_reason: null, usage: { input_tokens: 412, output_tokens: 2 } },
    }),
    ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    ...Array.from({ length: 8 }, (_, i) => ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: `I will read the file, step ${i}. ` } })),
    ev("content_block_stop", { index: 0 }),
    ev("content_block_start", { index: 1, content_block: { type: "tool_use", id: "toolu_01XyZ", name: "read_file", input: {} } }),
    ev("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: '{"path": "src/' } }),
    ev("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: 'index.ts"}' } }),
    ev("content_block_stop", { index: 1 }),
    ev("message_delta", { delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 58 } }),
    ev("message_stop", {}),
  ];
  const head = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream; charset=utf-8", "Transfer-Encoding: chunked", "Connection: keep-alive", "request-id: req_01Anth"].join("\r\n");
  const s2c = [enc.encode(`${head}\r\n\r\n`), ...chunked(sse).split(/(?<=\r\n)(?=[0-9a-f]+\r\n)/).map((s) => enc.encode(s))];
  return { host, c2s: req, s2c };
}

export const KINDS: Record<string, () => Call> = { chat: openaiChat, stream: openaiStream, anthropic: anthropicToolStream };

export function meta(connId: string, host: string): ConnMeta {
  return {
    connId,
    startedAt: Date.now(),
    client: { ip: "127.0.0.1", port: 50000 },
    server: { ip: "10.0.0.1", port: 443 },
    host,
    sni: host,
    alpn: "http/1.1",
    mode: "mitm",
    process: { pid: 4242, ppid: 1, exe: "/usr/bin/python3", name: "python3", cmdline: "python3 agent.py", user: "dev", uid: 1000 },
    captureMethod: "mitm_proxy",
  };
}
