// Store insert benchmark (not a test): the sensor's hot write, insertEvents, on realistic AI calls (an
// ai.request with auth and its ai.response, ~2 KB of JSON each) into a new file database, in batches as
// the sensor flushes them. Prints µs per event. With --baseline DIR (another checkout of this repository,
// e.g. `git archive <commit> src | tar -x -C DIR && ln -s $PWD/node_modules DIR/`; repeatable), runs that
// tree's store too, alternating fresh processes, so before/after come from the same sitting.
//
//   bun bench/store-insert.ts [--events N] [--batch B] [--runs R] [--baseline DIR]...
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { storeTraffic } from "./lib/store-traffic.ts";

const { values } = parseArgs({
  options: {
    events: { type: "string" },
    batch: { type: "string" },
    runs: { type: "string" },
    baseline: { type: "string", multiple: true },
    child: { type: "string" }, // internal: the store module to measure in this process
  },
});
const total = Number(values.events ?? 20_000);
const batchSize = Number(values.batch ?? 200);
const runs = Number(values.runs ?? 3);

interface Result {
  usPerEvent: number;
  /** Process CPU (user + system), less noisy than wall time on a shared machine. */
  cpuUsPerEvent: number;
  bytesPerEvent: number;
}


async function measure(storeModule: string): Promise<Result> {
  const { openStore } = (await import(storeModule)) as typeof import("../src/store/index.ts");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-store-"));
  try {
    const store = openStore(path.join(dir, "oisp.db"));
    const events = storeTraffic(total);
    const bytes = events.reduce((sum, e) => sum + JSON.stringify(e).length, 0);
    // Warm up the prepared statements and the JIT on a separate slice of ids.
    store.insertEvents(storeTraffic(500).map((e) => ({ ...e, event_id: `warm-${e.event_id}` })));
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < events.length; i += batchSize) store.insertEvents(events.slice(i, i + batchSize));
    const cpu = process.cpuUsage(c0);
    const ms = performance.now() - t0;
    if (store.count() !== events.length + 500) throw new Error(`stored ${store.count()} events, expected ${events.length + 500}`);
    store.close();
    return { usPerEvent: (ms * 1000) / events.length, cpuUsPerEvent: (cpu.user + cpu.system) / events.length, bytesPerEvent: bytes / events.length };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function runChild(storeModule: string): Result {
  const child = Bun.spawnSync([process.execPath, import.meta.path, "--child", storeModule, "--events", String(total), "--batch", String(batchSize)], {
    stderr: "inherit",
  });
  if (child.exitCode !== 0) throw new Error(`benchmark child for ${storeModule} exited ${child.exitCode}`);
  return JSON.parse(child.stdout.toString()) as Result;
}

if (values.child) {
  console.log(JSON.stringify(await measure(values.child)));
} else {
  const variants: Array<[string, string]> = [
    ...(values.baseline ?? []).map((dir): [string, string] => [dir, path.resolve(dir, "src/store/index.ts")]),
    ["this tree", path.join(import.meta.dir, "../src/store/index.ts")],
  ];
  const results = new Map<string, { wall: number[]; cpu: number[] }>(variants.map(([name]) => [name, { wall: [], cpu: [] }]));
  let bytes = 0;
  for (let r = 0; r < runs; r++) {
    for (const [name, module] of variants) {
      const res = runChild(module);
      results.get(name)!.wall.push(res.usPerEvent);
      results.get(name)!.cpu.push(res.cpuUsPerEvent);
      bytes = res.bytesPerEvent;
    }
  }
  console.log(`${total} events (request+response pairs, ~${Math.round(bytes)} B JSON each), batches of ${batchSize}, ${runs} runs each`);
  const summary = (us: number[]) => {
    const sorted = [...us].sort((a, b) => a - b);
    return `median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)}, range ${sorted[0]!.toFixed(1)}–${sorted.at(-1)!.toFixed(1)}`;
  };
  for (const [name, { wall, cpu }] of results) console.log(`${name.padEnd(28)} µs/event: CPU ${summary(cpu)}; wall ${summary(wall)}`);
}
