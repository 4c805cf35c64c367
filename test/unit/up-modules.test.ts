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

/** Runs `oisp up` from source until it listens; `during` runs then and gets the main thread's module list (asked by SIGUSR2). */
async function withUp<T>(home: string, args: string[], during: (modules: () => Promise<string[]>) => Promise<T>): Promise<T> {
  const list = path.join(home, "modules.txt");
  const probe = path.join(home, "probe.ts");
  fs.writeFileSync(
    probe,
    `if (Bun.isMainThread) process.on("SIGUSR2", () => require("node:fs").writeFileSync(${JSON.stringify(list)}, Object.keys(require.cache).join("\\n")));\n`,
  );
  const port = await freePort();
  const cli = path.join(import.meta.dir, "../../src/cli.ts");
  const proc = Bun.spawn([process.execPath, "--preload", probe, cli, "up", "--listen", `127.0.0.1:${port}`, "--db", path.join(home, "events.db"), ...args], {
    env: { ...process.env, OISP_HOME: home },
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  for (const stream of [proc.stdout, proc.stderr] as ReadableStream<Uint8Array>[]) {
    void (async () => {
      for await (const chunk of stream) out += new TextDecoder().decode(chunk);
    })();
  }
  const modules = async () => {
    fs.rmSync(list, { force: true });
    proc.kill("SIGUSR2");
    await waitFor("the module list", () => (fs.existsSync(list) ? true : undefined));
    return fs.readFileSync(list, "utf8").split("\n");
  };
  try {
    await waitFor("oisp up listening", () => (out.includes("Press Ctrl+C") ? true : proc.exitCode !== null ? Promise.reject(new Error(out)) : undefined), 25_000);
    return await during(modules);
  } finally {
    proc.kill("SIGINT");
    await proc.exited;
  }
}

const upModules = (home: string, args: string[] = []) => withUp(home, args, (modules) => modules());

test("oisp up's relay thread loads no zod, with or without a valid settings.json", async () => {
  for (const settings of [undefined, { ProxyPort: 9443, VerboseLogging: false, ProcessFilter: ["python3"], Redaction: "safe", AiEndpointFilterEnabled: true }]) {
    const home = tempHome("oisp-up-modules-");
    homes.push(home);
    if (settings) fs.writeFileSync(settingsPath(home), JSON.stringify(settings));
    const modules = await upModules(home);
    expect(modules.some((m) => m.endsWith(path.join("src", "commands", "up.ts")))).toBe(true);
    expect(modules.filter(isZod)).toEqual([]);
  }
}, 60_000);

test("with a valid --config file (every table) it loads no zod either; a broken one is named by zod's messages", async () => {
  const home = tempHome("oisp-up-modules-");
  homes.push(home);
  const config = path.join(home, "oisp.toml");
  fs.writeFileSync(
    config,
    `capture = "proxy"\nredaction = "safe"\nprocess_filter = ["python3"]\nverbose = false\n[sensor]\noutput = "events.jsonl"\n` +
      `[proxy]\ntls_mitm = true\nall_traffic = false\n[ebpf]\n[web]\nenabled = false\n` +
      `[export]\nspool_mb = 8\nbatch_size = 10\n[export.jsonl]\npath = "export.jsonl"\nmax_mb = 5\nkeep = 2\n`,
  );
  const modules = await upModules(home, ["--config", config]);
  expect(modules.some((m) => m.endsWith(path.join("src", "commands", "config-file.ts")))).toBe(true);
  expect(modules.filter(isZod)).toEqual([]);
  fs.writeFileSync(config, `[proxy]\nlisten = 8080\n`);
  const cli = path.join(import.meta.dir, "../../src/cli.ts");
  const r = Bun.spawnSync([process.execPath, cli, "up", "--config", config], { env: { ...process.env, OISP_HOME: home }, stderr: "pipe" });
  expect(r.exitCode).toBe(2);
  expect(r.stderr.toString()).toBe(`oisp: --config: ${config}: ✖ Invalid input: expected string, received number;   → at proxy.listen\n`);
}, 60_000);

test("with the dashboard (--web) it loads no zod until the settings form is first served", async () => {
  const home = tempHome("oisp-up-modules-");
  homes.push(home);
  const webPort = await freePort();
  await withUp(home, ["--web", "--web-port", String(webPort)], async (modules) => {
    expect((await modules()).filter(isZod)).toEqual([]);
    const page = await fetch(`http://127.0.0.1:${webPort}/control`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("ProxyPort");
    expect((await modules()).filter(isZod).length).toBeGreaterThan(0);
  });
}, 60_000);

const isZod = (m: string) => m.includes(`${path.sep}node_modules${path.sep}zod${path.sep}`);
