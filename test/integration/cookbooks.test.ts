// Every cookbook in cookbooks/ run as a user would run it (node, python3, sh + curl), through `oisp up`
// in front of local fake OpenAI / Anthropic / Ollama upstreams. The events each run leaves in the store
// are summarised and compared with the cookbook's <name>.expected.json, which is the documentation of
// what a user sees: the examples and their documented events cannot drift apart.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startE2e, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { fakeProviderHandler, sendJson } from "../support/fake-providers.ts";
import { startFakeOllama, type PlainServer } from "../support/fake-providers-more.ts";
import { readEvents, waitFor } from "../support/oisp-process.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

const cookbooks = path.resolve(import.meta.dir, "../../cookbooks");
const NODE = Bun.which("node");
const PYTHON = Bun.which("python3");
const KEYS = { openai: "sk-proj-CookbookKey0123456789SECRET", anthropic: "sk-ant-api03-CookbookKey0123456789SECRET" };

let h: E2eHarness;
let ollama: PlainServer;

/** The fake Anthropic API answers a tool_result with a final text (the shared fake always asks for the tool). */
const anthropicToolResult = fakeProviderHandler({
  extra: (req, res, body) => {
    const messages = (body.messages ?? []) as { role: string; content: unknown }[];
    const last = messages.at(-1);
    const isResult = Array.isArray(last?.content) && (last.content as { type?: string }[]).some((b) => b.type === "tool_result");
    if (!req.url?.startsWith("/v1/messages") || !isResult) return false;
    sendJson(req, res, 200, {
      id: "msg_01CookbookFinal",
      type: "message",
      role: "assistant",
      model: body.model,
      content: [{ type: "text", text: "It is 18 °C and clear in Berlin." }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: 610, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 14 },
    });
    return true;
  },
});

beforeAll(async () => {
  // On Ollama's own port: the sensor names the provider by host:port (localhost:11434), the address the
  // client asked for (a --resolve'd one too: e2e-resolve-local.test.ts).
  ollama = await startFakeOllama();
  h = await startE2e({ hosts: ["api.openai.com", "api.anthropic.com"], handler: anthropicToolResult });
}, 60_000);

afterAll(async () => {
  await h?.close();
  await ollama?.close();
});

/** What a reader of the dashboard would note about each AI event, in capture order. */
function summarise(events: AnyEvent[]): Record<string, unknown>[] {
  return events.flatMap((e): Record<string, unknown>[] => {
    const d = e.data;
    if (e.event_type === "ai.request")
      return [{ event: "ai.request", provider: d.provider?.name, model: d.model?.id, streaming: d.streaming, tools: d.tools?.map((t: any) => t.name) }];
    if (e.event_type === "ai.response")
      return [
        {
          event: "ai.response",
          status: d.status_code,
          finish_reason: d.finish_reason,
          text: d.choices?.[0]?.message?.content,
          tool_calls: d.tool_calls?.map((t: any) => t.name),
          total_tokens: d.usage?.total_tokens,
        },
      ];
    if (e.event_type === "agent.tool_call") return [{ event: "agent.tool_call", tool: d.tool?.name, arguments: d.arguments }];
    return [];
  });
}

const stripUndefined = (v: unknown) => JSON.parse(JSON.stringify(v));

/** Runs one cookbook, then returns the summary of the events it added to the store. */
async function run(cmd: string[], expectedResponses: number, env: Record<string, string> = {}) {
  const before = new Set(readEvents(h.dbPath).map((e) => e.event_id));
  const proc = Bun.spawn(cmd, {
    cwd: cookbooks,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      PATH: process.env.PATH!,
      HOME: process.env.HOME!,
      HTTPS_PROXY: h.proxyUrl,
      HTTP_PROXY: h.proxyUrl,
      NO_PROXY: "",
      NODE_EXTRA_CA_CERTS: h.caFile,
      SSL_CERT_FILE: h.caFile,
      OISP_CA_FILE: h.caFile,
      OPENAI_API_KEY: KEYS.openai,
      ANTHROPIC_API_KEY: KEYS.anthropic,
      ...env,
    },
  });
  const timer = setTimeout(() => proc.kill(), 60_000);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed (${code}):\n${err}\n${out}`);
  const events = await waitFor(`${expectedResponses} ai.response events`, () => {
    const mine = (readEvents(h.dbPath) as AnyEvent[]).filter((e) => !before.has(e.event_id));
    return mine.filter((e) => e.event_type === "ai.response").length >= expectedResponses ? mine : undefined;
  });
  for (const e of events) validateOispEvent(e);
  // The store's order within one millisecond is by id: order by capture time, requests before responses.
  const rank: Record<string, number> = { "ai.request": 0, "ai.response": 1, "agent.tool_call": 2 };
  events.sort((a, b) => (a.ts as string).localeCompare(b.ts as string) || (rank[a.event_type] ?? 3) - (rank[b.event_type] ?? 3));
  return { out, summary: stripUndefined(summarise(events)) };
}

const expected = (name: string) => JSON.parse(fs.readFileSync(path.join(cookbooks, `${name}.expected.json`), "utf8"));

describe("cookbooks through oisp up", () => {
  test("node-openai.mjs (Node + openai, plain and streamed)", async () => {
    if (!NODE) throw new Error("node is not installed");
    const r = await run([NODE, "node-openai.mjs"], 2);
    expect(r.out).toContain("chat: Hello!");
    expect(r.out).toContain("stream: Hello, Bonjour, Hola!");
    expect(r.summary).toEqual(expected("node-openai"));
  }, 90_000);

  test("node-anthropic-tools.mjs (Node + Anthropic, a tool round trip)", async () => {
    if (!NODE) throw new Error("node is not installed");
    const r = await run([NODE, "node-anthropic-tools.mjs"], 2);
    expect(r.out).toContain('tool: get_weather({"city":"Berlin"})');
    expect(r.out).toContain("It is 18 °C and clear in Berlin.");
    expect(r.summary).toEqual(expected("node-anthropic-tools"));
  }, 90_000);

  test("python-openai-compatible.py (Python standard library)", async () => {
    if (!PYTHON) throw new Error("python3 is not installed (apt-get install python3)");
    const r = await run([PYTHON, "python-openai-compatible.py"], 1);
    expect(r.out).toContain("chat: Hello! (99 tokens)");
    expect(r.summary).toEqual(expected("python-openai-compatible"));
  }, 90_000);

  test("curl.sh (plain and SSE)", async () => {
    const r = await run(["sh", "curl.sh"], 2);
    expect(r.out).toContain('"chat.completion"');
    expect(r.out).toContain("data: [DONE]");
    expect(r.summary).toEqual(expected("curl"));
  }, 90_000);

  test("ollama-local.sh (plain HTTP to a local Ollama)", async () => {
    const r = await run(["sh", "ollama-local.sh"], 1, { OLLAMA_HOST: "http://localhost:11434" });
    expect(r.out).toContain("Ollama local.");
    expect(r.summary).toEqual(expected("ollama-local"));
  }, 90_000);

  test("no API key reached the store", async () => {
    const db = fs.readFileSync(h.dbPath, "latin1") + (fs.existsSync(`${h.dbPath}-wal`) ? fs.readFileSync(`${h.dbPath}-wal`, "latin1") : "");
    for (const key of Object.values(KEYS)) expect(db.includes(key)).toBe(false);
  });
});
