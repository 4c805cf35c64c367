// The sensor's whole decode path under hostile bytes: SensorPipeline (HTTP/1.1 or HTTP/2 by ALPN →
// content codings → SSE/JSON → provider parsers → event builders → redaction) fed mutated recorded
// conversations and provider JSON of arbitrary shape, split at random points. Properties: the pipeline
// never reports an internal error (its guard catches throws and counts them: a count > 0 is a bug), every
// event it emits is valid OISP v0.1, and the run is quick.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { ConnMeta } from "../../src/tap/types.ts";
import type { OispEvent } from "../../src/events/index.ts";
import { SensorPipeline } from "../../src/sensor/pipeline.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";
import { concat, cutsArb, fuzzParams, mutatedFrom, splitAt, timed, utf8 } from "../fault/fuzz-lib.ts";
import { chatCompletionJson, chunk, jsonResponse, lastChunk, openaiRequest, sseEvents, sseResponseHead } from "./decode-fixtures.ts";
import { cat, frame, literalBlock, PREFACE } from "./decode-h2-support.ts";

function pipeline() {
  const events: OispEvent[] = [];
  const p = new SensorPipeline({ redaction: "safe", collectorVersion: "fuzz", outputs: [{ write: (e) => events.push(...e) }], log: () => {}, maxBodyBytes: 64 * 1024 });
  return { p, events };
}

let n = 0;
function meta(host: string, alpn?: string): ConnMeta {
  return { connId: `fuzz-${n++}`, startedAt: 1_766_412_616_000, client: { ip: "127.0.0.1", port: 50000 }, server: { ip: "127.0.0.1", port: 443 }, host, sni: host, alpn, mode: "mitm", captureMethod: "mitm_proxy" };
}

/** Feeds request then response (each split at `cuts`) and closes; returns what came out. */
function run(host: string, alpn: string | undefined, c2s: Uint8Array, s2c: Uint8Array, cuts: number[]) {
  const { p, events } = pipeline();
  const m = meta(host, alpn);
  timed("pipeline", 2000, () => {
    p.open(m);
    let ts = m.startedAt;
    for (const part of splitAt(c2s, cuts)) p.data(m.connId, "c2s", part, ts++);
    for (const part of splitAt(s2c, cuts.map((c) => c * 7 + 3))) p.data(m.connId, "s2c", part, ts++);
    p.close(m.connId, ts + 1);
  });
  return { stats: p.stats(), events };
}

function expectSound(r: ReturnType<typeof run>) {
  expect(r.stats.internalErrors).toBe(0);
  for (const e of r.events) validateOispEvent(e);
}

describe("fuzz: sensor pipeline end to end", () => {
  test("HTTP/1.1 conversations (JSON, SSE, chunked) mutated both ways", () => {
    const req = utf8(openaiRequest());
    const responses = [utf8(jsonResponse(chatCompletionJson)), concat(utf8(sseResponseHead), ...sseEvents.map((e) => chunk(e)), utf8(lastChunk))];
    fc.assert(
      fc.property(mutatedFrom([req]), mutatedFrom(responses), cutsArb, (c2s, s2c, cuts) => expectSound(run("api.openai.com", "http/1.1", c2s, s2c, cuts))),
      fuzzParams(200),
    );
  });

  test("HTTP/2 conversations mutated both ways", () => {
    const h = literalBlock;
    const c2s = cat(
      PREFACE,
      frame(4, 0, 0),
      frame(1, 0x4, 1, h([[":method", "POST"], [":path", "/v1/messages"], [":scheme", "https"], [":authority", "api.anthropic.com"], ["content-type", "application/json"], ["x-api-key", "sk-ant-api03-FuzzKey0123456789abcdef"]])),
      frame(0, 0x1, 1, utf8('{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}')),
    );
    const sse = 'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4-5","usage":{"input_tokens":3,"output_tokens":1}}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\nevent: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}\n\n';
    const s2c = cat(frame(4, 0, 0), frame(1, 0x4, 1, h([[":status", "200"], ["content-type", "text/event-stream"]])), frame(0, 0, 1, utf8(sse)), frame(0, 1, 1, utf8("event: message_stop\ndata: {}\n\n")));
    fc.assert(
      fc.property(mutatedFrom([c2s]), mutatedFrom([s2c]), cutsArb, (a, b, cuts) => expectSound(run("api.anthropic.com", "h2", a, b, cuts))),
      fuzzParams(200),
    );
  });

  // Provider JSON of any shape: valid HTTP around arbitrary JSON values in the places the parsers read.
  const providers: Array<{ host: string; path: string }> = [
    { host: "api.openai.com", path: "/v1/chat/completions" },
    { host: "api.openai.com", path: "/v1/responses" },
    { host: "api.openai.com", path: "/v1/embeddings" },
    { host: "api.anthropic.com", path: "/v1/messages" },
    { host: "generativelanguage.googleapis.com", path: "/v1beta/models/gemini-2.0-flash:generateContent" },
    { host: "bedrock-runtime.us-east-1.amazonaws.com", path: "/model/anthropic.claude-3-haiku-20240307-v1:0/converse" },
    { host: "api.cohere.com", path: "/v2/chat" },
    { host: "api.groq.com", path: "/openai/v1/chat/completions" },
  ];
  const jsonish = fc.oneof(
    fc.json({ depthSize: "small" }),
    fc.record({ model: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), messages: fc.anything(), stream: fc.anything(), tools: fc.anything(), input: fc.anything(), contents: fc.anything() }).map((v) => JSON.stringify(v)),
    fc.record({ id: fc.anything(), choices: fc.anything(), usage: fc.anything(), content: fc.anything(), candidates: fc.anything(), output: fc.anything(), message: fc.anything() }).map((v) => JSON.stringify(v)),
  );

  test("provider parsers: arbitrary JSON requests and responses (plain and as SSE)", () => {
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(fc.nat(providers.length - 1), jsonish, jsonish, fc.boolean(), fc.constantFrom(200, 400, 429, 500), cutsArb, (which, reqJson, resJson, asSse, status, cuts) => {
        const { host, path } = providers[which]!;
        const c2s = utf8(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nAuthorization: Bearer sk-proj-FuzzKey0123456789abcdefghij\r\nContent-Length: ${Buffer.byteLength(reqJson)}\r\n\r\n${reqJson}`);
        const body = asSse ? `data: ${resJson.replace(/\n/g, " ")}\n\ndata: ${resJson.replace(/\n/g, " ")}\n\ndata: [DONE]\n\n` : resJson;
        const s2c = utf8(`HTTP/1.1 ${status} X\r\nContent-Type: ${asSse ? "text/event-stream" : "application/json"}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        const r = run(host, "http/1.1", c2s, s2c, cuts);
        expectSound(r);
        for (const e of r.events) seen.set(e.event_type, (seen.get(e.event_type) ?? 0) + 1);
      }),
      fuzzParams(300),
    );
    // The property is about the parsers: they must actually have been reached.
    expect(seen.get("ai.request") ?? 0).toBeGreaterThan(10);
    expect(seen.get("ai.response") ?? 0).toBeGreaterThan(10);
  });
});
