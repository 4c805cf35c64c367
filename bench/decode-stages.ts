// The decoding side of a recorded call taken apart (benchmark, not a test): bench/sensor.ts's recorded calls through
// three stages of each tree's decoder, each stage alone in a loop, so a change to one of them shows where the whole
// pipeline's figure (bench/sensor.ts --no-store) is lost in the noise:
//   reads  the connection decoder over one call, as the tap feeds it (the request, then the response one network
//          read per piece): HTTP/1 heads, framing, body pieces and their chunks;
//   sse    the response's SSE events from its timed chunks (timedSseEvents: join, decode, parse the lines);
//   json   JSON.parse of each event's data (what every stream parser does per event).
// Per tree, kind and stage: µs of CPU per call (the trees alternate in one process, rounds of `--calls` each after
// as many warm ones; the median of the rounds and their range) and the bytes allocated per call (a child process
// per tree, kind and stage with BUN_JSC_logGC=1, as bench/sensor-alloc.ts).
//
//   bun bench/decode-stages.ts [--kind stream|anthropic|chat]... [--stage reads|sse|json]... [--calls N] [--rounds R] [--baseline DIR]...
import path from "node:path";
import { parseArgs } from "node:util";
import { KINDS } from "./lib/sensor-calls.ts";

const { values } = parseArgs({
  options: {
    kind: { type: "string", multiple: true },
    stage: { type: "string", multiple: true },
    calls: { type: "string" },
    rounds: { type: "string" },
    baseline: { type: "string", multiple: true },
    child: { type: "string" },
  },
});
const calls = Number(values.calls ?? 20_000);
const rounds = Number(values.rounds ?? 8);
const kinds = values.kind?.length ? values.kind : ["stream", "anthropic"];
const STAGES = ["reads", "sse", "json"];
const stages = values.stage?.length ? values.stage : STAGES;
const MARK = "decode-stages: measuring";

type Run = () => number;

/** One tree's stages over one kind of call: each a function that runs the stage once for one call. */
async function stagesOf(dir: string, kind: string): Promise<Record<string, Run>> {
  const { createConnectionDecoder } = (await import(path.resolve(dir, "src/decode/connection-decoder.ts"))) as typeof import("../src/decode/connection-decoder.ts");
  const { timedSseEvents } = (await import(path.resolve(dir, "src/decode/providers/common.ts"))) as typeof import("../src/decode/providers/common.ts");
  const call = KINDS[kind]!();
  const feed = (): import("../src/decode/types.ts").HttpResponseRecord | undefined => {
    const decoder = createConnectionDecoder("stages", "http/1.1");
    let ts = 1000;
    let response;
    for (const out of decoder.push("c2s", call.c2s, ts)) if (out.kind === "exchange") response = out.exchange.response;
    for (const piece of call.s2c) for (const out of decoder.push("s2c", piece, (ts += 0.01))) if (out.kind === "exchange") response = out.exchange.response;
    return response;
  };
  const res = feed();
  if (!res) throw new Error(`${dir}: the ${kind} call gave no exchange`);
  const datas = timedSseEvents(res.chunks, res.endTs).events.map((e) => e.data);
  return {
    reads: () => (feed() ? 1 : 0),
    sse: () => timedSseEvents(res.chunks, res.endTs).events.length,
    json: () => {
      let n = 0;
      for (const d of datas) {
        try {
          if (JSON.parse(d) !== null) n++;
        } catch {
          // "[DONE]" and the like: skipped, as the parsers count them
        }
      }
      return n;
    },
  };
}

if (values.child) {
  // Child: one tree, kind and stage; the parent reads the GC log after MARK.
  const run = (await stagesOf(values.child, kinds[0]!))[stages[0]!]!;
  let sink = 0;
  for (let i = 0; i < calls; i++) sink += run();
  console.error(MARK);
  for (let i = 0; i < calls; i++) sink += run();
  console.error(`decode-stages: done ${sink}`);
  process.exit(0);
}

/** Bytes allocated per call by one tree's stage, from a child's GC log (0 when no collection ran). */
async function bytesPerCall(dir: string, kind: string, stage: string): Promise<number> {
  const proc = Bun.spawn([process.execPath, import.meta.path, "--child", dir, "--kind", kind, "--stage", stage, "--calls", String(calls)], {
    env: { ...process.env, BUN_JSC_logGC: "1" },
    stdout: "ignore",
    stderr: "pipe",
  });
  const log = await new Response(proc.stderr).text();
  if ((await proc.exited) !== 0) throw new Error(`${dir} ${kind} ${stage}: child failed\n${log.slice(-2000)}`);
  const after = log.slice(log.indexOf(MARK));
  let bytes = 0;
  for (const m of after.matchAll(/bytes allocated this cycle: (\d+)/g)) bytes += Number(m[1]);
  return bytes / calls;
}

const trees = [...(values.baseline ?? []).map((d) => path.resolve(d)), path.resolve(import.meta.dir, "..")];
const name = (dir: string) => (dir === trees[trees.length - 1] ? "this tree" : dir);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`decode stages: ${rounds} rounds of ${calls} calls per tree after as many warm ones, trees alternating; bytes from a child per tree (BUN_JSC_logGC=1)`);
for (const kind of kinds) {
  const runs = await Promise.all(trees.map((dir) => stagesOf(dir, kind)));
  for (const stage of stages) {
    const us: number[][] = trees.map(() => []);
    let sink = 0;
    // Warm-up in slices alternating between the trees, as the rounds (one tree warmed whole before the other
    // biased an A/A run 0.86-0.89 towards the tree warmed last).
    for (let w = 0; w < 8; w++) for (let t = 0; t < trees.length; t++) for (let i = 0; i < calls / 8; i++) sink += runs[t]![stage]!();
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? [...trees.keys()].reverse() : [...trees.keys()];
      for (const t of order) {
        const run = runs[t]![stage]!;
        const t0 = process.cpuUsage();
        for (let i = 0; i < calls; i++) sink += run();
        const d = process.cpuUsage(t0);
        us[t]!.push((d.user + d.system) / calls);
      }
    }
    if (sink < 0) console.log(sink);
    for (let t = 0; t < trees.length; t++) {
      const bytes = await bytesPerCall(trees[t]!, kind, stage);
      const own = us[t]!;
      const ratio = t === trees.length - 1 ? "" : `   this tree / it: µs ${(median(us[trees.length - 1]!) / median(own)).toFixed(2)}`;
      console.log(
        `${kind.padEnd(10)} ${stage.padEnd(6)} ${name(trees[t]!).padEnd(28)} ${median(own).toFixed(1).padStart(6)} µs (${Math.min(...own).toFixed(1)}-${Math.max(...own).toFixed(1)})  ${(bytes / 1024).toFixed(1).padStart(6)} KB${ratio}`,
      );
    }
  }
}
