// Whether two trees' sensor pipelines emit the same events for the same bytes (a check, not a timing): a change
// to the decoding side that must keep events byte-identical is run here against the tree before it. Each case:
// a recorded request and response (bench/lib/sensor-calls.ts and test/unit/decode-fixtures.ts), mutated at the
// byte level and split at random points (test/fault/fuzz-lib.ts), two calls on one connection, under a host,
// a process (none, plain, or with credentials in its command line), a capture method and a redaction mode
// drawn at random; both trees' events and counters as JSON must be equal. Fails at the first difference.
//
//   bun bench/same-events.ts --baseline DIR [--runs N] [--seed S]
import path from "node:path";
import { parseArgs } from "node:util";
import fc from "fast-check";
import type { ConnMeta } from "../src/tap/types.ts";
import { concat, cutsArb, mutatedFrom, splitAt, utf8 } from "../test/fault/fuzz-lib.ts";
import { chatCompletionJson, chatRequestBody, chunk, jsonResponse, lastChunk, openaiRequest, sseEvents, sseResponseHead } from "../test/unit/decode-fixtures.ts";
import { KINDS, meta } from "./lib/sensor-calls.ts";

const { values } = parseArgs({ options: { baseline: { type: "string" }, runs: { type: "string" }, seed: { type: "string" } } });
if (!values.baseline) {
  console.error("usage: bun bench/same-events.ts --baseline DIR [--runs N] [--seed S]");
  process.exit(2);
}
type Pipeline = typeof import("../src/sensor/pipeline.ts").SensorPipeline;
const trees: Array<{ name: string; Pipeline: Pipeline }> = [];
for (const dir of [path.resolve(values.baseline), path.resolve(import.meta.dir, "..")]) {
  const { SensorPipeline } = (await import(path.join(dir, "src/sensor/pipeline.ts"))) as typeof import("../src/sensor/pipeline.ts");
  trees.push({ name: dir, Pipeline: SensorPipeline });
}

const calls = Object.values(KINDS).map((kind) => kind());
const requests = [...calls.map((c) => c.c2s), utf8(openaiRequest()), utf8(openaiRequest(chatRequestBody, "/v1/chat/completions", "Connection: close\r\n"))];
const responses = [
  ...calls.map((c) => concat(...c.s2c)),
  utf8(jsonResponse(chatCompletionJson)),
  concat(utf8(sseResponseHead), ...sseEvents.map((e) => chunk(e)), utf8(lastChunk)),
];
const processes: Array<ConnMeta["process"]> = [
  undefined,
  { pid: 4242, ppid: 1, exe: "/usr/bin/python3", name: "python3", cmdline: "python3 agent.py", user: "dev", uid: 1000 },
  { pid: 7, exe: "/usr/bin/curl", name: "curl", cmdline: "curl -H 'Authorization: Bearer sk-proj-Abc123def456GHI789jkl012MNO345pqr678STU901vwx' https://api.openai.com/v1/models" },
  { pid: 8, name: "node", cmdline: "node app.js --api-key sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH --prompt 'the secret token plan'", user: "root" },
];

/** One case through one tree: every event and the counters, as JSON. */
function run(Pipeline: Pipeline, n: number, c: { host: string; mode: "safe" | "full" | "minimal"; process: ConnMeta["process"]; method: ConnMeta["captureMethod"]; c2s: Uint8Array[]; s2c: Uint8Array[] }): string {
  const events: unknown[] = [];
  const pipeline = new Pipeline({ redaction: c.mode, collectorVersion: "same-events", outputs: [{ write: (e) => void events.push(...e) }], log: () => {}, maxBodyBytes: 64 * 1024 });
  const m: ConnMeta = { ...meta(`same-${n}`, c.host), startedAt: 1_766_412_616_000, captureMethod: c.method };
  if (c.process) m.process = c.process;
  else delete m.process;
  pipeline.open(m);
  let ts = m.startedAt;
  for (let call = 0; call < 2; call++) {
    for (const b of c.c2s) pipeline.data(m.connId, "c2s", b, (ts += 1.5));
    for (const b of c.s2c) pipeline.data(m.connId, "s2c", b, (ts += 0.25));
  }
  pipeline.close(m.connId, ts + 1);
  return JSON.stringify(events) + JSON.stringify(pipeline.stats());
}

let n = 0;
let bytes = 0;
const caseArb = fc.record({
  host: fc.constantFrom("api.openai.com", "api.anthropic.com", "example.com"),
  mode: fc.constantFrom("safe" as const, "full" as const, "minimal" as const),
  process: fc.constantFrom(...processes),
  method: fc.constantFrom<ConnMeta["captureMethod"]>("mitm_proxy", "ebpf_uprobe", "windivert"),
  request: mutatedFrom(requests, 4),
  response: mutatedFrom(responses, 4),
  requestCuts: cutsArb,
  responseCuts: cutsArb,
});
fc.assert(
  fc.property(caseArb, (c) => {
    n++;
    const input = { ...c, c2s: splitAt(c.request, c.requestCuts), s2c: splitAt(c.response, c.responseCuts) };
    const [before, after] = trees.map((t) => run(t.Pipeline, n, input)) as [string, string];
    bytes += before.length;
    if (before === after) return true;
    let at = 0;
    while (before[at] === after[at]) at++;
    console.error(`case ${n}: first difference at character ${at}\n${trees[0]!.name}: …${before.slice(at - 200, at + 200)}\n${trees[1]!.name}: …${after.slice(at - 200, at + 200)}`);
    return false;
  }),
  { numRuns: Number(values.runs ?? 2000), ...(values.seed !== undefined && { seed: Number(values.seed) }) },
);
console.log(`same events over ${n} cases (${(bytes / 1e6).toFixed(1)} MB of event JSON per tree)`);
