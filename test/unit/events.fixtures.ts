// Hand-made capture results (what the decoders and provider parsers hand to src/events) for the
// events tests: one streamed OpenAI chat with tool calls, laced with credentials in the places they
// turn up in real traffic (prompt, tool arguments, command line, error text).
import type { ConnMeta } from "../../src/tap/types.ts";
import type { ParsedAiRequest, ParsedAiResponse } from "../../src/decode/providers/types.ts";
import type { HttpExchange } from "../../src/decode/types.ts";
import type { ConnContext } from "../../src/events/index.ts";

/** Credentials that must never appear in a safe-mode event, one per kind maskSecrets knows. */
export const SECRETS = {
  openai: "sk-proj-Q2xvdWRGbGFyZVRlc3RLZXkxMjM0NTY3ODkw",
  anthropic: "sk-ant-api03-ZXhhbXBsZWtleWZvcnRlc3RzMTIzNDU2Nzg5MA",
  aws: "AKIAIOSFODNN7EXAMPLE",
  github: "ghp_1234567890abcdefghijklmnopqrstuvwxYZ",
  google: "AIzaSyA1234567890abcdefghijklmnopqrstuv",
  jwt: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl",
  bearer: "tok3n-Opaque.Value_123",
  password: "hunter2-correct-horse",
  privateKey: "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg3r5mYw1example\n-----END EC PRIVATE KEY-----",
} as const;

/** Text that is content (prompts, answers, arguments): gone in safe mode. */
export const CONTENT = {
  system: "You are WeatherBot. Never reveal the launch codes 4242.",
  user: `What is the weather in Paris? My key is ${SECRETS.openai} and my AWS key ${SECRETS.aws}.`,
  assistantHistory: "Let me check the forecast.",
  toolResult: '{"temp_c": 21, "sky": "clear"}',
  answer: "It is sunny and 21°C in Paris today.",
  thinking: "User wants Paris weather; call get_weather then answer briefly.",
  argsJson: `{"city":"Paris","password":"${SECRETS.password}"}`,
  argsText: "city=Paris (not json)",
  toolDescription: "Returns the current weather for a city.",
};

export const T0 = 1_766_412_616_345.678; // 2025-12-22T14:10:16.345678Z

export function connMeta(overrides: Partial<ConnMeta> = {}): ConnMeta {
  return {
    connId: "c-7f3a",
    startedAt: T0 - 40.5,
    client: { ip: "127.0.0.1", port: 54321 },
    server: { ip: "127.0.0.1", port: 443 },
    host: "api.openai.com",
    sni: "api.openai.com",
    alpn: "http/1.1",
    mode: "mitm",
    upstreamConnectMs: 12.25,
    process: {
      pid: 4242,
      ppid: 4200,
      exe: "/usr/bin/python3",
      name: "python3",
      cmdline: `python3 agent.py --token ${SECRETS.github} --openai-key=${SECRETS.openai}`,
      user: "alice",
      uid: 1000,
    },
    captureMethod: "mitm_proxy",
    ...overrides,
  };
}

export function connContext(meta: ConnMeta = connMeta()): ConnContext {
  return {
    meta,
    collectorVersion: "0.1.0-test",
    host: { hostname: "test-host", os: "linux", os_version: "Debian GNU/Linux 12", arch: "x86_64" },
  };
}

export function exchange(overrides: Partial<HttpExchange> = {}): HttpExchange {
  return {
    connId: "c-7f3a",
    seq: 0,
    request: {
      method: "POST",
      path: "/v1/chat/completions",
      host: "api.openai.com",
      httpVersion: "1.1",
      headers: [["authorization", `Bearer ${SECRETS.openai}`]],
      body: new Uint8Array(),
      bodyTruncated: false,
      startTs: T0,
      endTs: T0 + 3.4,
    },
    response: {
      status: 200,
      reason: "OK",
      headers: [],
      chunks: [],
      bodyTruncated: false,
      startTs: T0 + 180.2,
      firstBodyTs: T0 + 190.9,
      endTs: T0 + 1234.56,
      complete: true,
    },
    ...overrides,
  };
}

export function parsedRequest(overrides: Partial<ParsedAiRequest> = {}): ParsedAiRequest {
  return {
    provider: "openai",
    apiFormat: "openai",
    endpoint: "https://api.openai.com/v1/chat/completions",
    requestType: "chat",
    model: "gpt-4o",
    streaming: true,
    messages: [
      { role: "system", content: CONTENT.system },
      { role: "user", content: CONTENT.user, imageCount: 2 },
      {
        role: "assistant",
        content: CONTENT.assistantHistory,
        toolCalls: [{ id: "call_0", name: "get_weather", arguments: '{"city":"Nice"}' }],
      },
      { role: "tool", content: CONTENT.toolResult, toolCallId: "call_0", name: "get_weather" },
    ],
    tools: [{ name: "get_weather", type: "function", description: CONTENT.toolDescription }],
    toolChoice: "auto",
    parameters: { temperature: 0.2, max_tokens: 512, stop: ["END"] },
    auth: { type: "api_key", keyPrefix: "sk-proj-", keyHash: "9f86d081884c7d65" },
    ...overrides,
  };
}

export function parsedResponse(overrides: Partial<ParsedAiResponse> = {}): ParsedAiResponse {
  return {
    statusCode: 200,
    success: true,
    providerRequestId: "chatcmpl-AbC123xyz",
    model: "gpt-4o-2024-11-20",
    content: CONTENT.answer,
    thinking: CONTENT.thinking,
    toolCalls: [
      { id: "call_1", name: "get_weather", arguments: CONTENT.argsJson },
      { id: "call_2", name: "lookup", arguments: CONTENT.argsText },
    ],
    finishReason: "tool_calls",
    rawFinishReason: "tool_calls",
    usage: { promptTokens: 120, completionTokens: 30, totalTokens: 150, cachedTokens: 64, reasoningTokens: 8 },
    firstTokenTs: T0 + 190.9,
    ...overrides,
  };
}
