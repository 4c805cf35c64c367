// What `oisp up`'s relay (main) thread keeps loaded for the life of the process. zod cost ~4.5 MB there
// (issue 17: idle RSS); settings.json, the status snapshots and the config file's schemas now load it only
// to name a mistake.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { settingsPath } from "../../src/config/paths.ts";
import { freePort, tempHome, waitFor } from "../support/oisp-process.ts";

const homes: string[] = [];
afterAll(() => homes.forEach((h) => fs.rmSync(h, { recursive: true, force: true })));

/** Runs `oisp up` from source until it listens, stops it, and returns the main thread's module list then. */
async function upModules(home: string): Promise<string[]> {
  const list = path.join(home, "modules.txt");
  const probe = path.join(home, "probe.ts");
  fs.writeFileSync(
    probe,
    `if (Bun.isMainThread) process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(list)}, Object.keys(require.cache).join("\\n")));\n`,
  );
  const port = await freePort();
  const cli = path.join(import.meta.dir, "../../src/cli.ts");
  const proc = Bun.spawn([process.execPath, "--preload", probe, cli, "up", "--listen", `127.0.0.1:${port}`, "--db", path.join(home, "events.db")], {
    env: { ...process.env, OISP_HOME: home },
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  void (async () => {
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) out += new TextDecoder().decode(chunk);
  })();
  try {
    await waitFor("oisp up listening", () => (out.includes("Press Ctrl+C") ? true : proc.exitCode !== null ? Promise.reject(new Error(out)) : undefined), 25_000);
  } finally {
    proc.kill("SIGINT");
    await proc.exited;
  }
  return fs.readFileSync(list, "utf8").split("\n");
}

test("oisp up's relay thread loads no zod, with or without a valid settings.json", async () => {
  for (const settings of [undefined, { ProxyPort: 9443, VerboseLogging: false, ProcessFilter: ["python3"], Redaction: "safe", AiEndpointFilterEnabled: true }]) {
    const home = tempHome("oisp-up-modules-");
    homes.push(home);
    if (settings) fs.writeFileSync(settingsPath(home), JSON.stringify(settings));
    const modules = await upModules(home);
    expect(modules.some((m) => m.endsWith(path.join("src", "commands", "up.ts")))).toBe(true);
    expect(modules.filter((m) => m.includes(`${path.sep}node_modules${path.sep}zod${path.sep}`))).toEqual([]);
  }
}, 60_000);
