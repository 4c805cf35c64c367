// The OpenAI Realtime API end to end: Bun's WebSocket client through `oisp up` (CONNECT, TLS with the
// OISP CA, HTTP/1.1 Upgrade) to a fake Realtime server that sends its first frame together with the 101.
// Each turn (response.create … response.done) becomes ai.request / ai.response with usage; function calls
// and their function_call_output become agent.tool_call / agent.tool_result; one session, one conversation.
import { afterAll, beforeAll, expect, test } from "bun:test";
import path from "node:path";
import { eventsOfPid, ofType, runClientScript, startE2e, storedBytes, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { REALTIME, startFakeRealtime } from "../support/fake-realtime.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

const KEY = "sk-proj-RealtimeKey0123456789abcdefSECRET";
const client = path.join(import.meta.dir, "../support/clients/realtime-client.ts");

let h: E2eHarness;
beforeAll(async () => {
  h = await startE2e({ hosts: ["api.openai.com"], upstream: await startFakeRealtime(["api.openai.com"]) });
});
afterAll(async () => {
  await h?.close();
});

test("three Realtime turns over one WebSocket: requests, responses with usage, the tool call and its result", async () => {
  const run = await runClientScript(client, [], { OISP_PROXY: h.proxyUrl, OISP_CA_FILE: h.caFile, OPENAI_API_KEY: KEY });
  expect(run.result).toMatchObject({ session: REALTIME.sessionId, first: "Hello from realtime.", third: "Hello from realtime." });
  const events = await eventsOfPid(h.dbPath, run.pid, 3);
  for (const e of events) validateOispEvent(e);

  expect(ofType(events, "network.connect")).toHaveLength(1);
  expect(ofType(events, "network.connect")[0]!.data.tls).toEqual({ sni: "api.openai.com", alpn: "http/1.1" });
  const requests = ofType(events, "ai.request");
  const responses = ofType(events, "ai.response");
  expect(requests).toHaveLength(3);
  expect(responses).toHaveLength(3);

  const msgs = (e: AnyEvent) => e.data.messages.map((m: any) => [m.role, m.content]);
  for (const req of requests) {
    expect(req.data.provider).toEqual({ name: "openai", endpoint: "wss://api.openai.com/v1/realtime" });
    // Dated model id: read from session.created, which arrived in the same TLS record as the 101.
    expect(req.data.model.id).toBe(REALTIME.model);
    expect(req.data.streaming).toBe(true);
    expect(req.data.auth).toEqual({ type: "api_key", key_prefix: "sk-proj-", key_hash: expect.stringMatching(/^sha256:[0-9a-f]{16}$/) });
  }
  expect(msgs(requests[0]!)).toEqual([["system", "Speak briefly."], ["user", "Say hello."]]);
  expect(requests[0]!.data.parameters).toEqual({ temperature: 0.7 });
  expect(requests[0]!.data.tools).toEqual([]);
  expect(msgs(requests[1]!)).toEqual([["system", "Speak briefly."], ["user", "Weather in Nice?"]]);
  expect(requests[1]!.data.tools).toEqual([{ name: "get_weather", type: "function", description: "Weather" }]);
  expect(msgs(requests[2]!)).toEqual([["system", "Speak briefly."], ["tool", '{"temp_c":24}']]);

  const usage = { prompt_tokens: 187, completion_tokens: 58, total_tokens: 245, cached_tokens: 64 };
  responses.forEach((res, i) => {
    expect(res.data.request_id).toBe(requests[i]!.event_id);
    expect(res.data.provider_request_id).toMatch(/^resp_rt_/);
    expect(res.data.success).toBe(true);
    expect(res.data.usage).toMatchObject(usage);
    expect(typeof res.data.time_to_first_token_ms).toBe("number");
  });
  expect(responses[0]!.data.choices[0].message.content).toBe("Hello from realtime.");
  expect(responses[0]!.data.finish_reason).toBe("stop");
  expect(responses[1]!.data.finish_reason).toBe("tool_calls");
  expect(responses[1]!.data.tool_calls).toEqual([{ id: REALTIME.callId, name: "get_weather", type: "function", arguments: '{"city":"Nice"}', arguments_hash: expect.any(String) }]);

  const [call] = ofType(events, "agent.tool_call") as [AnyEvent];
  const [result] = ofType(events, "agent.tool_result") as [AnyEvent];
  expect(call.data).toMatchObject({ call_id: REALTIME.callId, arguments: { city: "Nice" } });
  expect(result.data).toMatchObject({ call_id: REALTIME.callId, tool: { name: "get_weather" }, result: '{"temp_c":24}' });
  expect(result.related_events[0]).toEqual({ event_id: call.event_id, relationship: "caused_by" });

  // One session, one conversation.
  const conv = new Set([...requests, ...responses].map((e) => e.data.conversation_id));
  expect(conv.size).toBe(1);
  expect([...conv][0]).toMatch(/^conv_[0-9a-f]{24}$/);
  expect(storedBytes(h.dbPath)).not.toContain(KEY);
});
