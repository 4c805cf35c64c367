// Redaction: what may leave the sensor in each mode, and the secret masker it relies on.
import { describe, expect, test } from "bun:test";
import {
  buildAiRequest,
  buildAiResponse,
  buildNetworkConnect,
  buildProcessExec,
  buildToolCalls,
  contentHash,
  hostInfo,
  maskSecrets,
  redactEvent,
  type OispEvent,
} from "../../src/events/index.ts";
import { SECRET_KINDS } from "../../src/events/secrets.ts";
import { safeCommandArgs, safeCommandLine } from "../../src/events/cmdline.ts";
import { keyPrefix } from "../../src/decode/providers/common.ts";
import { API_KEY_SHAPES } from "../../src/spec/key-shapes.ts";
import { CONTENT, SECRETS, T0, connContext, connMeta, exchange, parsedRequest, parsedResponse } from "./events.fixtures.ts";

function buildAll(meta = connMeta()) {
  const ctx = connContext(meta);
  const ex = exchange();
  const req = parsedRequest();
  const res = parsedResponse({ error: { type: "auth", message: `Incorrect API key provided: ${SECRETS.anthropic}` } });
  const request = buildAiRequest(ctx, ex, req);
  const response = buildAiResponse(ctx, ex, req, res, request);
  const tools = buildToolCalls(ctx, res, response);
  return { request, response, tools, all: [buildNetworkConnect(ctx), request, response, ...tools] as OispEvent[] };
}

const CONTENT_TEXTS = [CONTENT.system, CONTENT.user, CONTENT.assistantHistory, CONTENT.toolResult, CONTENT.answer, CONTENT.thinking, CONTENT.argsJson, CONTENT.argsText];
const SECRETS_IN_EVENTS = [SECRETS.openai, SECRETS.aws, SECRETS.github, SECRETS.anthropic, SECRETS.password];

describe("safe mode (default)", () => {
  const { request, response, tools, all } = buildAll();
  const safe = all.map((e) => redactEvent(e, "safe"));

  test("no content and no credential anywhere in the serialized events", () => {
    const text = JSON.stringify(safe);
    for (const c of CONTENT_TEXTS) expect(text).not.toContain(c);
    for (const s of SECRETS_IN_EVENTS) expect(text).not.toContain(s);
    // fragments too: the launch code from the system prompt and the city from the arguments
    expect(text).not.toContain("launch codes");
    expect(text).not.toContain("Paris");
  });

  test("the unredacted events did contain them (the check above can fail)", () => {
    const text = JSON.stringify(all);
    for (const c of [CONTENT.system, CONTENT.user, CONTENT.answer, CONTENT.thinking, CONTENT.argsJson]) expect(text).toContain(JSON.stringify(c).slice(1, -1));
    for (const s of SECRETS_IN_EVENTS) expect(text).toContain(s);
  });

  test("content becomes $redacted markers with length and hash; structure stays", () => {
    const req = safe[1] as typeof request;
    expect(req.data.messages).toHaveLength(4);
    expect(req.data.messages![1]).toMatchObject({
      role: "user",
      content: {
        $redacted: {
          reason: "default_safe",
          original_length: CONTENT.user.length,
          hash: contentHash(CONTENT.user),
          redaction_profile: "safe",
          detector: "regex_secret",
          findings: [{ type: "openai_key", count: 1 }, { type: "aws_access_key", count: 1 }],
        },
      },
      content_hash: contentHash(CONTENT.user),
      content_length: CONTENT.user.length,
    });
    expect(req.data.messages_count).toBe(4);
    expect(req.data.system_prompt_hash).toBe(request.data.system_prompt_hash);
    expect(req.confidence).toMatchObject({ completeness: "redacted", redaction_applied: true, redaction_profile: "safe" });

    const res = safe[2] as typeof response;
    expect(res.data.choices![0]!.message!.content).toMatchObject({ $redacted: { hash: contentHash(CONTENT.answer) } });
    expect(res.data.tool_calls![0]!.arguments).toMatchObject({ $redacted: { original_length: CONTENT.argsJson.length } });
    expect(res.data.tool_calls![0]!.arguments_hash).toBe(contentHash(CONTENT.argsJson));
    expect(res.attrs!.thinking).toMatchObject({ $redacted: { hash: contentHash(CONTENT.thinking) } });
    expect(res.data.usage).toEqual(response.data.usage!);

    const call = safe[3] as (typeof tools)[number];
    expect(call.data.arguments).toMatchObject({ $redacted: { reason: "default_safe" } });
    expect(call.data.arguments_hash).toBe(tools[0]!.data.arguments_hash!);
  });

  test("non-content strings keep their text with credentials masked", () => {
    const req = safe[1]!;
    expect(req.process!.cmdline).toBe("python3 agent.py --token [REDACTED:github_token] --openai-key=[REDACTED:openai_key]");
    expect((safe[2] as typeof response).data.error!.message).toBe("Incorrect API key provided: [REDACTED:anthropic_key]");
    expect(req.attrs!.redaction_findings).toEqual(expect.arrayContaining([{ type: "github_token", count: 1 }]));
    expect(req.confidence.reasons).toContain("secrets_masked");
  });

  test("the input event is not modified", () => {
    expect(request.data.messages![1]!.content).toBe(CONTENT.user);
    expect(request.process!.cmdline).toContain(SECRETS.github);
  });

  test("a network.connect has no content: completeness stays metadata_only", () => {
    const clean = buildAll(connMeta({ process: { pid: 1, name: "curl", cmdline: "curl https://api.openai.com" } })).all[0]!;
    const out = redactEvent(clean, "safe");
    expect(out.confidence.completeness).toBe("metadata_only");
    expect(out.confidence.redaction_applied).toBe(false);
    expect(out).toEqual({ ...clean, confidence: { ...clean.confidence, redaction_applied: false, redaction_profile: "safe" } });
  });
});

describe("full mode", () => {
  const { all } = buildAll();
  const full = all.map((e) => redactEvent(e, "full"));

  test("content is kept, credentials inside it are masked and counted", () => {
    const req = full[1] as ReturnType<typeof buildAiRequest>;
    expect(req.data.messages![0]!.content).toBe(CONTENT.system);
    expect(req.data.messages![1]!.content).toBe("What is the weather in Paris? My key is [REDACTED:openai_key] and my AWS key [REDACTED:aws_access_key].");
    expect(req.confidence).toMatchObject({ completeness: "full", redaction_applied: true, redaction_profile: "full" });
    expect(req.attrs!.redaction_findings).toEqual(
      expect.arrayContaining([
        { type: "openai_key", count: 2 }, // prompt + command line
        { type: "aws_access_key", count: 1 },
        { type: "github_token", count: 1 },
      ]),
    );
    const call = full[3] as ReturnType<typeof buildToolCalls>[number];
    expect(call.data.arguments).toEqual({ city: "Paris", password: "[REDACTED:secret_field]" });
    const res = full[2] as ReturnType<typeof buildAiResponse>;
    expect(res.data.tool_calls![0]!.arguments).toBe('{"city":"Paris","password":"[REDACTED:password]"}');
    expect(res.attrs!.thinking).toBe(CONTENT.thinking);
    const text = JSON.stringify(full);
    for (const s of SECRETS_IN_EVENTS) expect(text).not.toContain(s);
  });
});

describe("minimal mode", () => {
  const { request, response, all } = buildAll();
  const minimal = all.map((e) => redactEvent(e, "minimal"));

  test("content is gone entirely; counts, model, usage and timing stay", () => {
    const text = JSON.stringify(minimal);
    for (const c of CONTENT_TEXTS) expect(text).not.toContain(c);
    expect(text).not.toContain("$redacted");
    expect(text).not.toContain(CONTENT.toolDescription);
    const req = minimal[1] as typeof request;
    expect(req.data.messages).toBeUndefined();
    expect(req.data.messages_count).toBe(4);
    expect(req.data.tools).toEqual([{ name: "get_weather", type: "function" }]);
    expect(req.data.model).toEqual(request.data.model!);
    const res = minimal[2] as typeof response;
    expect(res.data.choices).toBeUndefined();
    expect(res.data.tool_calls).toEqual(response.data.tool_calls!.map(({ arguments: _a, ...rest }) => rest));
    expect(res.data.usage).toEqual(response.data.usage!);
    expect(res.data.latency_ms).toBe(response.data.latency_ms!);
    expect(res.data.finish_reason).toBe("tool_calls");
    expect(res.attrs!.thinking).toBeUndefined();
    expect((minimal[3]!.data as { arguments?: unknown }).arguments).toBeUndefined();
    for (const e of minimal) expect(e.confidence).toMatchObject({ completeness: "metadata_only", redaction_profile: "minimal" });
  });
});

describe("every mode", () => {
  test("auth is cut down to type, 8-character prefix and fingerprint", () => {
    const { request } = buildAll();
    const tampered = structuredClone(request) as OispEvent;
    (tampered.data as Record<string, unknown>).auth = { type: "api_key", key_prefix: SECRETS.openai, key_hash: "abc", key: SECRETS.openai };
    for (const mode of ["safe", "full", "minimal"] as const) {
      const out = redactEvent(tampered, mode);
      expect((out.data as Record<string, unknown>).auth).toEqual({ type: "api_key", key_prefix: SECRETS.openai.slice(0, 8), key_hash: "abc" });
      expect(JSON.stringify(out)).not.toContain(SECRETS.openai);
    }
  });

  test("deeply nested tool arguments are replaced, not walked without bound", () => {
    let deep: Record<string, unknown> = { secret_value: SECRETS.github };
    for (let i = 0; i < 200; i++) deep = { next: deep };
    const ctx = connContext();
    const res = parsedResponse({ toolCalls: [{ id: "c", name: "n", arguments: JSON.stringify(deep) }] });
    const req = parsedRequest();
    const response = buildAiResponse(ctx, exchange(), req, res, buildAiRequest(ctx, exchange(), req));
    const [call] = buildToolCalls(ctx, res, response);
    const out = redactEvent(call!, "full");
    expect(JSON.stringify(out)).not.toContain(SECRETS.github);
    expect(JSON.stringify(out)).toContain('"reason":"too_deep"');
  });
});

describe("maskSecrets", () => {
  const cases: Array<[kind: string, text: string, secret: string]> = [
    ["openai_key", `key ${SECRETS.openai} end`, SECRETS.openai],
    ["openai_key", "OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwxyz012345", "sk-abcdefghijklmnopqrstuvwxyz012345"],
    ["anthropic_key", `x-api-key: ${SECRETS.anthropic}`, SECRETS.anthropic],
    ["aws_access_key", `aws ${SECRETS.aws}`, SECRETS.aws],
    ["bearer_token", `Authorization: Bearer ${SECRETS.bearer}`, SECRETS.bearer],
    ["jwt", `cookie=${SECRETS.jwt};`, SECRETS.jwt],
    ["password", `{"user":"bob","password":"${SECRETS.password}"}`, SECRETS.password],
    ["password", `mysql -u bob --password=${SECRETS.password} db`, SECRETS.password],
    ["password", `DB_PASSWORD: ${SECRETS.password}`, SECRETS.password],
    ["private_key", `key:\n${SECRETS.privateKey}\nrest`, "MHcCAQEEIBkg3r5mYw1example"],
    ["private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAcut-by-a-limit", "MIIEpAIBAAKCAQEAcut-by-a-limit"],
    ["github_token", `git clone https://${SECRETS.github}@github.com/x/y`, SECRETS.github],
    ["github_token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop"],
    ["google_api_key", `https://x.googleapis.com/v1?key=${SECRETS.google}`, SECRETS.google],
    ["credential", 'client_secret = "Zm9vYmFyYmF6cXV4MTIz"', "Zm9vYmFyYmF6cXV4MTIz"],
    ["url_password", "HTTPS_PROXY=http://bob:s3cr3tpass@proxy.local:8080", "s3cr3tpass"],
    ["groq_key", "GROQ_API_KEY=gsk_Wq3fJ9vLr2Xk8TzN4bYc7HdP1sQm6AeU0oIi5GgVhBnKjRlMt", "gsk_Wq3fJ9vLr2Xk8TzN4bYc7HdP1sQm6AeU0oIi5GgVhBnKjRlMt"],
    ["xai_key", "grok-cli xai-Zr4Tq9LmW2vXc7Np3Hs8Kd1Fb6Gj0YyUe5Ao", "xai-Zr4Tq9LmW2vXc7Np3Hs8Kd1Fb6Gj0YyUe5Ao"],
    ["huggingface_token", "huggingface-cli login --token hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"],
    ["credential", "llm --api-key 3f9a0c7e1b2d4f6a8c0e2b4d6f8a0c1e x", "3f9a0c7e1b2d4f6a8c0e2b4d6f8a0c1e"],
    ["credential", "aws s3 ls --aws-secret-access-key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
    ["credential", "aws s3 ls --aws-secret-access-key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
    ["credential", "mysql --password hunter2-correct-horse db", "hunter2-correct-horse"],
    // Every provider key shape the decoders recognise (one list: src/spec/key-shapes.ts), with a space and with "=".
    ...API_KEY_SHAPES.flatMap((k): Array<[string, string, string]> => [
      [k.kind, `key ${k.prefix}${k.prefix === "AIza" ? "SyA1234567890abcdefghijklmnopqrstuv" : "Q9wE8rT7yU6iO5pA4sD3fG2hJ1kL0zXc"} end`, `${k.prefix}${k.prefix === "AIza" ? "SyA1234567890abcdefghijklmnopqrstuv" : "Q9wE8rT7yU6iO5pA4sD3fG2hJ1kL0zXc"}`],
      [k.kind, `TOKEN=${k.prefix}${k.prefix === "AIza" ? "SyB1234567890abcdefghijklmnopqrstuv" : "M1nB2vC3xZ4lK5jH6gF7dS8aP9oI0uYt"}`, `${k.prefix}${k.prefix === "AIza" ? "SyB1234567890abcdefghijklmnopqrstuv" : "M1nB2vC3xZ4lK5jH6gF7dS8aP9oI0uYt"}`],
    ]),
  ];
  test("every provider key shape the decoders report a prefix for is masked as its kind", () => {
    for (const k of API_KEY_SHAPES) {
      const key = `${k.prefix}${k.prefix === "AIza" ? "SyA1234567890abcdefghijklmnopqrstuv" : "Q9wE8rT7yU6iO5pA4sD3fG2hJ1kL0zXc"}`;
      expect(keyPrefix(key)).toBe(k.prefix.slice(0, 8));
      expect(maskSecrets(`x ${key} y`).text).toBe(`x [REDACTED:${k.kind}] y`);
    }
  });

  test("flags merely containing a secret word keep their value; masked flags keep their name", () => {
    expect(maskSecrets("llm --max-tokens 512 --keyboard-layout us").text).toBe("llm --max-tokens 512 --keyboard-layout us");
    expect(maskSecrets("hf_hub_download and hf_transfer are names").text).toBe("hf_hub_download and hf_transfer are names");
    expect(maskSecrets("tool --api-key=0123456789abcdef --model x").text).toBe("tool --api-key=[REDACTED:credential] --model x");
  });

  test("every kind of credential has a case here (so the pre-check in secrets.ts is tested for it)", () => {
    expect([...new Set(cases.map(([kind]) => kind))].sort()).toEqual([...SECRET_KINDS].sort());
  });

  for (const [kind, text, secret] of cases) {
    test(`masks ${kind}: ${text.slice(0, 40).replace(/\n/g, " ")}`, () => {
      const out = maskSecrets(text);
      expect(out.text).not.toContain(secret);
      expect(out.text).toContain(`[REDACTED:${kind}]`);
      expect(out.findings).toContainEqual({ type: kind, count: 1 });
    });
  }

  test("counts repeated secrets", () => {
    expect(maskSecrets(`${SECRETS.aws} and ${SECRETS.aws}`).findings).toEqual([{ type: "aws_access_key", count: 2 }]);
  });

  test("leaves normal text alone", () => {
    const normal = [
      "The password policy requires 12 characters.",
      "Set max_tokens=512 and temperature: 0.2 for the task-runner.",
      "Use the sk- prefix check; ask-questions-freely-and-often-please is fine.",
      "Basic information about Bearer bonds.",
      "AKIA is a prefix; AKIAshort is not a key.",
      "eyJ alone is nothing, nor is a.b.c",
      '{"role":"user","content":"Explain JWT (JSON Web Token) auth in 3 lines."}',
      "https://api.openai.com/v1/chat/completions?stream=true",
      "Übersetze: «Das Passwort ist zu kurz»",
    ];
    for (const text of normal) expect(maskSecrets(text)).toEqual({ text, findings: [] });
  });
});

describe("command lines in safe mode", () => {
  test("process.exec args: executable, flags, paths and masked keys stay; prompt words are hashed", () => {
    const argv = ["curl", "-sS", "https://api.groq.com/openai/v1/chat/completions", "-H", "Authorization: Bearer gsk_Wq3fJ9vLr2Xk8TzN4bYc7HdP1sQm6AeU0oIi5GgVhBnKjRlMt", "-d", '{"messages":[{"role":"user","content":"the secret plan"}]}'];
    const exec = buildProcessExec({ collectorVersion: "t", host: hostInfo() }, { kind: "exec", ts: T0, pid: 9, ppid: 1, uid: 0, comm: "curl", exe: "/usr/bin/curl", argv, argvTruncated: false, cwd: "/w" });
    const safe = redactEvent(exec, "safe") as typeof exec;
    const args = safe.data.args!;
    expect(args.slice(0, 4)).toEqual(["curl", "-sS", "https://api.groq.com/openai/v1/chat/completions", "-H"]);
    expect(args[4]).toBe("Authorization: Bearer [REDACTED:groq_key]");
    expect(args[5]).toBe("-d");
    // hashed once: the marker is the hash of the argument itself, so equal argv still correlate
    expect(args[6]).toBe(`[${contentHash(argv[6]!)}]`);
    expect(JSON.stringify(safe)).not.toContain("secret plan");
    // full mode keeps the words, keys masked
    const full = redactEvent(exec, "full") as typeof exec;
    expect(full.data.args![6]).toContain("the secret plan");
    expect(JSON.stringify(full)).not.toContain("gsk_Wq3f");
  });

  test("reducing a command line twice changes nothing (an event redacted again keeps its markers)", () => {
    const line = `python3 ask.py --model gpt-4o "what is the plan" --api-key [REDACTED:openai_key]`;
    const once = safeCommandLine(line);
    expect(once).toContain("ask.py");
    expect(once).not.toContain("plan");
    expect(safeCommandLine(once)).toBe(once);
    const args = ["python3", "ask.py", "what is the plan", "--note=private words"];
    const reduced = safeCommandArgs(args);
    expect(reduced[2]).toBe(`[${contentHash("what is the plan")}]`);
    expect(safeCommandArgs(reduced)).toEqual(reduced);
  });
});
