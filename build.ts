// `bun run build`: single-file binaries with everything embedded (spec bundle, migrations, web assets).
//   dist/oisp        linux-x64
//   dist/oisp.exe    windows-x64 (cross-compiled; runtime fetched from the npm registry as @oven/bun-windows-x64)
// Flags: --target linux|windows (default both).
import { $ } from "bun";
import fs from "node:fs";
import path from "node:path";
import pkg from "./package.json" with { type: "json" };

const root = import.meta.dir;
const dist = path.join(root, "dist");
const cacheDir = path.join(root, "node_modules", ".cache", "oisp-bun-runtimes");
const bunVersion = Bun.version;

const targets = {
  linux: { bunTarget: "bun-linux-x64", npmPackage: "@oven/bun-linux-x64", exeInPackage: "bin/bun", out: "oisp" },
  windows: { bunTarget: "bun-windows-x64", npmPackage: "@oven/bun-windows-x64", exeInPackage: "bin/bun.exe", out: "oisp.exe" },
} as const;
type TargetName = keyof typeof targets;

function requestedTargets(argv: string[]): TargetName[] {
  const i = argv.indexOf("--target");
  if (i === -1) return ["linux", "windows"];
  const name = argv[i + 1];
  if (name !== "linux" && name !== "windows") throw new Error(`--target: expected linux or windows, got "${name}"`);
  return [name];
}

/** The Bun runtime a target binary is built on, taken from the npm registry (the only registry reachable here). */
async function runtimeFor(target: TargetName): Promise<string> {
  const t = targets[target];
  const dir = path.join(cacheDir, `${t.npmPackage.replace("/", "+")}@${bunVersion}`);
  const exe = path.join(dir, "package", t.exeInPackage);
  if (fs.existsSync(exe)) return exe;
  fs.mkdirSync(dir, { recursive: true });
  const packed = (await $`npm pack ${t.npmPackage}@${bunVersion} --silent --pack-destination ${dir}`.text()).trim().split("\n").pop()!;
  await $`tar -xzf ${path.join(dir, packed)} -C ${dir}`;
  fs.rmSync(path.join(dir, packed));
  if (!fs.existsSync(exe)) throw new Error(`${t.npmPackage}@${bunVersion} has no ${t.exeInPackage}`);
  return exe;
}

async function gitCommit(): Promise<string> {
  const r = await $`git rev-parse --short=12 HEAD`.cwd(root).quiet().nothrow();
  return r.exitCode === 0 ? r.text().trim() : "unknown";
}

async function build(target: TargetName, commit: string): Promise<string> {
  const t = targets[target];
  const outfile = path.join(dist, t.out);
  const runtime = target === "linux" && process.platform === "linux" ? process.execPath : await runtimeFor(target);
  const entrypoints = [path.join(root, "src/cli.ts"), ...extraEntrypoints()];
  await $`${process.execPath} build --compile --minify-syntax --minify-whitespace --sourcemap=none --target=${t.bunTarget} --compile-executable-path=${runtime} --define OISP_BUILD_COMMIT=${JSON.stringify(commit)} --outfile ${outfile} ${entrypoints}`.cwd(
    root,
  );
  return outfile;
}

/** Workers must be separate entry points of a compiled binary (Bun's rule for `new Worker` in --compile). */
function extraEntrypoints(): string[] {
  const worker = path.join(root, "src/capture/windivert/worker.ts");
  return fs.existsSync(worker) ? [worker] : [];
}

if (import.meta.main) {
  fs.mkdirSync(dist, { recursive: true });
  const commit = await gitCommit();
  for (const target of requestedTargets(process.argv.slice(2))) {
    const out = await build(target, commit);
    const size = (fs.statSync(out).size / 1024 / 1024).toFixed(1);
    console.log(`built ${path.relative(root, out)} (${size} MiB, oisp ${pkg.version}, commit ${commit})`);
  }
}
