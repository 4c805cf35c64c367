// A longer fuzzing run than CI's: the same fast-check properties (test/unit/fuzz-*.test.ts) with many more
// runs and a fresh seed each time (printed, so a failure can be replayed with FUZZ_SEED=<seed>).
//
//   bun scripts/fuzz.ts                 # 50x the CI runs, random seed
//   bun scripts/fuzz.ts --runs 20000 --seed 1234 --minutes 30
//
// Bounded: each round is one `bun test` of the fuzz files with a timeout; rounds repeat with new seeds
// until --minutes is used up (default 10). Exit code 1 on the first failing round.
import path from "node:path";

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const runs = Number(opt("runs") ?? 10_000);
const minutes = Number(opt("minutes") ?? 10);
let seed = opt("seed") !== undefined ? Number(opt("seed")) : Math.floor(Math.random() * 2 ** 31);
const root = path.resolve(import.meta.dir, "..");
const files = ["test/unit/fuzz-parsers.test.ts", "test/unit/fuzz-pipeline.test.ts", "test/unit/fuzz-secrets.test.ts"];
const deadline = Date.now() + minutes * 60_000;

for (let round = 1; Date.now() < deadline; round++) {
  console.log(`round ${round}: FUZZ_SEED=${seed} FUZZ_RUNS=${runs}`);
  const left = Math.max(60_000, deadline - Date.now());
  const proc = Bun.spawn([process.execPath, "test", "--timeout", String(left), ...files], {
    cwd: root,
    env: { ...process.env, FUZZ_SEED: String(seed), FUZZ_RUNS: String(runs) },
    stdout: "inherit",
    stderr: "inherit",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), left + 30_000);
  const code = await proc.exited;
  clearTimeout(timer);
  if (code !== 0) {
    console.error(`fuzz: round ${round} failed (exit ${code}); replay with FUZZ_SEED=${seed} FUZZ_RUNS=${runs} bun test ${files.join(" ")}`);
    process.exit(1);
  }
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
}
console.log("fuzz: no failure");
