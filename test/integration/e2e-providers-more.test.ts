// More providers end to end through `oisp up`: Vertex AI on a regional host (Gemini and Claude, OAuth
// token), Mistral (OpenAI format), LM Studio (OpenAI-compatible, plain HTTP on :1234, openai client), and
// a Bedrock event stream with a corrupted message: the bad CRC is reported on the event and the message
// not trusted, while the client still gets every byte (the relay never depends on decoding).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import path from "node:path";
import { eventsOfPid, ofType, runClientScript, runCurl, startE2e, storedBytes, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { moreProvidersRoute, startFakeLmStudio, type PlainServer } from "../support/fake-providers-more.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

const VERTEX_TOKEN = "ya29.a0AfB_byVertexTestToken0123456789SECRET";
const MISTRAL_KEY = "mistralTestKey0123456789abcdefSECRET";
const AWS = { id: "AKIAE2ECORRUPTKEY777", secret: "corruptSecretAccessKey/0123456789SECRET" };
const VERTEX = "us-central1-aiplatform.googleapis.com";
const BEDROCK = "bedrock-runtime.eu-west-3.amazonaws.com";
const clients = path.join(import.meta.dir, "../support/clients/provider-clients.ts");

let h: E2eHarness;
let lmstudio: PlainServer;
beforeAll(async () => {
  lmstudio = await startFakeLmStudio();
  h = await startE2e({ hosts: [VERTEX, "api.mistral.ai", BEDROCK], handler: fakeProviderHandler({ extra: moreProvidersRoute() }), h2: true });
});
afterAll(async () => {
  await h?.close();
  await lmstudio?.close();
});

async function single(pid: number) {
  const events = await eventsOfPid(h.dbPath, pid);
  for (const e of events) validateOispEvent(e);
  return { events, req: ofType(events, "ai.request")[0] as AnyEvent, res: ofType(events, "ai.response")[0] as AnyEvent };
}

const curlJson = (url: string, auth: string, body: unknown, extra: string[] = []) =>
  runCurl(["--http2", "--proxy", h.proxyUrl, "--cacert", h.caFile, url, "-H", auth, "-H", "content-type: application/json", "-d", JSON.stringify(body), ...extra]);

describe("Vertex AI (regional host, OAuth access token)", () => {
  const base = `https://${VERTEX}/v1/projects/my-proj/locations/us-central1/publishers`;

  test("Gemini generateContent and streamGenerateContent?alt=sse", async () => {
    const plain = await curlJson(`${base}/google/models/gemini-2.0-flash-001:generateContent`, `Authorization: Bearer ${VERTEX_TOKEN}`, { contents: [{ role: "user", parts: [{ text: "Vertex hi" }] }] });
    expect(plain.code).toBe(0);
    const p = await single(plain.pid);
    expect(p.req.data.provider).toEqual({ name: "google", endpoint: `${base}/google/models/gemini-2.0-flash-001:generateContent` });
    expect(p.req.attrs.provider_id).toBe("google_vertex");
    expect(p.req.data.model.id).toBe("gemini-2.0-flash-001");
    expect(p.req.data.auth).toEqual({ type: "oauth", key_hash: expect.stringMatching(/^sha256:/) });
    expect(p.res.data.choices[0].message.content).toBe("Gemini says hi.");
    expect(p.res.data.usage).toMatchObject({ prompt_tokens: 31, completion_tokens: 7, cached_tokens: 8, reasoning_tokens: 14 });

    const sse = await curlJson(`${base}/google/models/gemini-2.0-flash-001:streamGenerateContent?alt=sse`, `Authorization: Bearer ${VERTEX_TOKEN}`, { contents: [{ role: "user", parts: [{ text: "Vertex stream" }] }] });
    const s = await single(sse.pid);
    expect(s.req.data.streaming).toBe(true);
    expect(s.res.data.choices[0].message.content).toBe("Gemini streams.");
  });

  test("Claude on Vertex: rawPredict and streamRawPredict read as Anthropic Messages, model from the path", async () => {
    const body = { anthropic_version: "vertex-2023-10-16", max_tokens: 100, messages: [{ role: "user", content: "Claude via Vertex" }] };
    const plain = await curlJson(`${base}/anthropic/models/claude-3-5-sonnet-v2@20241022:rawPredict`, `Authorization: Bearer ${VERTEX_TOKEN}`, body);
    const p = await single(plain.pid);
    expect(p.req.data.model.id).toBe("claude-3-5-sonnet-v2@20241022");
    expect(p.req.data.messages.map((m: any) => m.content)).toEqual(["Claude via Vertex"]);
    expect(p.res.data.choices[0].message.content).toBe("Claude on Vertex.");
    expect(p.res.data.usage).toMatchObject({ prompt_tokens: 33, completion_tokens: 12 });

    const streamed = await curlJson(`${base}/anthropic/models/claude-3-5-sonnet-v2@20241022:streamRawPredict`, `Authorization: Bearer ${VERTEX_TOKEN}`, { ...body, stream: true });
    const s = await single(streamed.pid);
    expect(s.req.data.streaming).toBe(true);
    expect(s.res.data.choices[0].message.content).toBe("Claude on Vertex.");
    expect(s.res.data.usage).toMatchObject({ prompt_tokens: 33, completion_tokens: 12 });
  });
});

test("Mistral: OpenAI-format chat on api.mistral.ai", async () => {
  const r = await curlJson("https://api.mistral.ai/v1/chat/completions", `Authorization: Bearer ${MISTRAL_KEY}`, { model: "mistral-large-latest", messages: [{ role: "user", content: "Bonjour" }] });
  const { req, res } = await single(r.pid);
  expect(req.data.provider).toEqual({ name: "mistral", endpoint: "https://api.mistral.ai/v1/chat/completions" });
  expect(req.data.model.id).toBe("mistral-large-latest");
  expect(res.data.choices[0].message.content).toBe("Hello!");
});

test("LM Studio: the openai client against localhost:1234 over plain HTTP", async () => {
  const run = await runClientScript(clients, ["lmstudio-chat"], { OISP_PROXY: h.proxyUrl, OISP_CA_FILE: h.caFile, LMSTUDIO_URL: `http://127.0.0.1:${lmstudio.port}/v1` });
  expect(run.result.content).toBe("Hello!");
  const { events, req, res } = await single(run.pid);
  expect(ofType(events, "network.connect")[0]!.attrs.mode).toBe("plain");
  expect(req.data.provider).toEqual({ name: "lmstudio", endpoint: `http://127.0.0.1:${lmstudio.port}/v1/chat/completions` });
  expect(req.data.model.id).toBe("qwen2.5-7b-instruct");
  expect(res.data.usage).toMatchObject({ prompt_tokens: 82, completion_tokens: 17 });
});

test("Bedrock ConverseStream with a corrupted message (curl --aws-sigv4): CRC failure reported, other messages kept, client unaffected", async () => {
  const r = await runCurl([
    "--proxy", h.proxyUrl, "--cacert", h.caFile, "--aws-sigv4", "aws:amz:eu-west-3:bedrock", "--user", `${AWS.id}:${AWS.secret}`,
    `https://${BEDROCK}/model/corrupt-crc/converse-stream`, "-H", "content-type: application/json",
    "-d", JSON.stringify({ messages: [{ role: "user", content: [{ text: "stream with damage" }] }] }), "-o", "-",
  ]);
  expect(r.code).toBe(0);
  // The client got all seven event-stream messages, the damaged one included: bytes are relayed as they come.
  expect(r.out.split(":event-type").length - 1).toBe(7);
  const { req, res } = await single(r.pid);
  expect(req.data.auth).toEqual({ type: "api_key", key_prefix: "AKIA", key_hash: expect.stringMatching(/^sha256:/) });
  // "Bed" + "streams." without the damaged "rock ": a bad CRC is not trusted.
  expect(res.data.choices[0].message.content).toBe("Bedstreams.");
  expect(res.data.usage).toMatchObject({ prompt_tokens: 41, completion_tokens: 13 });
  expect(res.confidence.completeness).toBe("partial");
  expect(res.confidence.reasons).toContain("response_parse_error");
  expect(res.attrs.response_parse_error).toMatch(/CRC mismatch/);
  const stored = storedBytes(h.dbPath);
  for (const secret of [AWS.id, AWS.secret, VERTEX_TOKEN, MISTRAL_KEY]) expect(stored.includes(secret)).toBe(false);
});
