// Sensor CPU benchmark (not a test): the real sensor core (pipeline → decoders → event builders → "safe"
// redaction → SQLite store in a temp dir) fed recorded wire bytes the way the relay's tap feeds it
// (pipeline.open(meta), then pipeline.data(connId, dir, bytes, ts)), keep-alive over 10 connections.
// Three kinds of AI call, each measured on its own: an OpenAI chat completion (JSON request and response,
// ~1 KB each, with an Authorization header), an OpenAI streamed completion (SSE, 40 chunks and usage), and an
// Anthropic messages stream ending in a tool_use. Prints µs of CPU per call (process.cpuUsage: user+system,
// this process has one JS thread plus SQLite's own work on it) and the main thread's share (from
// /proc/self/task/<pid>/stat), per round after a warm-up; counts the stored rows at the end so a run that
// stores nothing cannot pass for a fast one.
//
//   bun bench/sensor.ts [--calls N] [--rounds R] [--kind chat|stream|anthropic]... [--baseline DIR]...
// With --baseline DIR (another checkout, e.g. `git archive <rev> | tar -x -C DIR && ln -s $PWD/node_modules DIR/`;
// repeatable), each round runs every tree's sensor core in a fresh process, alternating, on the same recorded
// calls, and the ranges per tree and kind are printed side by side.
//   profile: bun --cpu-prof --cpu-prof-dir=/tmp/oisp-prof bench/sensor.ts --kind chat
//            (count self samples per function in the .cpuprofile; the -md time weights are unreliable)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Database } from "bun:sqlite";
import type { ConnMeta } from "../src/tap/types.ts";
import { statCpuSec } from "./lib/procs.ts";

const { values } = parseArgs({
  options: {
    calls: { type: "string" },
    rounds: { type: "string" },
    kind: { type: "string", multiple: true },
    baseline: { type: "string", multiple: true },
    child: { type: "string" }, // internal: the sensor core module to measure in this process (one round, JSON out)
  },
});
const callsPerRound = Number(values.calls ?? 3000);
const rounds = Number(values.rounds ?? 3);
const CONNECTIONS = 10;
/** Calls between store flushes: the store output commits once per 500 ms tick in the product. */
const FLUSH_EVERY = 200;

const enc = new TextEncoder();

interface Call {
  host: string;
  c2s: Uint8Array;
  /** The response as it arrives: one piece per network read. */
  s2c: Uint8Array[];
}

function httpRequest(host: string, p: string, headers: Record<string, string>, body: string): Uint8Array {
  const lines = [`POST ${p} HTTP/1.1`, `Host: ${host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return enc.encode(`${lines.join("\r\n")}\r\n\r\n${body}`);
}

function chunked(parts: string[]): string {
  return parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join("") + "0\r\n\r\n";
}

const OPENAI_HEADERS = {
  "User-Agent": "OpenAI/Python 1.51.0",
  Accept: "application/json",
  "Content-Type": "application/json",
  Authorization: "Bearer sk-proj-Abc123def456GHI789jkl012MNO345pqr678STU901vwx",
  "X-Stainless-Lang": "python",
  "X-Stainless-Package-Version": "1.51.0",
  "X-Stainless-Runtime": "CPython",
};

const chatMessages = [
  { role: "system", content: "You are a careful code reviewer. Answer briefly and cite file names." },
  { role: "user", content: "Summarise the repository and list the risky changes in the last commits, file by file. ".repeat(6) },
];

function openaiChat(): Call {
  const host = "api.openai.com";
  const req = httpRequest(host, "/v1/chat/completions", OPENAI_HEADERS, JSON.stringify({ model: "gpt-4o-mini", messages: chatMessages, temperature: 0.2 }));
  const body = JSON.stringify({
    id: "chatcmpl-AbCdEf123456",
    object: "chat.completion",
    created: 1764000000,
    model: "gpt-4o-mini-2024-07-18",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: "The riskiest change is the migration; the rest are small refactors with tests. ".repeat(9), refusal: null },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: { prompt_tokens: 131, completion_tokens: 160, total_tokens: 291 },
    system_fingerprint: "fp_0ba0d124f1",
  });
  const head = [
    "HTTP/1.1 200 OK",
    "Date: Wed, 25 Nov 2026 11:00:00 GMT",
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    "Connection: keep-alive",
    "openai-organization: user-abc",
    "openai-processing-ms: 812",
    "x-request-id: req_0123456789abcdef",
    "x-ratelimit-remaining-tokens: 199000",
  ].join("\r\n");
  return { host, c2s: req, s2c: [enc.encode(`${head}\r\n\r\n${body}`)] };
}

function openaiStream(): Call {
  const host = "api.openai.com";
  const req = httpRequest(
    host,
    "/v1/chat/completions",
    OPENAI_HEADERS,
    JSON.stringify({ model: "gpt-4o-mini", messages: chatMessages, stream: true, stream_options: { include_usage: true } }),
  );
  const base = { id: "chatcmpl-Str123", object: "chat.completion.chunk", created: 1764000000, model: "gpt-4o-mini-2024-07-18", system_fingerprint: "fp_0ba0d124f1" };
  const events: string[] = [];
  events.push(JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] }));
  for (let i = 0; i < 38; i++) {
    events.push(JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: ` token${i} of the answer,` }, logprobs: null, finish_reason: null }] }));
  }
  events.push(JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }] }));
  events.push(JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 131, completion_tokens: 40, total_tokens: 171 } }));
  const sse = events.map((e) => `data: ${e}\n\n`);
  sse.push("data: [DONE]\n\n");
  const head = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream; charset=utf-8", "Transfer-Encoding: chunked", "Connection: keep-alive", "x-request-id: req_stream0123"].join("\r\n");
  // Head first, then one network read per SSE event (how a stream arrives).
  const s2c = [enc.encode(`${head}\r\n\r\n`), ...chunked(sse).split(/(?<=\r\n)(?=[0-9a-f]+\r\n)/).map((s) => enc.encode(s))];
  return { host, c2s: req, s2c };
}

function anthropicToolStream(): Call {
  const host = "api.anthropic.com";
  const req = httpRequest(
    host,
    "/v1/messages",
    {
      "User-Agent": "claude-cli/1.0.0 (external, cli)",
      "Content-Type": "application/json",
      "x-api-key": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopqrstuvwxyzABCDEF-AAAA",
      "anthropic-version": "2023-06-01",
      Accept: "text/event-stream",
    },
    JSON.stringify({
      model: "claude-sonnet-4-5",
      max_tokens: 1024,
      stream: true,
      system: "You are a coding agent. Use tools to read files.",
      tools: [{ name: "read_file", description: "Read a file", input_schema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] } }],
      messages: [{ role: "user", content: "Read src/index.ts and tell me what it exports." }],
    }),
  );
  const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const sse = [
    ev("message_start", {
      message: { id: "msg_01AbC", type: "message", role: "assistant", model: "claude-sonnet-4-5-20250929", content: [], stop_reason: null, usage: { input_tokens: 412, output_tokens: 2 } },
    }),
    ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    ...Array.from({ length: 8 }, (_, i) => ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: `I will read the file, step ${i}. ` } })),
    ev("content_block_stop", { index: 0 }),
    ev("content_block_start", { index: 1, content_block: { type: "tool_use", id: "toolu_01XyZ", name: "read_file", input: {} } }),
    ev("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: '{"path": "src/' } }),
    ev("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: 'index.ts"}' } }),
    ev("content_block_stop", { index: 1 }),
    ev("message_delta", { delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 58 } }),
    ev("message_stop", {}),
  ];
  const head = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream; charset=utf-8", "Transfer-Encoding: chunked", "Connection: keep-alive", "request-id: req_01Anth"].join("\r\n");
  const s2c = [enc.encode(`${head}\r\n\r\n`), ...chunked(sse).split(/(?<=\r\n)(?=[0-9a-f]+\r\n)/).map((s) => enc.encode(s))];
  return { host, c2s: req, s2c };
}

const KINDS: Record<string, () => Call> = { chat: openaiChat, stream: openaiStream, anthropic: anthropicToolStream };

function meta(connId: string, host: string): ConnMeta {
  return {
    connId,
    startedAt: Date.now(),
    client: { ip: "127.0.0.1", port: 50000 },
    server: { ip: "10.0.0.1", port: 443 },
    host,
    sni: host,
    alpn: "http/1.1",
    mode: "mitm",
    process: { pid: 4242, ppid: 1, exe: "/usr/bin/python3", name: "python3", cmdline: "python3 agent.py", user: "dev", uid: 1000 },
    captureMethod: "mitm_proxy",
  };
}

/** CPU time of this process's main thread, µs (utime+stime from /proc; undefined off Linux). */
function mainThreadCpuUs(): number | undefined {
  try {
    return statCpuSec(fs.readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8")) * 1e6;
  } catch {
    return undefined;
  }
}

type Results = Record<string, { cpu: number[]; main: number[] }>;
const kinds = values.kind?.length ? values.kind : Object.keys(KINDS);

/**
 * Runs the sensor core of `coreModule` (this tree's or a baseline's src/sensor/core.ts) in this process:
 * a warm-up, then `rounds` rounds of every kind. Throws unless every call was stored.
 */
async function measure(coreModule: string, rounds: number): Promise<Results> {
  const { startSensorCore } = (await import(coreModule)) as typeof import("../src/sensor/core.ts");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-sensor-"));
  const dbPath = path.join(dir, "oisp.db");
  const sensor = startSensorCore({ dataDir: dir, dbPath, redaction: "safe", processFilter: [], verbose: false, log: () => {} });
  let connSeq = 0;
  let expectedCalls = 0;

  /** `n` calls of one kind, round-robin over fresh keep-alive connections; returns CPU µs per call. */
  function run(kind: string, n: number): { cpu: number; main?: number } {
    const call = KINDS[kind]!();
    const conns = Array.from({ length: CONNECTIONS }, () => `bench-${kind}-${connSeq++}`);
    const t0 = process.cpuUsage();
    const m0 = mainThreadCpuUs();
    let ts = Date.now();
    for (const id of conns) sensor.pipeline.open(meta(id, call.host));
    for (let i = 0; i < n; i++) {
      const id = conns[i % CONNECTIONS]!;
      ts += 1;
      sensor.pipeline.data(id, "c2s", call.c2s, ts);
      for (const piece of call.s2c) sensor.pipeline.data(id, "s2c", piece, (ts += 0.01));
      if ((i + 1) % FLUSH_EVERY === 0) sensor.storeOutput.flush();
    }
    for (const id of conns) sensor.pipeline.close(id, ts + 1);
    sensor.storeOutput.flush();
    const t = process.cpuUsage(t0);
    const m1 = mainThreadCpuUs();
    expectedCalls += n;
    return { cpu: (t.user + t.system) / n, main: m0 !== undefined && m1 !== undefined ? (m1 - m0) / n : undefined };
  }

  for (const kind of kinds) run(kind, Math.min(1000, callsPerRound)); // warm-up: JIT, prepared statements, caches
  const results: Results = {};
  for (let r = 0; r < rounds; r++) {
    for (const kind of kinds) {
      const res = run(kind, callsPerRound);
      (results[kind] ??= { cpu: [], main: [] }).cpu.push(res.cpu);
      if (res.main !== undefined) results[kind].main.push(res.main);
    }
  }
  const stats = sensor.pipeline.stats();
  await sensor.close();
  const db = new Database(dbPath, { readonly: true });
  const responses = (db.query("SELECT count(*) AS n FROM events WHERE event_type = 'ai.response'").get() as { n: number }).n;
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  if (responses !== expectedCalls || stats.internalErrors > 0) {
    throw new Error(
      `${coreModule}: stored ${responses} ai.response rows of ${expectedCalls} calls (${stats.internalErrors} internal errors): the figures do not measure the sensor`,
    );
  }
  return results;
}

const THIS_CORE = path.join(import.meta.dir, "../src/sensor/core.ts");
const header = `sensor bench: ${callsPerRound} calls per kind per round, ${CONNECTIONS} keep-alive connections, redaction safe`;
const f = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(" / ");

if (values.child) {
  console.log(JSON.stringify(await measure(values.child, 1)));
} else if (!values.baseline?.length) {
  const results = await measure(THIS_CORE, rounds);
  console.log(header);
  for (const kind of kinds) {
    const { cpu, main } = results[kind]!;
    console.log(`${kind.padEnd(10)} µs CPU per call: ${f(cpu)}   main thread: ${main.length ? f(main) : "n/a"}`);
  }
  console.log(`every call stored (${rounds} rounds after a warm-up)`);
} else {
  // Side by side: each round runs every tree once, in a fresh process, the order alternating between rounds.
  const trees: Array<[string, string]> = [
    ...values.baseline.map((d): [string, string] => [d, path.resolve(d, "src/sensor/core.ts")]),
    ["this tree", THIS_CORE],
  ];
  const all = new Map<string, Results>(trees.map(([name]) => [name, {}]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, core] of r % 2 === 0 ? trees : [...trees].reverse()) {
      const argv = [process.execPath, import.meta.path, "--child", core, "--calls", String(callsPerRound), ...kinds.flatMap((k) => ["--kind", k])];
      const child = Bun.spawnSync(argv, { stderr: "inherit" });
      if (child.exitCode !== 0) throw new Error(`benchmark child for ${name} exited ${child.exitCode}`);
      const res = JSON.parse(child.stdout.toString()) as Results;
      for (const kind of kinds) {
        const into = (all.get(name)![kind] ??= { cpu: [], main: [] });
        into.cpu.push(...res[kind]!.cpu);
        into.main.push(...res[kind]!.main);
      }
    }
  }
  console.log(`${header}, ${rounds} rounds, trees alternating (µs CPU per call, each round's figure; every call stored)`);
  const range = (xs: number[]) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
  for (const kind of kinds) {
    for (const [name] of trees) {
      const { cpu } = all.get(name)![kind]!;
      console.log(`${kind.padEnd(10)} ${name.padEnd(30)} ${range(cpu).padEnd(10)} (${f(cpu)})`);
    }
  }
}
