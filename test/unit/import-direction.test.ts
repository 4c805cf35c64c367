// Imports go one way (README, Development): each module of src/ belongs to one layer, and may import its
// own module, any module of an earlier layer, and the shared leaves. Two modules of the same layer (web and
// tui, store and sinks) do not import each other: what both need goes down a layer (src/view, src/events).
// Every import of every file is read: static, type-only, re-exports and dynamic import("...").
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";

const SRC = path.resolve(import.meta.dir, "../../src");

/** Importable from anywhere; they import only each other. */
const LEAVES = ["tap", "wire", "config", "spec", "util", "version.ts", "events/schema.ts", "events/read.ts"];

/** Left to right: a module imports only modules of earlier layers (and its own). */
const LAYERS: string[][] = [
  ["ca", "capture/process"], // OS facts: certificates, which process owns a socket
  ["capture/ebpf"], // uprobes on TLS libraries: a capture source that never goes through mitm
  ["mitm"], // peek, decide, relay + tap
  ["capture/proxy"], // the CONNECT front end: accepts, then hands each tunnel to mitm
  ["capture/windivert"], // diverts packets into the proxy's transparent entry
  ["ipc"],
  ["decode"],
  ["events"],
  ["store", "sinks"],
  ["sensor"], // composes decode → events → store / sinks
  ["control", "analyze"], // running roles' status and stop requests; reports over the store
  ["view"], // what web and tui both show: formats, process tree, live feed contract
  ["web", "tui", "tray"], // tray: the Windows notification icon, beside the dashboard and the terminal view
  ["commands"],
  ["cli.ts"],
];

/** The leaf or module a path under src/ belongs to: the longest listed prefix. */
function moduleOf(rel: string): string | undefined {
  let best: string | undefined;
  for (const m of [...LEAVES, ...LAYERS.flat()]) {
    if ((rel === m || rel.startsWith(`${m}/`)) && (best === undefined || m.length > best.length)) best = m;
  }
  return best;
}

function layerOf(m: string): number {
  return LAYERS.findIndex((layer) => layer.includes(m));
}

/** Why importing `to` from `from` breaks the direction, or undefined when it is allowed. */
export function violation(from: string, to: string): string | undefined {
  const a = moduleOf(from);
  const b = moduleOf(to);
  if (a === undefined) return `${from} is in no layer: add its module to LAYERS or LEAVES`;
  if (b === undefined) return `${to} is in no layer: add its module to LAYERS or LEAVES`;
  if (a === b || LEAVES.includes(b)) return undefined;
  if (LEAVES.includes(a)) return `leaf ${a} imports ${b}: a leaf imports only leaves`;
  const la = layerOf(a);
  const lb = layerOf(b);
  if (lb < la) return undefined;
  if (lb === la) return `${a} imports ${b}, a sibling in the same layer: move what both need to an earlier layer`;
  return `${a} imports ${b}, which comes after it (${LAYERS.slice(la, lb + 1).map((l) => l.join("|")).join(" → ")})`;
}

/** Every module specifier a TypeScript file imports: import/export … from, side-effect imports, import(). */
export function importsOf(source: string): string[] {
  const specs: string[] = [];
  const patterns = [
    /(?:^|[\n;])\s*(?:import|export)\s[^"'`;]*?\sfrom\s*["']([^"']+)["']/g,
    /(?:^|[\n;])\s*import\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) specs.push(m[1]!);
  return specs;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.tsx?$/.test(e.name) ? [p] : [];
  });
}

describe("import direction", () => {
  test("the reader finds every form of import", () => {
    const src = [
      'import a from "./a.ts";',
      'import type { B } from "../b.ts";',
      "import {\n  c,\n  type C,\n} from '../../c.ts';",
      'export { d } from "./d.ts";',
      'export * from "./e.ts";',
      'import "./f.ts";',
      'const g = await import("./g.ts");',
      '// a comment with "from" in it',
      'const s = "import x from y";',
    ].join("\n");
    expect(importsOf(src)).toEqual(["./a.ts", "../b.ts", "../../c.ts", "./d.ts", "./e.ts", "./f.ts", "./g.ts"]);
  });

  test("the rule rejects what the README forbids", () => {
    expect(violation("tui/screen.ts", "web/format.ts")).toMatch(/sibling/);
    expect(violation("web/ca-control.ts", "commands/status.ts")).toMatch(/comes after/);
    expect(violation("sinks/queue.ts", "sensor/pipeline.ts")).toMatch(/comes after/);
    expect(violation("mitm/relay.ts", "capture/proxy/server.ts")).toMatch(/comes after/);
    expect(violation("capture/ebpf/source.ts", "mitm/conn-tap.ts")).toMatch(/comes after/);
    expect(violation("tap/types.ts", "decode/types.ts")).toMatch(/leaf/);
    expect(violation("newthing/x.ts", "tap/types.ts")).toMatch(/no layer/);
    expect(violation("web/app.ts", "view/format.ts")).toBeUndefined();
    expect(violation("decode/http1.ts", "tap/types.ts")).toBeUndefined();
    expect(violation("capture/proxy/server.ts", "mitm/relay.ts")).toBeUndefined();
    expect(violation("cli.ts", "commands/up.ts")).toBeUndefined();
  });

  test("every import in src/ goes the documented way", () => {
    const problems: string[] = [];
    let imports = 0;
    for (const file of sourceFiles(SRC)) {
      const from = path.relative(SRC, file).split(path.sep).join("/");
      for (const spec of importsOf(fs.readFileSync(file, "utf8"))) {
        if (!spec.startsWith(".")) continue; // packages and node: builtins
        imports++;
        const target = path.relative(SRC, path.resolve(path.dirname(file), spec)).split(path.sep).join("/");
        if (target.startsWith("..")) {
          // Outside src/: bindings (ffi/) and embedded data (public/, spec/bundle.json, package.json), never tests.
          if (/^\.\.\/(test|bench|scripts)\//.test(target)) problems.push(`${from} → ${spec}: src/ imports ${target}`);
          continue;
        }
        const why = violation(from, target);
        if (why) problems.push(`${from} → ${spec}: ${why}`);
      }
    }
    expect(imports).toBeGreaterThan(500);
    expect(problems).toEqual([]);
  });
});
