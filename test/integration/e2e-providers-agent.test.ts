// Agent loops end to end through `oisp up`: the tool result an agent sends back in its next request
// becomes an agent.tool_result linked to the agent.tool_call it answers (OpenAI tool messages, Anthropic
// tool_result blocks, Gemini functionResponse, Responses function_call_output), and the turns of one
// conversation share a conversation_id (the Responses API's previous_response_id chain, otherwise the
// process + system prompt + first user message heuristic of src/events/conversation.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import path from "node:path";
import { eventsOfPid, ofType, runClientScript, startE2e, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { fakeProviderHandler, FIXED } from "../support/fake-providers.ts";
import { moreProvidersRoute } from "../support/fake-providers-more.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

const OPENAI_KEY = "sk-proj-AgentTestKey0123456789abcdefSECRET";
const ANTHROPIC_KEY = "sk-ant-api03-AgentTestKeyABCDEFSECRET";
const turnsClient = path.join(import.meta.dir, "../support/clients/turns-client.ts");
const providerClients = path.join(import.meta.dir, "../support/clients/provider-clients.ts");

let h: E2eHarness;
beforeAll(async () => {
  h = await startE2e({
    hosts: ["api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com"],
    handler: fakeProviderHandler({ extra: moreProvidersRoute() }),
    h2: true,
  });
});
afterAll(async () => {
  await h?.close();
});

interface Turn {
  url: string;
  headers?: Record<string, string>;
  body: unknown;
}

async function turns(list: Turn[], responses = list.length) {
  const run = await runClientScript(turnsClient, [], { OISP_PROXY: h.proxyUrl, OISP_CA_FILE: h.caFile, TURNS: JSON.stringify(list) });
  const events = await eventsOfPid(h.dbPath, run.pid, responses);
  for (const e of events) validateOispEvent(e);
  return { run, events };
}

const openai = (body: unknown): Turn => ({ url: "https://api.openai.com/v1/chat/completions", headers: { authorization: `Bearer ${OPENAI_KEY}` }, body });
const anthropic = (body: unknown): Turn => ({
  url: "https://api.anthropic.com/v1/messages",
  headers: { "x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01" },
  body,
});
const weatherTool = { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } };
const conv = (e: AnyEvent) => e.data.conversation_id as string | undefined;

describe("OpenAI chat tool round trip", () => {
  test("the tool message becomes an agent.tool_result linked to its call; both turns share a conversation_id; a retry is not reported twice", async () => {
    const system = { role: "system", content: "You are an agent." };
    const user = { role: "user", content: "What is the weather in Paris?" };
    const assistant = { role: "assistant", content: null, tool_calls: [{ id: FIXED.openaiToolCallId, type: "function", function: { name: "get_weather", arguments: FIXED.weatherArgs } }] };
    const toolMsg = { role: "tool", tool_call_id: FIXED.openaiToolCallId, content: '{"temperature_c":21,"sky":"sunny"}' };
    const second = { model: "gpt-4o-mini", messages: [system, user, assistant, toolMsg], tools: [weatherTool] };
    const { events } = await turns([
      openai({ model: "gpt-4o-mini", messages: [system, user], tools: [weatherTool] }),
      openai(second),
      openai(second), // the client retries the same turn
      openai({ model: "gpt-4o-mini", messages: [system, { role: "user", content: "A different conversation" }] }),
    ]);

    const requests = ofType(events, "ai.request");
    const responses = ofType(events, "ai.response");
    expect(requests).toHaveLength(4);
    const results = ofType(events, "agent.tool_result");
    expect(results).toHaveLength(1);
    const [result] = results as [AnyEvent];
    expect(result.data).toEqual({
      call_id: FIXED.openaiToolCallId,
      tool: { name: "get_weather", type: "other" },
      result: '{"temperature_c":21,"sky":"sunny"}',
      result_hash: expect.stringMatching(/^sha256:[0-9a-f]{16}$/),
      result_size_bytes: 34,
      duration_ms: expect.any(Number),
    });
    expect(result.data.duration_ms).toBeGreaterThanOrEqual(0);
    // The first turn's call (the later turns' responses also call the tool, with the same fixed id).
    const firstCall = ofType(events, "agent.tool_call").find((c) => c.data.call_id === FIXED.openaiToolCallId && c.attrs.request_id === requests[0]!.event_id)!;
    expect(result.related_events).toEqual([
      { event_id: firstCall.event_id, relationship: "caused_by" },
      { event_id: requests[1]!.event_id, relationship: "related" },
    ]);
    expect(result.confidence).toMatchObject({ level: "high", reasons: ["tool_result_in_request", "linked_by_call_id"] });

    const ids = requests.map(conv);
    expect(ids[0]).toMatch(/^conv_[0-9a-f]{24}$/);
    expect(ids.slice(0, 3)).toEqual([ids[0], ids[0], ids[0]]);
    expect(ids[3]).toMatch(/^conv_/);
    expect(ids[3]).not.toBe(ids[0]);
    for (const res of responses) expect(conv(res)).toBe(conv(requests.find((r) => r.event_id === res.data.request_id)!));
  });
});

describe("Anthropic tool_result blocks", () => {
  test("a tool_result block is linked to the tool_use it answers; both turns share a conversation_id", async () => {
    const user = { role: "user", content: "Weather in Berlin?" };
    const { events } = await turns([
      anthropic({ model: "claude-sonnet-4-5", max_tokens: 256, system: "Agent.", messages: [user], tools: [{ name: "get_weather", input_schema: { type: "object" } }] }),
      anthropic({
        model: "claude-sonnet-4-5",
        max_tokens: 256,
        system: "Agent.",
        tools: [{ name: "get_weather", input_schema: { type: "object" } }],
        messages: [
          user,
          { role: "assistant", content: [{ type: "text", text: "Let me check the weather." }, { type: "tool_use", id: FIXED.anthropicToolId, name: "get_weather", input: { city: "Berlin" } }] },
          { role: "user", content: [{ type: "tool_result", tool_use_id: FIXED.anthropicToolId, content: [{ type: "text", text: "12°C, rain" }], is_error: true }] },
        ],
      }),
    ]);
    const requests = ofType(events, "ai.request");
    const firstCall = ofType(events, "agent.tool_call").find((c) => c.attrs.request_id === requests[0]!.event_id)!;
    const [result] = ofType(events, "agent.tool_result") as [AnyEvent];
    expect(result.data).toMatchObject({ call_id: FIXED.anthropicToolId, tool: { name: "get_weather" }, result: "12°C, rain", result_size_bytes: Buffer.byteLength("12°C, rain") });
    // The agent marked the run as failed (is_error): the event says so.
    expect(result.data).toMatchObject({ success: false, error: { type: "tool_error" } });
    expect(result.related_events![0]).toEqual({ event_id: firstCall.event_id, relationship: "caused_by" });
    expect(conv(requests[0]!)).toBe(conv(requests[1]!));
  });
});

describe("Gemini functionResponse (@google/genai)", () => {
  test("calls without ids are linked by function name; both events carry the tool_call event's id as call_id", async () => {
    const run = await runClientScript(providerClients, ["gemini-tool-roundtrip"], {
      OISP_PROXY: h.proxyUrl,
      OISP_CA_FILE: h.caFile,
      HTTPS_PROXY: h.proxyUrl,
      NODE_EXTRA_CA_CERTS: h.caFile,
      GEMINI_API_KEY: "AIzaSyAgentGeminiKey0123456789SECRETabc",
    });
    expect(run.result.text).toBe("Gemini says hi.");
    const events = await eventsOfPid(h.dbPath, run.pid, 2);
    for (const e of events) validateOispEvent(e);
    const [call] = ofType(events, "agent.tool_call") as [AnyEvent];
    // Gemini sent no id: a generated, stable one (the event's id) joins the call and its result.
    expect(call.data.call_id).toBe(call.event_id);
    expect(call.attrs.call_id_generated).toBe(true);
    const [result] = ofType(events, "agent.tool_result") as [AnyEvent];
    expect(result.data).toMatchObject({ call_id: call.event_id, tool: { name: "get_weather" }, result: '{"temperature_c":17,"sky":"clear"}' });
    expect(result.confidence.reasons).toEqual(["tool_result_in_request", "linked_by_tool_name"]);
    const requests = ofType(events, "ai.request");
    expect(conv(requests[0]!)).toMatch(/^conv_/);
    expect(conv(requests[1]!)).toBe(conv(requests[0]!));
  });
});

describe("OpenAI Responses API", () => {
  const responses = (body: unknown): Turn => ({ url: "https://api.openai.com/v1/responses", headers: { authorization: `Bearer ${OPENAI_KEY}` }, body });

  test("previous_response_id chains share the conversation of the first turn; function_call_output is a tool result", async () => {
    const { events } = await turns([
      responses({ model: "gpt-4.1", input: "Start a thread", stream: true }),
      responses({ model: "gpt-4.1", previous_response_id: "$LAST_RESPONSE_ID", input: [{ type: "function_call_output", call_id: "call_resp_1", output: "42" }], stream: true }),
      responses({ model: "gpt-4.1", conversation: "conv_provider_named_1", input: "In a named conversation", stream: true }),
    ]);
    const requests = ofType(events, "ai.request");
    expect(conv(requests[0]!)).toMatch(/^conv_[0-9a-f]{24}$/);
    expect(conv(requests[1]!)).toBe(conv(requests[0]!));
    expect(conv(requests[2]!)).toBe("conv_provider_named_1");
    const [result] = ofType(events, "agent.tool_result") as [AnyEvent];
    // The call was made before the sensor saw anything: reported, but with lower confidence and no link.
    expect(result.data).toEqual({ call_id: "call_resp_1", result: "42", result_hash: expect.any(String), result_size_bytes: 2 });
    expect(result.confidence).toMatchObject({ level: "medium", reasons: ["tool_result_in_request", "call_not_observed"] });
    expect(result.related_events).toEqual([{ event_id: requests[1]!.event_id, relationship: "related" }]);
  });
});
