// The whole product path with real parts: real SDK clients and curl, in their own processes, through
// `oisp up` (proxy + sensor in one process) to a local TLS upstream speaking each provider's wire format.
// Events are read back from the SQLite store and the JSONL file and asserted exactly.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { fakeProviderHandler, FIXED } from "../support/fake-providers.ts";
import { freePort, readEvents, runOisp, tempHome, waitFor, waitForPort, type OispProcess, type StoredEvent } from "../support/oisp-process.ts";
import { startTlsUpstream } from "../support/upstream.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

const OPENAI_KEY = "sk-proj-E2eTestKey0123456789abcdefSECRET";
const ANTHROPIC_KEY = "sk-ant-api03-E2eTestKeyABCDEFSECRET";
const clientScript = path.join(import.meta.dir, "../support/clients/sdk-client.ts");

interface Harness {
  oisp: OispProcess;
  proxyUrl: string;
  caFile: string;
  dbPath: string;
  jsonlPath: string;
  upstreamPort: number;
  upstreamCaFile: string;
  close(): Promise<void>;
}

/** Starts the upstream and `oisp up` with the given redaction mode. */
export async function startHarness(redaction: "safe" | "full" | "minimal"): Promise<Harness> {
  const home = tempHome();
  const upstream = await startTlsUpstream({
    hosts: ["api.openai.com", "api.anthropic.com", "example.com"],
    handler: fakeProviderHandler(),
  });
  const upstreamCaFile = path.join(home, "upstream-ca.pem");
  fs.writeFileSync(upstreamCaFile, upstream.caPem);
  const port = await freePort();
  const dbPath = path.join(home, "events.db");
  const jsonlPath = path.join(home, "events.jsonl");
  const resolve = ["api.openai.com", "api.anthropic.com", "example.com"].flatMap((h) => ["--resolve", `${h}:443:127.0.0.1:${upstream.port}`]);
  const oisp = runOisp(
    ["up", "--listen", `127.0.0.1:${port}`, "--upstream-ca", upstreamCaFile, ...resolve, "--db", dbPath, "--output", jsonlPath, "--redaction", redaction],
    { home },
  );
  await waitForPort(port, oisp);
  return {
    oisp,
    proxyUrl: `http://127.0.0.1:${port}`,
    caFile: path.join(home, "ca", "oisp-ca.pem"),
    dbPath,
    jsonlPath,
    upstreamPort: upstream.port,
    upstreamCaFile,
    async close() {
      await oisp.stop();
      await upstream.close();
    },
  };
}

async function runClient(h: Harness, scenario: string): Promise<{ pid: number; result: Record<string, unknown> }> {
  const proc = Bun.spawn([process.execPath, clientScript, scenario], {
    env: { ...process.env, OISP_PROXY: h.proxyUrl, OISP_CA_FILE: h.caFile, OPENAI_API_KEY: OPENAI_KEY, ANTHROPIC_API_KEY: ANTHROPIC_KEY },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`client ${scenario} failed (${code}): ${err}`);
  return { pid: proc.pid, result: JSON.parse(out.trim().split("\n").pop()!) };
}

/** Waits until the calls made by `pid` have produced a response event, then returns that process's events. */
async function eventsOf(h: Harness, pid: number, responses = 1): Promise<StoredEvent[]> {
  return waitFor(`events of pid ${pid}`, () => {
    const mine = readEvents(h.dbPath).filter((e) => (e.process as { pid?: number } | undefined)?.pid === pid);
    return mine.filter((e) => e.event_type === "ai.response").length >= responses ? mine : undefined;
  });
}

const byType = (events: StoredEvent[], type: string) => events.filter((e) => e.event_type === type) as Array<StoredEvent & { data: any }>;

describe("oisp up, redaction full", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness("full");
  });
  afterAll(async () => {
    await h?.close();
  });

  test("openai chat with a tool call: request, response, tool call, process", async () => {
    const { pid, result } = await runClient(h, "openai-chat");
    expect((result.tool_calls as any[])[0].function.arguments).toBe(FIXED.weatherArgs);
    const events = await eventsOf(h, pid);
    for (const e of events) validateOispEvent(e);

    const [req] = byType(events, "ai.request");
    expect(req!.data.provider.name).toBe("openai");
    expect(req!.data.model.id).toBe("gpt-4o-mini");
    expect(req!.data.streaming).toBe(false);
    expect(req!.data.messages.map((m: any) => [m.role, m.content])).toEqual([
      ["system", "You are terse."],
      ["user", "What is the weather in Paris?"],
    ]);
    expect(req!.data.tools.map((t: any) => t.name)).toEqual(["get_weather"]);
    expect(req!.data.parameters.temperature).toBe(0.2);
    expect(req!.data.auth.key_prefix).toBe("sk-proj-");
    expect(req!.data.auth.key_hash).toMatch(/^sha256:[0-9a-f]{16}$/);

    const [res] = byType(events, "ai.response");
    expect(res!.data.request_id).toBe(req!.event_id);
    expect(res!.data.success).toBe(true);
    expect(res!.data.status_code).toBe(200);
    expect(res!.data.model.id).toBe("gpt-4o-mini-2024-07-18");
    expect(res!.data.finish_reason).toBe("tool_calls");
    expect(res!.data.usage).toMatchObject({ prompt_tokens: 82, completion_tokens: 17, total_tokens: 99, cached_tokens: 64 });
    expect(res!.data.tool_calls).toEqual([
      { id: FIXED.openaiToolCallId, name: "get_weather", type: "function", arguments: FIXED.weatherArgs, arguments_hash: expect.stringMatching(/^sha256:[0-9a-f]{16}$/) },
    ]);
    expect(res!.data.latency_ms).toBeGreaterThanOrEqual(0);

    const [call] = byType(events, "agent.tool_call");
    expect(call!.data.tool.name).toBe("get_weather");
    expect(call!.data.call_id).toBe(FIXED.openaiToolCallId);
    expect(call!.data.arguments).toEqual({ city: "Paris" });

    // The process is the client's, found from the socket, not guessed.
    const proc = req!.process as { pid: number; name: string; exe: string; cmdline: string };
    expect(proc.pid).toBe(pid);
    expect(proc.cmdline).toContain("sdk-client.ts openai-chat");
    const [connect] = byType(events, "network.connect");
    expect(connect!.data.dest.domain).toBe("api.openai.com");
  });

  test("openai streamed chat: content reassembled, usage from the last chunk, time to first token", async () => {
    const { pid, result } = await runClient(h, "openai-stream");
    expect(result.content).toBe(FIXED.streamedText.join(""));
    const events = await eventsOf(h, pid);
    const [req] = byType(events, "ai.request");
    const [res] = byType(events, "ai.response");
    expect(req!.data.streaming).toBe(true);
    expect(res!.data.choices[0].message.content).toBe(FIXED.streamedText.join(""));
    expect(res!.data.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 });
    expect(res!.data.finish_reason).toBe("stop");
    expect(typeof res!.data.time_to_first_token_ms).toBe("number");
    for (const e of events) validateOispEvent(e);
  });

  test("openai streamed tool-call deltas are merged into whole calls", async () => {
    const { pid } = await runClient(h, "openai-stream-tools");
    const events = await eventsOf(h, pid);
    const [res] = byType(events, "ai.response");
    expect(res!.data.tool_calls.map((c: any) => [c.id, c.name, c.arguments])).toEqual([
      ["call_paris1", "get_weather", '{"city": "Paris"}'],
      ["call_tokyo2", "get_weather", '{"city": "Tokyo"}'],
    ]);
    // Calls of one response share its timestamp; the store orders them by id (a hash), so sort by index.
    const calls = byType(events, "agent.tool_call").sort((a, b) => (a.attrs as any).tool_call_index - (b.attrs as any).tool_call_index);
    expect(calls.map((e) => e.data.arguments)).toEqual([{ city: "Paris" }, { city: "Tokyo" }]);
  });

  test("openai responses API, streamed", async () => {
    const { pid, result } = await runClient(h, "openai-responses");
    const events = await eventsOf(h, pid);
    const [res] = byType(events, "ai.response");
    expect(res!.data.choices[0].message.content).toBe(result.content as string);
    expect(res!.data.usage).toMatchObject({ prompt_tokens: 15, completion_tokens: 11 });
  });

  test("openai embeddings", async () => {
    const { pid, result } = await runClient(h, "openai-embeddings");
    expect(result.count).toBe(2);
    const events = await eventsOf(h, pid);
    const [req] = byType(events, "ai.request");
    expect(req!.data.request_type).toBe("embedding");
    expect(byType(events, "ai.response")[0]!.data.usage.prompt_tokens).toBe(4);
  });

  test("provider errors become success:false with the provider's error", async () => {
    const { pid, result } = await runClient(h, "openai-error");
    expect(result.status).toBe(429);
    const [res] = byType(await eventsOf(h, pid), "ai.response");
    expect(res!.data.success).toBe(false);
    expect(res!.data.status_code).toBe(429);
    expect(res!.data.error).toMatchObject({ type: "requests", code: "rate_limit_exceeded" });
  });

  test("anthropic message with tool use", async () => {
    const { pid } = await runClient(h, "anthropic-message");
    const events = await eventsOf(h, pid);
    const [req] = byType(events, "ai.request");
    expect(req!.data.provider.name).toBe("anthropic");
    expect(req!.data.has_system_prompt).toBe(true);
    expect(req!.data.auth.key_prefix).toBe("sk-ant-");
    const [res] = byType(events, "ai.response");
    expect(res!.data.finish_reason).toBe("tool_calls");
    // All input tokens, the 128 cache reads included; Anthropic's own count is kept beside.
    expect(res!.data.usage).toMatchObject({ prompt_tokens: 600, completion_tokens: 57, cached_tokens: 128 });
    expect((res!.attrs as any).prompt_tokens_raw).toBe(472);
    expect(byType(events, "agent.tool_call")[0]!.data.arguments).toEqual({ city: "Berlin" });
    for (const e of events) validateOispEvent(e);
  });

  test("anthropic stream with thinking and input_json_delta", async () => {
    const { pid } = await runClient(h, "anthropic-stream");
    const events = await eventsOf(h, pid);
    const [res] = byType(events, "ai.response");
    expect(res!.data.choices[0].message.content).toBe("Checking Rome.");
    expect((res!.attrs as any).thinking).toBe(FIXED.thinking);
    expect(res!.data.tool_calls).toEqual([
      { id: FIXED.anthropicToolId, name: "get_weather", type: "function", arguments: '{"city": "Rome"}', arguments_hash: expect.stringMatching(/^sha256:/) },
    ]);
    expect(res!.data.usage).toMatchObject({ prompt_tokens: 600, completion_tokens: 89 });
  });

  test("curl through the proxy is captured and attributed to curl", async () => {
    const proc = Bun.spawn(
      ["curl", "-sS", "--proxy", h.proxyUrl, "--cacert", h.caFile, "https://api.openai.com/v1/chat/completions",
       "-H", `Authorization: Bearer ${OPENAI_KEY}`, "-H", "content-type: application/json",
       "-d", JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "from curl" }] })],
      { stdout: "pipe", stderr: "pipe", env: { ...process.env, CURL_CA_BUNDLE: "" } },
    );
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    expect(JSON.parse(out).id).toBe(FIXED.openaiChatId);
    const events = await eventsOf(h, proc.pid);
    expect((byType(events, "ai.request")[0]!.process as any).name).toBe("curl");
    expect(byType(events, "ai.request")[0]!.data.messages[0].content).toBe("from curl");
  });

  test("non-AI hosts are relayed byte-identical and produce no ai events", async () => {
    const proc = Bun.spawn(
      ["curl", "-sS", "--proxy", h.proxyUrl, "--cacert", h.upstreamCaFile, "https://example.com/v1/models"],
      { stdout: "pipe", stderr: "pipe", env: { ...process.env, CURL_CA_BUNDLE: "" } },
    );
    // Verified against the upstream's own CA: the proxy did not intercept this host.
    expect(JSON.parse(await new Response(proc.stdout).text())).toEqual({ object: "list", data: [] });
    expect(await proc.exited).toBe(0);
    await Bun.sleep(300);
    expect(readEvents(h.dbPath).filter((e) => e.event_type.startsWith("ai.") && (e.process as any)?.pid === proc.pid)).toEqual([]);
  });

  test("JSONL output carries the same events as the database", async () => {
    await Bun.sleep(200);
    const fromDb = new Set(readEvents(h.dbPath).map((e) => e.event_id));
    const lines = fs.readFileSync(h.jsonlPath, "utf8").trim().split("\n").map((l) => JSON.parse(l).event_id);
    expect(lines.length).toBeGreaterThan(10);
    for (const id of lines) expect(fromDb.has(id)).toBe(true);
  });
});

describe("oisp up, redaction safe (default)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness("safe");
  });
  afterAll(async () => {
    await h?.close();
  });

  test("content is replaced by hash and length; no secret anywhere in the store or JSONL", async () => {
    const { pid } = await runClient(h, "openai-chat");
    const events = await eventsOf(h, pid);
    for (const e of events) validateOispEvent(e);
    const [req] = byType(events, "ai.request");
    const userMsg = req!.data.messages[1];
    expect(userMsg.content.$redacted).toMatchObject({ reason: "default_safe", original_length: "What is the weather in Paris?".length });
    expect(userMsg.content.$redacted.hash).toMatch(/^sha256:/);
    const [call] = byType(events, "agent.tool_call");
    expect(call!.data.arguments.$redacted).toBeDefined();
    await Bun.sleep(200);
    // The database with its WAL, and the JSONL file: every byte the sensor wrote.
    const files = fs.readdirSync(path.dirname(h.dbPath)).filter((f) => f.startsWith("events."));
    const everything = files.map((f) => fs.readFileSync(path.join(path.dirname(h.dbPath), f)).toString("latin1")).join("\n");
    for (const secret of [OPENAI_KEY, "What is the weather in Paris?", "Paris\"}", "SECRET"]) expect(everything).not.toContain(secret);
  });
});
