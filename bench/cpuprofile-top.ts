// Summarises a `bun --cpu-prof` profile (.cpuprofile, Chrome format) by sample counts: self samples per
// function and per file, and inclusive samples (the function or anything it called). Counts, not the
// profile's time weights (bench/sensor.ts: "the -md time weights are unreliable").
//
//   bun --cpu-prof --cpu-prof-dir=/tmp/prof --cpu-prof-interval=200 bench/sensor.ts --calls 2000 --rounds 2
//   bun bench/cpuprofile-top.ts /tmp/prof/*.cpuprofile [--top 30]
import fs from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string" } } });
const top = Number(values.top ?? 30);
if (positionals.length !== 1) {
  console.error("usage: bun bench/cpuprofile-top.ts FILE.cpuprofile [--top N]");
  process.exit(2);
}
const profile = JSON.parse(fs.readFileSync(positionals[0]!, "utf8")) as { nodes: ProfileNode[]; samples: number[] };
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const cwd = `${process.cwd()}/`;
const fileOf = (n: ProfileNode) => n.callFrame.url.replace("file://", "").replace(cwd, "") || "(native)";
const nameOf = (n: ProfileNode) => `${n.callFrame.functionName || "(anonymous)"}  ${fileOf(n)}:${n.callFrame.lineNumber + 1}`;

const perNode = new Map<number, number>();
for (const s of profile.samples) perNode.set(s, (perNode.get(s) ?? 0) + 1);
const self = new Map<string, number>();
const byFile = new Map<string, number>();
const inclusive = new Map<string, number>();
const add = (m: Map<string, number>, k: string, c: number) => m.set(k, (m.get(k) ?? 0) + c);
for (const [id, count] of perNode) {
  const leaf = nodes.get(id)!;
  add(self, nameOf(leaf), count);
  add(byFile, fileOf(leaf), count);
  const seen = new Set<string>(); // recursion counts once per sample
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const name = nameOf(nodes.get(at)!);
    if (!seen.has(name)) add(inclusive, name, count);
    seen.add(name);
  }
}

const total = profile.samples.length;
const print = (title: string, m: Map<string, number>, n: number) => {
  console.log(`\n${title}`);
  for (const [k, c] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`${((100 * c) / total).toFixed(1).padStart(5)} %  ${String(c).padStart(6)}  ${k.length > 140 ? `${k.slice(0, 137)}...` : k}`);
  }
};
console.log(`${total} samples`);
print("self, per function", self, top);
print("self, per file", byFile, Math.min(top, 20));
print("inclusive", inclusive, top);
