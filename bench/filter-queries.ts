// The dashboard's filtered reads (not a test): filter lists, filtered timeline pages, the process view's
// activity and a filtered export, on a database of N events written by each tree's own store, timed through
// each tree's own queries in this process, alternating. Made for migration 0005 (no index on type, provider,
// model, process: a filter's hours come from the rollup): the worst case is a rare value whose few events
// sit in a busy hour, which is then read between its first and last event there. The seed: N events over 90
// days from 30 processes and 10 models, plus one busy hour of `--busy` events; a rare process with 3 calls (80
// days back, inside the busy hour, an hour ago), another with 2 calls at both ends of the busy hour, a rare
// model (a snapshot answering 4 calls), 5 process.exec events.
//
//   bun bench/filter-queries.ts [--events 200000] [--busy 50000] [--runs 7] [--baseline DIR]...
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { aiExchange, systemEvent, type FixtureEvent, type FixtureProcess } from "../test/support/event-fixtures.ts";
import { MODELS, PROCS } from "./lib/machine-mix.ts";

const { values } = parseArgs({
  options: { events: { type: "string" }, busy: { type: "string" }, runs: { type: "string" }, baseline: { type: "string", multiple: true } },
});
const total = Number(values.events ?? 200_000);
const busy = Number(values.busy ?? 50_000);
const runs = Number(values.runs ?? 7);
const DAY = 86_400_000;
const HOUR = 3_600_000;
const END = Date.UTC(2026, 10, 30, 12);
const BUSY_HOUR = END - 3 * DAY - (END % HOUR);
const SNAP = "gpt-4o-mini-2024-07-18";

const RARE: FixtureProcess = { pid: 777, ppid: 1, name: "rare-tool", exe: "/usr/bin/rare-tool" };
/** Two calls, at the busy hour's first and last second: that hour is read whole (the worst case). */
const WIDE: FixtureProcess = { pid: 778, ppid: 1, name: "rare-wide", exe: "/usr/bin/rare-wide" };

function* traffic(): Generator<FixtureEvent[]> {
  let batch: FixtureEvent[] = [];
  const call = (i: number, tsMs: number, extra: Partial<Parameters<typeof aiExchange>[0]> = {}) => {
    const [provider, model] = MODELS[i % MODELS.length]!;
    batch.push(
      ...aiExchange({ tsMs, provider, model, process: PROCS[(i * 7) % PROCS.length]!, mode: i % 20 < 15 ? "redacted" : "full", success: i % 23 !== 0, prompt: `Request ${i}`, ...extra }).slice(0, 2),
    );
  };
  const spread = total - busy;
  for (let i = 0; i < spread / 2; i++) {
    call(i, END - 90 * DAY + Math.floor((i / (spread / 2)) * 90 * DAY));
    if (batch.length >= 5000) yield batch.splice(0);
  }
  for (let i = 0; i < busy / 2; i++) {
    call(i, BUSY_HOUR + Math.floor((i / (busy / 2)) * HOUR));
    if (batch.length >= 5000) yield batch.splice(0);
  }
  for (const t of [END - 80 * DAY, BUSY_HOUR + HOUR / 2 + 3, END - HOUR]) call(1, t, { process: RARE });
  for (const t of [BUSY_HOUR + 1000, BUSY_HOUR + HOUR - 1000]) call(1, t, { process: WIDE });
  for (let k = 0; k < 4; k++) call(1, END - (10 + k * 20) * DAY, { model: "gpt-4o-mini", responseModel: SNAP });
  for (let k = 0; k < 5; k++) batch.push(systemEvent("process.exec", END - (2 + k * 17) * DAY, PROCS[3]!, { exe: "/bin/sh", args: ["sh", "-c", "true"] }));
  yield batch;
}

type Queries = ReturnType<typeof import("../src/store/queries.ts").openWebQueries>;
interface Tree {
  name: string;
  dir: string;
  queries: Queries;
  times: Map<string, number[]>;
}

async function openTree(name: string, root: string, tmp: string): Promise<Tree> {
  const { openStore } = (await import(path.resolve(root, "src/store/index.ts"))) as typeof import("../src/store/index.ts");
  const { openWebQueries } = (await import(path.resolve(root, "src/store/queries.ts"))) as typeof import("../src/store/queries.ts");
  const file = path.join(tmp, `${name.replace(/\W+/g, "_")}.db`);
  const store = openStore(file);
  const t0 = performance.now();
  for (const batch of traffic()) store.insertEvents(batch);
  const n = store.count();
  store.close();
  console.log(`  ${name}: ${n.toLocaleString("en-US")} events seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${(fs.statSync(file).size / 1e6).toFixed(0)} MB`);
  return { name, dir: root, queries: openWebQueries(file), times: new Map() };
}

const CASES: Array<[string, (q: Queries) => unknown]> = [
  ["filter lists (4 × distinct)", (q) => ["provider", "model", "process_name", "event_type"].map((c) => q.distinct(c as "provider"))],
  ["timeline, no filter", (q) => q.timeline({}, { limit: 50 })],
  ["timeline, common provider", (q) => q.timeline({ provider: "anthropic" }, { limit: 50 })],
  ["timeline, common process + type, 7 days", (q) => q.timeline({ process: PROCS[3]!.name, type: "ai.response", sinceMs: END - 7 * DAY }, { limit: 50 })],
  ["timeline, rare process (3 calls, 1 in busy hour)", (q) => q.timeline({ process: RARE.name }, { limit: 50 })],
  ["timeline, rare process, page 2 (busy hour on)", (q) => q.timeline({ process: RARE.name }, { limit: 1, before: { tsMs: END - HOUR, eventId: "0" } })],
  ["timeline, rare process, 2 calls spanning the busy hour", (q) => q.timeline({ process: WIDE.name }, { limit: 50 })],
  ["timeline, common model + errors (100 rows)", (q) => q.timeline({ model: MODELS[2]![1], status: "error" }, { limit: 100 })],
  ["timeline, rare model (snapshot, 4 answers)", (q) => q.timeline({ model: SNAP }, { limit: 50 })],
  ["timeline, rare type (5 process.exec)", (q) => q.timeline({ type: "process.exec" }, { limit: 50 })],
  ["timeline, value never seen", (q) => q.timeline({ process: "no-such-app" }, { limit: 50 })],
  ["process view activity (all time)", (q) => q.processActivity(undefined)],
  ["process view activity, one process", (q) => q.processActivity({ process: PROCS[3]!.name })],
  ["export, rare process", (q) => [...q.exportChunks({ process: RARE.name })]],
  ["export, common process, 7 days", (q) => [...q.exportChunks({ process: PROCS[3]!.name, sinceMs: END - 7 * DAY })]],
];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-filter-"));
try {
  console.log(`filter queries: ${total.toLocaleString("en-US")} events (busy hour: ${busy.toLocaleString("en-US")}), ${runs} runs each, trees alternating`);
  const trees: Tree[] = [];
  for (const dir of values.baseline ?? []) trees.push(await openTree(dir, dir, tmp));
  trees.push(await openTree("this tree", path.join(import.meta.dir, ".."), tmp));
  // Same answers from every tree (row ids and counts), then the timings.
  for (const [name, fn] of CASES) {
    const sizes = trees.map((t) => JSON.stringify(fn(t.queries), (_k, v) => (typeof v === "object" && v && "rowid" in v ? v.event_id : v)).length);
    if (new Set(sizes).size !== 1) console.log(`  ! ${name}: answers differ between trees (${sizes.join(" / ")} bytes)`);
  }
  for (let r = 0; r < runs; r++) {
    for (const [name, fn] of CASES) {
      for (const t of trees) {
        const t0 = performance.now();
        fn(t.queries);
        const ms = performance.now() - t0;
        t.times.set(name, [...(t.times.get(name) ?? []), ms]);
      }
    }
  }
  const fmt = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return `${s[Math.floor(s.length / 2)]!.toFixed(2).padStart(8)} ${s.at(-1)!.toFixed(2).padStart(8)}`;
  };
  console.log(`\n  ${"query (ms: median, worst)".padEnd(50)} ${trees.map((t) => path.basename(t.name).slice(0, 17).padStart(17)).join(" ")}`);
  for (const [name] of CASES) console.log(`  ${name.padEnd(50)} ${trees.map((t) => fmt(t.times.get(name)!)).join(" ")}`);
  for (const t of trees) t.queries.close();
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
