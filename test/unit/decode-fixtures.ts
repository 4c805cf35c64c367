// Wire-format fixtures and split helpers shared by the decode-*.test.ts files.
import { expect } from "bun:test";
import zlib from "node:zlib";
import type { Direction } from "../../src/tap/types.ts";
import { HttpConnectionDecoder, type HttpConnectionDecoderOptions } from "../../src/decode/connection.ts";
import type { ConnectionOutput } from "../../src/decode/connection-decoder.ts";

const enc = new TextEncoder();

export function bytes(...parts: Array<string | Uint8Array>): Uint8Array {
  const pieces = parts.map((p) => (typeof p === "string" ? enc.encode(p) : p));
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of pieces) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function text(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}

/** One push of a recorded conversation. */
export interface Step {
  dir: Direction;
  data: Uint8Array;
  ts: number;
}

export const c2s = (data: string | Uint8Array, ts: number): Step => ({ dir: "c2s", data: bytes(data), ts });
export const s2c = (data: string | Uint8Array, ts: number): Step => ({ dir: "s2c", data: bytes(data), ts });

export interface RunResult {
  outputs: ConnectionOutput[];
  closeOutputs: ConnectionOutput[];
  decoder: HttpConnectionDecoder;
}

/** Feeds a conversation; each step may be cut into pieces (all carrying the step's timestamp). */
export function run(
  steps: Step[],
  opts: { decoder?: HttpConnectionDecoderOptions; close?: { ts: number; error?: string }; cut?: (step: Step, index: number) => Uint8Array[] } = {},
): RunResult {
  const decoder = new HttpConnectionDecoder("conn-1", opts.decoder);
  const outputs: ConnectionOutput[] = [];
  steps.forEach((step, i) => {
    for (const piece of opts.cut ? opts.cut(step, i) : [step.data]) outputs.push(...decoder.push(step.dir, piece, step.ts));
  });
  const closeOutputs = opts.close ? decoder.close(opts.close.ts, opts.close.error) : [];
  return { outputs, closeOutputs, decoder };
}

/**
 * Runs the conversation whole, then with every step split at every position (one split point at
 * a time), then byte by byte, and expects identical outputs each time. Returns the whole run.
 */
export function runSplitInvariant(
  steps: Step[],
  opts: { decoder?: HttpConnectionDecoderOptions; close?: { ts: number; error?: string } } = {},
): RunResult {
  const whole = run(steps, opts);
  const expected = [...whole.outputs, ...whole.closeOutputs];
  steps.forEach((step, target) => {
    for (let at = 1; at < step.data.length; at++) {
      const split = run(steps, {
        ...opts,
        cut: (s, i) => (i === target ? [s.data.subarray(0, at), s.data.subarray(at)] : [s.data]),
      });
      const got = [...split.outputs, ...split.closeOutputs];
      if (!Bun.deepEquals(got, expected)) {
        // Report the first failing split point with a readable diff.
        expect({ step: target, at, outputs: got }).toEqual({ step: target, at, outputs: expected });
      }
    }
  });
  const byteByByte = run(steps, { ...opts, cut: (s) => Array.from(s.data, (_, i) => s.data.subarray(i, i + 1)) });
  expect([...byteByByte.outputs, ...byteByByte.closeOutputs]).toEqual(expected);
  return whole;
}

export function exchangesOf(outputs: ConnectionOutput[]) {
  return outputs.flatMap((o) => (o.kind === "exchange" ? [o.exchange] : []));
}

export function kinds(outputs: ConnectionOutput[]): string[] {
  return outputs.map((o) => (o.kind === "protocol-error" ? `protocol-error:${o.dir}` : `${o.kind}:${o.exchange.seq}`));
}

// ---- Realistic wire bytes (what the openai node SDK sends and api.openai.com answers) ----

export const chatRequestBody = JSON.stringify({
  model: "gpt-4o-mini",
  messages: [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Say hi in French — avec accents: é, ü, 日本" },
  ],
  stream: true,
});

export function openaiRequest(body = chatRequestBody, path = "/v1/chat/completions", extra = ""): string {
  const length = enc.encode(body).length;
  return (
    `POST ${path} HTTP/1.1\r\n` +
    "host: api.openai.com\r\n" +
    "connection: keep-alive\r\n" +
    "accept: application/json\r\n" +
    "content-type: application/json\r\n" +
    "user-agent: OpenAI/JS 4.77.0\r\n" +
    "x-stainless-lang: js\r\n" +
    "x-stainless-package-version: 4.77.0\r\n" +
    "x-stainless-runtime: node\r\n" +
    "x-stainless-retry-count: 0\r\n" +
    "authorization: Bearer sk-proj-TESTKEY0000000000000000\r\n" +
    extra +
    `content-length: ${length}\r\n` +
    "accept-encoding: gzip, deflate, br, zstd\r\n" +
    "\r\n" +
    body
  );
}

export const sseEvents = [
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Salut"},"finish_reason":null}]}\n\n',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" — ça va, 日本?"},"finish_reason":null}]}\n\n',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":6,"total_tokens":27}}\n\n',
  "data: [DONE]\n\n",
];

export const sseResponseHead =
  "HTTP/1.1 200 OK\r\n" +
  "Date: Tue, 05 Nov 2024 10:00:00 GMT\r\n" +
  "Content-Type: text/event-stream; charset=utf-8\r\n" +
  "Transfer-Encoding: chunked\r\n" +
  "Connection: keep-alive\r\n" +
  "openai-processing-ms: 180\r\n" +
  "x-request-id: req_abc123\r\n" +
  "\r\n";

/** One chunk of chunked transfer coding. */
export function chunk(data: string | Uint8Array): Uint8Array {
  const b = bytes(data);
  return bytes(`${b.length.toString(16)}\r\n`, b, "\r\n");
}

export const lastChunk = "0\r\n\r\n";

export function jsonResponse(body: string, extraHeaders = ""): string {
  return (
    "HTTP/1.1 200 OK\r\n" +
    "Content-Type: application/json\r\n" +
    `Content-Length: ${enc.encode(body).length}\r\n` +
    extraHeaders +
    "\r\n" +
    body
  );
}

export const chatCompletionJson = JSON.stringify({
  id: "chatcmpl-2",
  object: "chat.completion",
  model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", content: "Bonjour !" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
});

/** A gzip stream flushed after each part, as a streaming server compresses SSE. */
export async function gzipFlushedParts(parts: string[]): Promise<Uint8Array[]> {
  const gz = zlib.createGzip();
  const out: Uint8Array[] = [];
  let current: Buffer[] = [];
  gz.on("data", (d: Buffer) => current.push(d));
  for (const part of parts) {
    gz.write(part);
    await new Promise<void>((resolve) => gz.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
    out.push(bytes(...current));
    current = [];
  }
  await new Promise<void>((resolve) => {
    gz.on("end", () => resolve());
    gz.end();
  });
  if (current.length > 0) out.push(bytes(...current));
  return out;
}
