// The compiled Linux binary is the product users download: build it with build.ts, check that it
// carries everything it needs (no source tree, no node_modules beside it), then run the very same
// end-to-end suite against it (OISP_BIN makes test/support/oisp-process.ts start the binary).
import { beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LOOKUP_THREAD_NAME } from "../../src/capture/process/threaded.ts";
import { freePort, tempHome, waitFor, waitForPort } from "../support/oisp-process.ts";

const repoRoot = path.resolve(import.meta.dir, "../..");
let binary = "";

describe("compiled linux binary", () => {
  beforeAll(async () => {
    const build = Bun.spawn([process.execPath, "build.ts", "--target", "linux"], { cwd: repoRoot, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(build.stdout).text(), new Response(build.stderr).text(), build.exited]);
    if (code !== 0) throw new Error(`build.ts failed (${code}):\n${out}\n${err}`);
    // Copied into an empty directory so nothing from the repo can be picked up at run time.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bin-"));
    binary = path.join(dir, "oisp");
    fs.copyFileSync(path.join(repoRoot, "dist", "oisp"), binary);
    fs.chmodSync(binary, 0o755);
  }, 240_000);

  test("--version names the commit and the spec bundle", async () => {
    const proc = Bun.spawn([binary, "--version"], { cwd: path.dirname(binary), stdout: "pipe", stderr: "pipe" });
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    expect(out).toMatch(/^oisp \d+\.\d+\.\d+ \(commit ([0-9a-f]{7,}|unknown), /);
    expect(out).toMatch(/spec bundle \d+\.\d+\.\d+ of \d{4}-\d{2}-\d{2}/);
  });

  // e2e-up.test.ts checks that events name the client's pid; this checks that the lookup behind it runs
  // in its own Worker inside the binary, not in the in-thread fallback taken when that module is missing.
  test("process attribution runs in its lookup Worker", async () => {
    const home = tempHome();
    const port = await freePort();
    const proc = Bun.spawn([binary, "up", "--listen", `127.0.0.1:${port}`, "--db", path.join(home, "events.db")], {
      cwd: path.dirname(binary),
      env: { ...process.env, OISP_HOME: home },
      stdout: "ignore",
      stderr: "ignore",
    });
    try {
      await waitForPort(port); // a connection: the proxy looks up its owner
      const lookupThreads = () => {
        const task = `/proc/${proc.pid}/task`;
        return fs.readdirSync(task).filter((t) => {
          try {
            return fs.readFileSync(`${task}/${t}/comm`, "utf8").trim() === LOOKUP_THREAD_NAME;
          } catch {
            return false; // thread gone
          }
        }).length;
      };
      await waitFor("the lookup Worker's thread", () => lookupThreads() === 1 || undefined);
      // A module that failed to load would end its thread at once; this one stays (until 30 s idle).
      await Bun.sleep(500);
      expect(lookupThreads()).toBe(1);
    } finally {
      proc.kill("SIGINT");
      await proc.exited;
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  test("passes the end-to-end suite that the source tree passes", async () => {
    const run = Bun.spawn([process.execPath, "test", "test/integration/e2e-up.test.ts"], {
      cwd: repoRoot,
      env: { ...process.env, OISP_BIN: binary },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text(), run.exited]);
    const summary = `${out}\n${err}`;
    // bun test prints " N pass" / " N fail"; the nested run must have run tests and failed none.
    const passed = Number(/^\s*(\d+) pass$/m.exec(summary)?.[1] ?? 0);
    const failed = Number(/^\s*(\d+) fail$/m.exec(summary)?.[1] ?? 0);
    if (code !== 0 || failed > 0 || passed === 0) throw new Error(`e2e against ${binary} failed:\n${summary.slice(-6000)}`);
    expect(passed).toBeGreaterThan(5);
  }, 300_000);
});
