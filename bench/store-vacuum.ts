// `oisp db vacuum` benchmark (not a test): a database as the store wrote it before new ones got 8 KiB pages
// (4 KiB, --events N realistic events), a copy of it converted by `oisp db vacuum`'s code (time, sizes), then
// both stores fed the same kind of new events in batches of B, alternating (which goes first too) round by
// round: µs CPU per stored event of each, and the per-round ratio converted / 4 KiB.
//
//   bun bench/store-vacuum.ts [--events 40000] [--batch 200,20,2] [--rounds 10] [--per-round 4000] [--aa]
//
// --aa: the "converted" side is an unconverted copy of the same 4 KiB database (what the ratio is by chance).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { openStore } from "../src/store/index.ts";
import { vacuumDatabase } from "../src/store/repack.ts";
import { storeTraffic } from "./lib/store-traffic.ts";
import { createFourKibDatabase } from "../test/support/old-database.ts";

const { values } = parseArgs({
  options: { events: { type: "string" }, batch: { type: "string" }, rounds: { type: "string" }, "per-round": { type: "string" }, aa: { type: "boolean" } },
});
const total = Number(values.events ?? 40_000);
const batches = (values.batch ?? "200,20,2").split(",").map(Number);
const rounds = Number(values.rounds ?? 10);
const perRound = Number(values["per-round"] ?? 4000);


const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-vacuum-"));
const cpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
const fmt = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)]!.toFixed(2)} (${s[0]!.toFixed(2)}–${s.at(-1)!.toFixed(2)})`;
};
try {
  const old = path.join(dir, "old.db");
  createFourKibDatabase(old);
  const seed = openStore(old);
  for (let i = 0; i < total / 2; i += 200) seed.insertEvents(storeTraffic(400, i));
  seed.close();
  const converted = path.join(dir, "converted.db");
  fs.copyFileSync(old, converted);
  const t0 = performance.now();
  const c0 = cpuUs();
  const r = vacuumDatabase(converted);
  console.log(
    `${r.rows.events} events: vacuum ${(performance.now() - t0).toFixed(0)} ms wall, ${((cpuUs() - c0) / 1000).toFixed(0)} ms CPU; ` +
      `${(r.before.bytes / 2 ** 20).toFixed(1)} MiB (${r.before.pageSize} B pages) → ${(r.after.bytes / 2 ** 20).toFixed(1)} MiB (${r.after.pageSize})`,
  );
  for (const batch of batches) {
    // Fresh copies per batch size, so each starts from the same database.
    const files = { "4 KiB": path.join(dir, `a-${batch}.db`), converted: path.join(dir, `b-${batch}.db`) };
    fs.copyFileSync(old, files["4 KiB"]);
    fs.copyFileSync(values.aa ? old : converted, files.converted);
    const stores = Object.entries(files).map(([name, file]) => ({ name, store: openStore(file), us: [] as number[] }));
    let next = total / 2;
    for (let round = 0; round <= rounds; round++) {
      for (const s of round % 2 ? [...stores].reverse() : stores) {
        const events = storeTraffic(perRound, next);
        next += perRound / 2;
        const c = cpuUs();
        for (let i = 0; i < events.length; i += batch) s.store.insertEvents(events.slice(i, i + batch));
        if (round > 0) s.us.push((cpuUs() - c) / events.length); // round 0 warms the JIT and both files' caches
      }
    }
    for (const s of stores) s.store.close();
    const ratios = stores[1]!.us.map((u, i) => u / stores[0]!.us[i]!);
    console.log(
      `batch ${String(batch).padStart(3)}: µs CPU per event, 4 KiB ${fmt(stores[0]!.us)}, converted ${fmt(stores[1]!.us)}; converted / 4 KiB per round ${fmt(ratios)}`,
    );
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
