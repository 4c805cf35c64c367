// Sensor CPU benchmark (not a test): the real sensor core (pipeline → decoders → event builders → "safe"
// redaction → SQLite store in a temp dir) fed recorded wire bytes the way the relay's tap feeds it
// (pipeline.open(meta), then pipeline.data(connId, dir, bytes, ts)), keep-alive over 10 connections.
// Three kinds of AI call, each measured on its own: an OpenAI chat completion (JSON request and response,
// ~1 KB each, with an Authorization header), an OpenAI streamed completion (SSE, 40 chunks and usage), and an
// Anthropic messages stream ending in a tool_use. Prints µs of CPU per call (process.cpuUsage: user+system,
// this process has one JS thread plus SQLite's own work on it) and the main thread's share (from
// /proc/self/task/<pid>/stat), per round after a warm-up, and of the process's figure what the JIT's compiler
// threads spent (code still tiering up: ~40 % of the figure in the first rounds, ~0 after ~20,000 calls);
// counts the stored rows at the end so a run that stores nothing cannot pass for a fast one.
//
//   bun bench/sensor.ts [--calls N] [--rounds R] [--warmup N] [--kind chat|stream|anthropic]... [--baseline DIR]... [--store-split | --no-store] [--flush N]
// --warmup N: calls per kind before the measured rounds (default 1000). A long-running sensor has compiled its hot
// code long ago; --warmup 20000 measures that steady state, the default includes the JIT's first compiles.
// With --baseline DIR (another checkout, e.g. `git archive <rev> | tar -x -C DIR && ln -s $PWD/node_modules DIR/`;
// repeatable), every tree's sensor core runs in this process on its own database, fed the same recorded calls
// in chunks of 200 that alternate between the trees, and the figures per tree and kind are printed side by side.
// With --store-split, this tree also runs twice more with its store cut short, to show the store's share of a call:
// "rows only" turns each event into its row (JSON and columns, src/store/columns.ts) and stores nothing; "no
// store" drops the events at the store. Their ratios to this tree's figure are what the store costs on top.
// With --no-store, every tree (baselines too) runs its pipeline (src/sensor/pipeline.ts) alone, its events counted,
// not stored: the decoding side (decode, events, redaction) of two trees compared apart from SQLite.
//   profile: bun --cpu-prof --cpu-prof-dir=/tmp/oisp-prof bench/sensor.ts --kind chat
//            (count self samples per function in the .cpuprofile; the -md time weights are unreliable)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Database } from "bun:sqlite";
import { KINDS, meta, type Call } from "./lib/sensor-calls.ts";
import { statCpuSec } from "./lib/procs.ts";

const { values } = parseArgs({
  options: {
    calls: { type: "string" },
    rounds: { type: "string" },
    kind: { type: "string", multiple: true },
    baseline: { type: "string", multiple: true },
    "store-split": { type: "boolean" },
    "no-store": { type: "boolean" },
    flush: { type: "string" },
    warmup: { type: "string" },
  },
});
const callsPerRound = Number(values.calls ?? 3000);
const rounds = Number(values.rounds ?? 3);
const warmupCalls = Number(values.warmup ?? Math.min(1000, callsPerRound));
const CONNECTIONS = 10;
/** Calls between store flushes: the store output commits once per 500 ms tick in the product. */
const FLUSH_EVERY = 200;
/** --flush N: commit every N calls inside those chunks instead (1: a lone call's commit, as at 10 calls/s). */
const flushCalls = Math.max(1, Math.min(FLUSH_EVERY, Number(values.flush ?? FLUSH_EVERY)));

/** CPU time of this process's main thread, µs (utime+stime from /proc; undefined off Linux). */
function mainThreadCpuUs(): number | undefined {
  try {
    return statCpuSec(fs.readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8")) * 1e6;
  } catch {
    return undefined;
  }
}

/** CPU time of each of the JIT's compiler threads (JITWorker), µs by thread id; empty off Linux. */
function jitCpuUs(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of fs.readdirSync("/proc/self/task")) {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      if (stat.includes("(JITWorker)")) out.set(tid, statCpuSec(stat) * 1e6);
    }
  } catch {
    // not Linux, or a thread gone
  }
  return out;
}

/** The JIT threads' CPU since `before`: a thread gone meanwhile counts nothing (JSC ends idle JIT threads). */
function jitCpuSince(before: Map<string, number>): number {
  let us = 0;
  for (const [tid, now] of jitCpuUs()) us += now - (before.get(tid) ?? 0);
  return us;
}
/** Per kind, the JIT threads' µs per call of each recorded round (all trees' calls together). */
const jitPerCall: Record<string, number[]> = {};

const kinds = values.kind?.length ? values.kind : Object.keys(KINDS);

/** One tree's sensor core (this tree's or a baseline's src/sensor/core.ts) with its own database. */
interface Tree {
  name: string;
  sensor: import("../src/sensor/core.ts").RunningSensor;
  dir: string;
  dbPath: string;
  connSeq: number;
  expectedCalls: number;
  /** Per kind, µs CPU per call of each round (process and main thread). */
  results: Record<string, { cpu: number[]; main: number[] }>;
  /** --store-split: the store cut short (nothing is stored, so the closing check is skipped). */
  storeCut?: "rows" | "none";
  /** --no-store: ai.response events the pipeline emitted. */
  responses?: number;
}

async function openTree(name: string, coreModule: string, storeCut?: Tree["storeCut"]): Promise<Tree> {
  if (values["no-store"]) return openPipelineTree(name, path.join(path.dirname(coreModule), "pipeline.ts"));
  const { startSensorCore } = (await import(coreModule)) as typeof import("../src/sensor/core.ts");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-sensor-"));
  const dbPath = path.join(dir, "oisp.db");
  const sensor = startSensorCore({ dataDir: dir, dbPath, redaction: "safe", processFilter: [], verbose: false, log: () => {} });
  if (storeCut) {
    const { toEventRow } = (await import(path.resolve(path.dirname(coreModule), "../store/columns.ts"))) as typeof import("../src/store/columns.ts");
    sensor.store.insertEvents = (batch) => {
      let rows = 0;
      if (storeCut === "rows") for (const e of batch) if (toEventRow(e)) rows++;
      return { inserted: storeCut === "rows" ? rows : batch.length, duplicates: 0, invalid: 0 };
    };
  }
  return { name, sensor, dir, dbPath, connSeq: 0, expectedCalls: 0, results: {}, storeCut };
}

/** A tree's pipeline alone, its output counting what it emits; flush and close do nothing. */
async function openPipelineTree(name: string, pipelineModule: string): Promise<Tree> {
  const { SensorPipeline } = (await import(pipelineModule)) as typeof import("../src/sensor/pipeline.ts");
  const tree: Tree = { name, sensor: undefined!, dir: "", dbPath: "", connSeq: 0, expectedCalls: 0, results: {}, responses: 0 };
  const output = {
    write(events: Array<{ event_type: string }>) {
      for (const e of events) if (e.event_type === "ai.response") tree.responses!++;
    },
  };
  const pipeline = new SensorPipeline({ redaction: "safe", collectorVersion: "bench", outputs: [output as never], log: () => {}, processFilter: [] });
  tree.sensor = { pipeline, storeOutput: { flush() {} }, close: async () => {} } as unknown as Tree["sensor"];
  return tree;
}

/** Opens CONNECTIONS fresh keep-alive connections of one kind on a tree. */
function openConns(tree: Tree, kind: string, host: string): string[] {
  const conns = Array.from({ length: CONNECTIONS }, () => `bench-${kind}-${tree.connSeq++}`);
  for (const id of conns) tree.sensor.pipeline.open(meta(id, host));
  return conns;
}

/** `n` calls round-robin over the connections, then a store flush (the product commits on a timer). */
function chunk(tree: Tree, call: Call, conns: string[], from: number, n: number, ts: number): number {
  for (let i = from; i < from + n; i++) {
    const id = conns[i % CONNECTIONS]!;
    ts += 1;
    tree.sensor.pipeline.data(id, "c2s", call.c2s, ts);
    for (const piece of call.s2c) tree.sensor.pipeline.data(id, "s2c", piece, (ts += 0.01));
    if ((i + 1 - from) % flushCalls === 0) tree.sensor.storeOutput.flush();
  }
  tree.sensor.storeOutput.flush();
  tree.expectedCalls += n;
  return ts;
}

/**
 * One round of `n` calls of a kind on every tree, in chunks of FLUSH_EVERY calls that alternate between the
 * trees (the order flipping each chunk), so a change in the machine's load hits every tree alike.
 */
function round(trees: Tree[], kind: string, n: number, record: boolean): void {
  const call = KINDS[kind]!();
  const state = trees.map((tree) => ({ tree, conns: openConns(tree, kind, call.host), ts: Date.now(), cpu: 0, main: 0 }));
  const jit0 = jitCpuUs();
  for (let from = 0, c = 0; from < n; from += FLUSH_EVERY, c++) {
    const size = Math.min(FLUSH_EVERY, n - from);
    for (const st of c % 2 ? [...state].reverse() : state) {
      const m0 = mainThreadCpuUs();
      const t0 = process.cpuUsage();
      st.ts = chunk(st.tree, call, st.conns, from, size, st.ts);
      const t = process.cpuUsage(t0);
      const m1 = mainThreadCpuUs();
      st.cpu += t.user + t.system;
      st.main += m0 !== undefined && m1 !== undefined ? m1 - m0 : NaN;
    }
  }
  if (record) (jitPerCall[kind] ??= []).push(jitCpuSince(jit0) / (n * trees.length));
  for (const st of state) {
    for (const id of st.conns) st.tree.sensor.pipeline.close(id, st.ts + 1);
    st.tree.sensor.storeOutput.flush();
    if (!record) continue;
    const r = (st.tree.results[kind] ??= { cpu: [], main: [] });
    r.cpu.push(st.cpu / n);
    if (!Number.isNaN(st.main)) r.main.push(st.main / n);
  }
}

/** Closes a tree's sensor; throws unless every call it was fed is stored. */
async function closeTree(tree: Tree): Promise<void> {
  const stats = tree.sensor.pipeline.stats();
  await tree.sensor.close();
  let responses = tree.responses ?? 0;
  if (tree.responses === undefined) {
    const db = new Database(tree.dbPath, { readonly: true });
    responses = (db.query("SELECT count(*) AS n FROM events WHERE event_type = 'ai.response'").get() as { n: number }).n;
    db.close();
    fs.rmSync(tree.dir, { recursive: true, force: true });
  }
  if ((!tree.storeCut && responses !== tree.expectedCalls) || stats.internalErrors > 0) {
    throw new Error(
      `${tree.name}: ${tree.responses === undefined ? "stored" : "emitted"} ${responses} ai.response rows of ${tree.expectedCalls} calls (${stats.internalErrors} internal errors): the figures do not measure the sensor`,
    );
  }
}

const trees: Tree[] = [];
for (const dir of values.baseline ?? []) trees.push(await openTree(dir, path.resolve(dir, "src/sensor/core.ts")));
const thisCore = path.join(import.meta.dir, "../src/sensor/core.ts");
if (values["store-split"]) {
  trees.push(await openTree("this tree, rows only", thisCore, "rows"));
  trees.push(await openTree("this tree, no store", thisCore, "none"));
}
trees.push(await openTree("this tree", thisCore));
for (const kind of kinds) round(trees, kind, warmupCalls, false); // warm-up: JIT, prepared statements, caches
for (let r = 0; r < rounds; r++) for (const kind of kinds) round(trees, kind, callsPerRound, true);
for (const tree of trees) await closeTree(tree);

console.log(
  `sensor bench: ${callsPerRound} calls per kind per round, ${rounds} rounds after ${warmupCalls} warm-up calls, ${CONNECTIONS} keep-alive connections, redaction safe` +
    (values["no-store"] ? ", pipeline only (no store)" : "") +
    (trees.length > 1 ? `; trees alternating every ${FLUSH_EVERY} calls` : "") +
    (flushCalls !== FLUSH_EVERY ? `; a store commit every ${flushCalls} calls` : ""),
);
const f = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(" / ");
const range2 = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
const range = (xs: number[]) => (xs.length ? `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}` : "n/a");
const self = trees[trees.length - 1]!;
for (const kind of kinds) {
  for (const tree of trees) {
    const { cpu, main } = tree.results[kind]!;
    // Same round, same chunks of load: the ratio per round is steadier than either figure.
    const ratios = tree === self ? [] : cpu.map((c, i) => self.results[kind]!.cpu[i]! / c).sort((a, b) => a - b);
    // The main thread's ratio leaves out the JIT's compiler threads, whose work lands in whichever chunk runs.
    const mainRatios = tree === self ? [] : main.map((m, i) => self.results[kind]!.main[i]! / m).sort((a, b) => a - b);
    const median = (xs: number[]) => xs[Math.floor(xs.length / 2)]!.toFixed(2);
    const ratio = ratios.length
      ? `   this tree / it per round: median ${median(ratios)} (${range2(ratios)})` + (mainRatios.length ? `, main thread ${median(mainRatios)} (${range2(mainRatios)})` : "")
      : "";
    console.log(`${kind.padEnd(10)} ${tree.name.padEnd(24)} µs CPU per call ${range(cpu).padEnd(9)} (${f(cpu)})   main thread ${range(main)}${ratio}`);
  }
  // Compiling the hot code is a cost of the first ~20,000 calls of a kind, counted in the process's figure.
  const jit = jitPerCall[kind] ?? [];
  if (jit.some((x) => x > 0)) console.log(`${kind.padEnd(10)} of which the JIT's compiler threads, µs per call, all trees: ${range(jit)} (${f(jit)})`);
}
console.log(
  values["no-store"] ? "every call emitted" : values["store-split"] ? "every call stored (by the trees whose store is not cut short)" : "every call stored",
);
