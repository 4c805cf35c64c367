// For tests: run build.ts at most once per `bun test` process for a given set of flags (the Windows
// packages take a minute and a half on two cores), and share the result between test files.
import path from "node:path";

export const repoRoot = path.resolve(import.meta.dir, "..");
const runs = new Map<string, Promise<string>>();

/** Runs `bun build.ts ...args` (once per args), resolving to its stdout; rejects with its output on failure. */
export function buildOnce(args: string[], env: Record<string, string> = {}): Promise<string> {
  const key = JSON.stringify([args, env]);
  let run = runs.get(key);
  if (!run) {
    run = (async () => {
      const p = Bun.spawn([process.execPath, "build.ts", ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      if (code !== 0) throw new Error(`bun build.ts ${args.join(" ")} failed (${code}):\n${out}\n${err}`);
      return out;
    })();
    runs.set(key, run);
  }
  return run;
}

/** oisp.exe, the ZIP, the installer, the winget manifest and SHA256SUMS in dist/. */
export const WINDOWS_PACKAGES = ["--target", "windows", "--package"];
