// RealtimeSession: Realtime API events → turns, including the cases the e2e test does not drive.
import { describe, expect, test } from "bun:test";
import { isRealtimePath, RealtimeSession } from "../../src/sensor/realtime.ts";
import type { HttpRequestRecord } from "../../src/decode/types.ts";

const upgrade = (path: string, headers: Array<[string, string]> = [["authorization", "Bearer sk-proj-abcdefghijklmnop"]]): HttpRequestRecord => ({
  method: "GET", path, host: "api.openai.com", httpVersion: "HTTP/1.1", headers, body: new Uint8Array(0), bodyTruncated: false, startTs: 0, endTs: 0,
});
const match = { provider: "openai", apiFormat: "openai" as const, host: "api.openai.com" };
const c = (s: RealtimeSession, ev: object, ts = 1) => s.push("c2s", JSON.stringify(ev), ts);
const srv = (s: RealtimeSession, ev: object, ts = 1) => s.push("s2c", JSON.stringify(ev), ts);

describe("RealtimeSession", () => {
  test("paths", () => {
    expect(["/v1/realtime?model=x", "/v1/realtime", "/openai/realtime?deployment=d&api-version=1"].map(isRealtimePath)).toEqual([true, true, true]);
    expect(["/v1/realtimes", "/v1/chat/completions", "/realtime"].map(isRealtimePath)).toEqual([false, false, false]);
  });

  test("server VAD: audio transcript as the user message, response started by the server, audio transcript as content", () => {
    const s = new RealtimeSession(upgrade("/v1/realtime?model=gpt-4o-realtime-preview"), match);
    srv(s, { type: "conversation.item.input_audio_transcription.completed", item_id: "i1", transcript: "what time is it" });
    const [req] = srv(s, { type: "response.created", response: { id: "resp_1" } }, 10);
    expect(req).toMatchObject({ kind: "request", turn: 0, ts: 10, parsed: { model: "gpt-4o-realtime-preview", messages: [{ role: "user", content: "what time is it" }], auth: { keyPrefix: "sk-proj-" } } });
    srv(s, { type: "response.audio_transcript.delta", response_id: "resp_1", delta: "It is" }, 12);
    const [res] = srv(s, { type: "response.done", response: { id: "resp_1", status: "completed", output: [{ type: "message", content: [{ type: "audio", transcript: "It is noon." }] }], usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12 } } }, 20);
    expect(res).toEqual({
      kind: "response", turn: 0, startTs: 10, firstTokenTs: 12, ts: 20,
      parsed: { statusCode: 200, success: true, providerRequestId: "resp_1", model: "gpt-4o-realtime-preview", content: "It is noon.", toolCalls: [], finishReason: "stop", rawFinishReason: "completed", usage: { promptTokens: 5, completionTokens: 7, totalTokens: 12 }, firstTokenTs: 12 },
    });
  });

  test("joined late: response.done alone makes a whole turn; failed and incomplete statuses; response.create instructions override", () => {
    const s = new RealtimeSession(upgrade("/openai/realtime?deployment=rt-prod&api-version=2024-10-01", [["api-key", "0123456789abcdef0123"]]), { ...match, provider: "azure_openai" });
    const outs = srv(s, { type: "response.done", response: { id: "r9", status: "failed", status_details: { type: "failed", error: { type: "server_error", message: "boom" } } } }, 5);
    expect(outs.map((o) => o.kind)).toEqual(["request", "response"]);
    expect(outs[0]).toMatchObject({ parsed: { model: "rt-prod", endpoint: "wss://api.openai.com/openai/realtime", provider: "azure_openai" } });
    expect(outs[1]).toMatchObject({ parsed: { success: false, statusCode: 500, finishReason: "error", error: { type: "server_error", message: "boom" } } });

    c(s, { type: "session.update", session: { instructions: "base", max_response_output_tokens: 50 } });
    c(s, { type: "response.create", response: { instructions: "override" } }, 30);
    const [req] = srv(s, { type: "response.created", response: { id: "r10" } }, 31);
    expect(req).toMatchObject({ ts: 30, parsed: { system: "override", parameters: { max_tokens: 50 } } });
    const [res] = srv(s, { type: "response.done", response: { id: "r10", status: "incomplete", status_details: { reason: "max_output_tokens" } } }, 40);
    expect(res).toMatchObject({ kind: "response", startTs: 30, parsed: { finishReason: "length", rawFinishReason: "incomplete" } });
  });

  test("an error event fails the open turn; bad JSON is an error output; unknown events are ignored", () => {
    const s = new RealtimeSession(upgrade("/v1/realtime?model=m"), match);
    expect(s.push("s2c", "not json", 1)).toEqual([{ kind: "error", message: "realtime s2c message is not JSON" }]);
    expect(srv(s, { type: "rate_limits.updated", rate_limits: [] })).toEqual([]);
    srv(s, { type: "response.created", response: { id: "r1" } });
    const [res] = srv(s, { type: "error", error: { type: "invalid_request_error", code: "bad", message: "nope" } }, 3);
    expect(res).toMatchObject({ kind: "response", parsed: { success: false, error: { type: "invalid_request_error", code: "bad", message: "nope" } } });
  });

  test("pending items are bounded", () => {
    const s = new RealtimeSession(upgrade("/v1/realtime?model=m"), match);
    for (let i = 0; i < 1000; i++) c(s, { type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: `m${i}` }] } });
    const [req] = srv(s, { type: "response.created", response: { id: "r" } });
    const msgs = req!.kind === "request" ? req!.parsed.messages : [];
    expect(msgs.length).toBe(256);
    expect(msgs.at(-1)!.content).toBe("m999");
  });
});
