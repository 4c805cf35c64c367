// Every provider end to end through `oisp up`, from its official npm client where one exists
// (@google/genai, @aws-sdk/client-bedrock-runtime, openai's AzureOpenAI, ollama) and curl otherwise
// (Cohere; Gemini's ?key= and JSON-array stream), to local upstreams speaking each real wire format.
// Events are read back from the SQLite store and asserted exactly; credentials never reach it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import path from "node:path";
import { eventsOfPid, ofType, runClientScript, runCurl, startE2e, storedBytes, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { MORE, moreProvidersRoute, startFakeOllama, type PlainServer } from "../support/fake-providers-more.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

const KEYS = {
  gemini: "AIzaSyE2eGeminiKey0123456789SECRETabcdX", // 39 characters, like real Google API keys
  awsKeyId: "AKIAE2ETESTKEY7EXAMP",
  awsSecret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYE2eSECRETKEY",
  azure: "0123456789abcdef0123456789SECRET",
  cohere: "co-E2eCohereKey0123456789SECRET",
};
const HOSTS = ["generativelanguage.googleapis.com", "bedrock-runtime.us-east-1.amazonaws.com", "myres.openai.azure.com", "api.cohere.com"];
const clients = path.join(import.meta.dir, "../support/clients/provider-clients.ts");

let h: E2eHarness;
let ollama: PlainServer;
beforeAll(async () => {
  ollama = await startFakeOllama();
  h = await startE2e({ hosts: HOSTS, handler: fakeProviderHandler({ extra: moreProvidersRoute() }), h2: true });
});
afterAll(async () => {
  await h?.close();
  await ollama?.close();
});

async function client(scenario: string) {
  return runClientScript(clients, [scenario], {
    OISP_PROXY: h.proxyUrl,
    OISP_CA_FILE: h.caFile,
    // @google/genai uses Bun's fetch, which takes the proxy and the extra CA from the environment.
    HTTPS_PROXY: h.proxyUrl,
    NODE_EXTRA_CA_CERTS: h.caFile,
    GEMINI_API_KEY: KEYS.gemini,
    GOOGLE_API_KEY: "",
    AWS_ACCESS_KEY_ID: KEYS.awsKeyId,
    AWS_SECRET_ACCESS_KEY: KEYS.awsSecret,
    AZURE_OPENAI_API_KEY: KEYS.azure,
    OLLAMA_HOST: `http://127.0.0.1:${ollama.port}`,
  });
}

/** The one request, response and tool calls of a single-call client run, validated against OISP. */
async function single(pid: number) {
  const events = await eventsOfPid(h.dbPath, pid);
  for (const e of events) validateOispEvent(e);
  const [req] = ofType(events, "ai.request") as [AnyEvent];
  const [res] = ofType(events, "ai.response") as [AnyEvent];
  expect(ofType(events, "ai.request")).toHaveLength(1);
  expect(res.data.request_id).toBe(req.event_id);
  return { events, req, res, calls: ofType(events, "agent.tool_call") };
}

const hash16 = expect.stringMatching(/^sha256:[0-9a-f]{16}$/);
const contents = (req: AnyEvent) => req.data.messages.map((m: any) => [m.role, m.content]);

describe("Gemini (@google/genai)", () => {
  test("generateContent with a functionCall: model from the path, usage with cached and thoughts tokens", async () => {
    const run = await client("gemini-generate");
    expect(run.result.functionCalls).toEqual([{ name: "get_weather", args: { city: "Lyon" } }]);
    const { req, res, calls } = await single(run.pid);
    expect(req.data.provider).toEqual({ name: "google", endpoint: "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent" });
    expect(req.data.model.id).toBe("gemini-2.5-flash");
    expect(req.data.streaming).toBe(false);
    expect(contents(req)).toEqual([["system", "Be brief."], ["user", "Weather in Lyon?"]]);
    expect(req.data.tools).toEqual([{ name: "get_weather", type: "function", description: "Current weather for a city" }]);
    expect(req.data.parameters).toEqual({ temperature: 0.3 });
    expect(req.data.auth).toEqual({ type: "api_key", key_prefix: "AIza", key_hash: hash16 });
    expect(res.data.model.id).toBe("gemini-2.5-flash-001");
    expect(res.data.finish_reason).toBe("tool_calls");
    expect(res.data.usage).toMatchObject({ prompt_tokens: 31, completion_tokens: 7, total_tokens: 52, cached_tokens: 8, reasoning_tokens: 14 });
    expect(res.data.tool_calls).toEqual([{ name: "get_weather", type: "function", arguments: '{"city":"Lyon"}', arguments_hash: hash16 }]);
    expect(calls.map((c) => [c.data.tool.name, c.data.arguments])).toEqual([["get_weather", { city: "Lyon" }]]);
  });

  test("streamGenerateContent (alt=sse): text reassembled, time to first token", async () => {
    const run = await client("gemini-stream");
    expect(run.result.text).toBe(MORE.gemini.streamed.join(""));
    const { req, res } = await single(run.pid);
    expect(req.data.streaming).toBe(true);
    expect(req.data.provider.endpoint).toBe("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    expect(res.data.choices[0].message.content).toBe("Gemini streams.");
    expect(res.data.finish_reason).toBe("stop");
    expect(res.data.usage).toMatchObject({ prompt_tokens: 31, completion_tokens: 7, total_tokens: 52 });
    expect(typeof res.data.time_to_first_token_ms).toBe("number");
  });

  test("curl: ?key= in the URL and the streamed JSON array (no alt=sse)", async () => {
    const r = await runCurl([
      "--proxy", h.proxyUrl, "--cacert", h.caFile,
      `https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?key=${KEYS.gemini}`,
      "-H", "content-type: application/json", "-d", JSON.stringify({ contents: [{ role: "user", parts: [{ text: "Array please" }] }] }),
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toHaveLength(3);
    const { req, res } = await single(r.pid);
    expect(req.data.provider.endpoint).toBe("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent");
    expect(req.data.auth).toEqual({ type: "api_key", key_prefix: "AIza", key_hash: hash16 });
    expect(res.data.choices[0].message.content).toBe("Gemini streams.");
    expect(res.data.model.id).toBe("gemini-2.0-flash-001");
  });
});

describe("AWS Bedrock (@aws-sdk/client-bedrock-runtime, SigV4)", () => {
  const anthropicPath = "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0";
  const sigv4 = { type: "api_key", key_prefix: "AKIA", key_hash: hash16 };

  test("Converse with toolUse: model id URL-decoded, access key id reduced to a fingerprint", async () => {
    const run = await client("bedrock-converse");
    expect(run.result.stopReason).toBe("tool_use");
    const { req, res, calls } = await single(run.pid);
    expect(req.data.provider).toEqual({ name: "aws_bedrock", endpoint: `${anthropicPath}/converse` });
    expect(req.data.model.id).toBe("anthropic.claude-3-5-haiku-20241022-v1:0");
    expect(req.data.auth).toEqual(sigv4);
    expect(contents(req)).toEqual([["system", "Be brief."], ["user", "Weather in Madrid?"]]);
    expect(req.data.parameters).toEqual({ temperature: 0.1, max_tokens: 256 });
    expect(req.data.tools).toEqual([{ name: "get_weather", type: "function", description: "weather" }]);
    expect(res.data.provider_request_id).toBe(MORE.bedrock.requestId);
    expect(res.data.finish_reason).toBe("tool_calls");
    expect(res.data.choices[0].message.content).toBe("Let me look.");
    expect(res.data.usage).toMatchObject({ prompt_tokens: 41, completion_tokens: 13, total_tokens: 54 });
    expect(res.data.tool_calls).toEqual([{ id: MORE.bedrock.toolUseId, name: "get_weather", type: "function", arguments: '{"city":"Madrid"}', arguments_hash: hash16 }]);
    expect(calls.map((c) => [c.data.call_id, c.data.arguments])).toEqual([[MORE.bedrock.toolUseId, { city: "Madrid" }]]);
  });

  test("ConverseStream: event-stream frames decoded, usage from the metadata event", async () => {
    const run = await client("bedrock-converse-stream");
    expect(run.result.text).toBe("Bedrock streams.");
    const { req, res } = await single(run.pid);
    expect(req.data.provider.endpoint).toBe("https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-lite-v1%3A0/converse-stream");
    expect(req.data.model.id).toBe("amazon.nova-lite-v1:0");
    expect(req.data.streaming).toBe(true);
    expect(res.data.choices[0].message.content).toBe("Bedrock streams.");
    expect(res.data.finish_reason).toBe("stop");
    expect(res.data.usage).toMatchObject({ prompt_tokens: 41, completion_tokens: 13, total_tokens: 54 });
    expect(typeof res.data.time_to_first_token_ms).toBe("number");
  });

  test("InvokeModelWithResponseStream with an Anthropic body: base64 chunks unwrapped into Messages events", async () => {
    const run = await client("bedrock-invoke-stream");
    expect(run.result.text).toBe("Claude on Bedrock.");
    const { req, res } = await single(run.pid);
    expect(req.data.provider.endpoint).toBe(`${anthropicPath}/invoke-with-response-stream`);
    expect(req.data.streaming).toBe(true);
    expect(req.data.parameters).toEqual({ max_tokens: 200 });
    expect(contents(req)).toEqual([["user", "Invoke with a stream."]]);
    expect(res.data.model.id).toBe("claude-3-5-haiku-20241022");
    expect(res.data.choices[0].message.content).toBe("Claude on Bedrock.");
    expect(res.data.usage).toMatchObject({ prompt_tokens: 25, completion_tokens: 9, total_tokens: 34 });
  });

  test("InvokeModel, whole Anthropic body", async () => {
    const run = await client("bedrock-invoke");
    const { req, res } = await single(run.pid);
    expect(req.data.provider.endpoint).toBe(`${anthropicPath}/invoke`);
    expect(req.data.streaming).toBe(false);
    expect(res.data.choices[0].message.content).toBe("Claude on Bedrock.");
    expect(res.data.usage).toMatchObject({ prompt_tokens: 25, completion_tokens: 9 });
  });
});

describe("Azure OpenAI (openai AzureOpenAI client)", () => {
  test("deployment path and api-key header", async () => {
    const run = await client("azure-chat");
    expect(run.result.content).toBe(MORE.azure.text);
    const { req, res } = await single(run.pid);
    // The query (api-version) is dropped from the endpoint; the deployment stays in the path.
    expect(req.data.provider).toEqual({ name: "azure_openai", endpoint: "https://myres.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions" });
    expect(req.data.model.id).toBe("gpt-4o");
    expect(req.data.auth).toEqual({ type: "api_key", key_hash: hash16 });
    expect(contents(req)).toEqual([["user", "Hello Azure"]]);
    expect(res.data.model.id).toBe("gpt-4o-2024-11-20");
    expect(res.data.choices[0].message.content).toBe(MORE.azure.text);
    expect(res.data.usage).toMatchObject({ prompt_tokens: 19, completion_tokens: 5, total_tokens: 24 });
  });
});

describe("Cohere v2 chat (curl --http2)", () => {
  const curlCohere = (body: object) =>
    runCurl(["--http2", "--proxy", h.proxyUrl, "--cacert", h.caFile, "https://api.cohere.com/v2/chat", "-H", `Authorization: Bearer ${KEYS.cohere}`, "-H", "content-type: application/json", "-d", JSON.stringify(body)]);

  test("plain, streamed and with a tool call", async () => {
    const plain = await curlCohere({ model: "command-a-03-2025", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi Cohere" }] });
    expect(plain.code).toBe(0);
    const p = await single(plain.pid);
    expect(p.req.data.provider).toEqual({ name: "cohere", endpoint: "https://api.cohere.com/v2/chat" });
    expect(contents(p.req)).toEqual([["system", "Be brief."], ["user", "Hi Cohere"]]);
    expect(p.req.data.auth).toEqual({ type: "api_key", key_hash: hash16 });
    expect(p.res.data.choices[0].message.content).toBe(MORE.cohere.text);
    expect(p.res.data.usage).toMatchObject({ prompt_tokens: 211, completion_tokens: 6, total_tokens: 217 });

    const streamed = await curlCohere({ model: "command-a-03-2025", stream: true, messages: [{ role: "user", content: "Stream Cohere" }] });
    const s = await single(streamed.pid);
    expect(s.req.data.streaming).toBe(true);
    expect(s.res.data.provider_request_id).toBe(MORE.cohere.id);
    expect(s.res.data.choices[0].message.content).toBe("Cohere streams.");
    expect(s.res.data.finish_reason).toBe("stop");

    const tools = await curlCohere({
      model: "command-a-03-2025",
      messages: [{ role: "user", content: "Weather in Bern?" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
    });
    const t = await single(tools.pid);
    expect(t.res.data.finish_reason).toBe("tool_calls");
    expect(t.res.data.tool_calls).toEqual([{ id: MORE.cohere.toolCallId, name: "get_weather", type: "function", arguments: '{"city":"Bern"}', arguments_hash: hash16 }]);
    expect(t.calls.map((c) => [c.data.call_id, c.data.arguments])).toEqual([[MORE.cohere.toolCallId, { city: "Bern" }]]);
  });
});

describe("Ollama (ollama client, plain HTTP through the proxy)", () => {
  test("chat streamed as NDJSON: eval counts become tokens", async () => {
    const run = await client("ollama-chat-stream");
    expect(run.result).toEqual({ text: "Ollama local.", evalCount: MORE.ollama.evalCount });
    const { events, req, res } = await single(run.pid);
    expect(ofType(events, "network.connect")[0]!.attrs.mode).toBe("plain");
    expect(req.data.provider).toEqual({ name: "ollama", endpoint: `http://127.0.0.1:${ollama.port}/api/chat` });
    expect(req.data.model.id).toBe("llama3.2");
    expect(req.data.streaming).toBe(true);
    expect(req.data.auth).toEqual({ type: "none" });
    expect(res.data.choices[0].message.content).toBe("Ollama local.");
    expect(res.data.usage).toMatchObject({ prompt_tokens: 26, completion_tokens: 298, total_tokens: 324 });
  });

  test("chat with a tool call (arguments as an object on the wire)", async () => {
    const run = await client("ollama-chat-tools");
    const { res, calls } = await single(run.pid);
    expect(res.data.finish_reason).toBe("tool_calls");
    expect(res.data.tool_calls).toEqual([{ name: "get_weather", type: "function", arguments: '{"city":"Oslo"}', arguments_hash: hash16 }]);
    expect(calls.map((c) => c.data.arguments)).toEqual([{ city: "Oslo" }]);
  });

  test("generate", async () => {
    const run = await client("ollama-generate");
    const { req, res } = await single(run.pid);
    expect(req.data.request_type).toBe("completion");
    expect(contents(req)).toEqual([["user", "Complete this."]]);
    expect(res.data.choices[0].message.content).toBe("Ollama local.");
  });
});

test("no credential is stored anywhere: API keys, the AWS key id and secret", async () => {
  await Bun.sleep(200);
  const everything = storedBytes(h.dbPath);
  expect(everything.length).toBeGreaterThan(1000);
  // Only the places a secret was found, not megabytes of database, when this fails.
  const leaks = [...Object.values(KEYS), "SECRET"].flatMap((secret) => {
    const at = everything.indexOf(secret);
    return at < 0 ? [] : [`${secret} in …${everything.slice(Math.max(0, at - 200), at + 60)}…`];
  });
  expect(leaks).toEqual([]);
});
