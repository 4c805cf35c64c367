// Bytes the sensor's pipeline allocates per call (benchmark, not a test): bench/sensor.ts's recorded calls
// (src/sensor/pipeline.ts alone: decode, events, safe redaction; no store) through each tree's pipeline, each
// tree and kind in a child process of its own run with BUN_JSC_logGC=1, where JavaScriptCore logs every
// collection with the bytes allocated since the one before. Summed over the measured calls (after as many warm
// ones) and divided by them. Unlike CPU time it hardly varies with the machine's load (a few %), and each eden
// collection (about one per 8 MB) pauses the sensor's thread 1-3 ms: fewer bytes, fewer pauses.
//
//   bun bench/sensor-alloc.ts [--calls N] [--kind chat|stream|anthropic]... [--baseline DIR]...
import path from "node:path";
import { parseArgs } from "node:util";
import { KINDS, meta } from "./lib/sensor-calls.ts";

const { values } = parseArgs({
  options: {
    calls: { type: "string" },
    kind: { type: "string", multiple: true },
    baseline: { type: "string", multiple: true },
    child: { type: "string" },
  },
});
const calls = Number(values.calls ?? 20_000);
const kinds = values.kind?.length ? values.kind : Object.keys(KINDS);
const MARK = "sensor-alloc: measuring";

if (values.child) {
  // Child: one tree's pipeline, one kind; the parent reads the GC log after MARK.
  const { SensorPipeline } = (await import(path.resolve(values.child, "src/sensor/pipeline.ts"))) as typeof import("../src/sensor/pipeline.ts");
  const call = KINDS[kinds[0]!]!();
  let responses = 0;
  const output = { write: (events: Array<{ event_type: string }>) => void (responses += events.filter((e) => e.event_type === "ai.response").length) };
  const pipeline = new SensorPipeline({ redaction: "safe", collectorVersion: "bench", outputs: [output as never], log: () => {}, processFilter: [] });
  const conns = Array.from({ length: 10 }, (_, i) => `alloc-${i}`);
  for (const id of conns) pipeline.open(meta(id, call.host));
  let ts = Date.now();
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      const id = conns[i % conns.length]!;
      pipeline.data(id, "c2s", call.c2s, (ts += 1));
      for (const piece of call.s2c) pipeline.data(id, "s2c", piece, (ts += 0.01));
    }
  };
  run(calls);
  console.error(MARK);
  run(calls);
  if (responses !== 2 * calls || pipeline.stats().internalErrors > 0) throw new Error(`sensor-alloc: ${responses} responses of ${2 * calls} calls`);
  process.exit(0);
}

/** Bytes allocated per measured call and collections, from a child's GC log. */
async function measure(tree: string, kind: string): Promise<{ bytes: number; collections: number }> {
  const proc = Bun.spawn([process.execPath, import.meta.path, "--child", tree, "--kind", kind, "--calls", String(calls)], {
    env: { ...process.env, BUN_JSC_logGC: "1" },
    stdout: "ignore",
    stderr: "pipe",
  });
  const log = await new Response(proc.stderr).text();
  if ((await proc.exited) !== 0) throw new Error(`sensor-alloc: ${tree} ${kind} failed:\n${log.slice(-2000)}`);
  const after = log.slice(log.indexOf(MARK));
  let bytes = 0;
  let collections = 0;
  for (const m of after.matchAll(/bytes allocated this cycle: (\d+)/g)) {
    bytes += Number(m[1]);
    collections++;
  }
  return { bytes: bytes / calls, collections };
}

const trees = [...(values.baseline ?? []).map((d) => path.resolve(d)), path.resolve(import.meta.dir, "..")];
console.log(`sensor-alloc: ${calls} calls measured per tree and kind after ${calls} warm ones, pipeline alone (no store), redaction safe`);
for (const kind of kinds) {
  const results: Array<{ bytes: number; collections: number }> = [];
  for (const tree of trees) results.push(await measure(tree, kind));
  const self = results[results.length - 1]!;
  trees.forEach((tree, i) => {
    const r = results[i]!;
    const name = i === trees.length - 1 ? "this tree" : tree;
    const ratio = i === trees.length - 1 ? "" : `   this tree / it ${(self.bytes / r.bytes).toFixed(2)}`;
    console.log(`${kind.padEnd(10)} ${name.padEnd(28)} ${(r.bytes / 1024).toFixed(1).padStart(6)} KB allocated per call (${r.collections} collections)${ratio}`);
  });
}
