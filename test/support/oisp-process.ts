// Runs the real `oisp` command (from source, or a compiled binary when OISP_BIN is set) as a child
// process for end-to-end tests, with its own OISP_HOME, and reads back what it stored.
import { Database } from "bun:sqlite";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const repoRoot = path.resolve(import.meta.dir, "../..");

/** The command line that starts oisp: a compiled binary under test, or the source tree through Bun. */
export function oispCommand(): string[] {
  const bin = process.env.OISP_BIN;
  return bin ? [path.resolve(bin)] : [process.execPath, path.join(repoRoot, "src/cli.ts")];
}

export function tempHome(prefix = "oisp-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface OispProcess {
  proc: ReturnType<typeof Bun.spawn>;
  home: string;
  output(): string;
  /** Stops with SIGINT (as Ctrl+C) and waits for a clean exit. */
  stop(): Promise<number>;
}

/** `command`: another oisp to run instead of oispCommand() (a benchmark's baseline checkout). */
export function runOisp(args: string[], opts: { home: string; env?: Record<string, string>; command?: string[] }): OispProcess {
  let out = "";
  const proc = Bun.spawn([...(opts.command ?? oispCommand()), ...args], {
    env: { ...process.env, OISP_HOME: opts.home, ...opts.env },
    stdout: "pipe",
    stderr: "pipe",
  });
  for (const stream of [proc.stdout, proc.stderr] as ReadableStream<Uint8Array>[]) {
    (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) out += decoder.decode(chunk, { stream: true });
    })();
  }
  return {
    proc,
    home: opts.home,
    output: () => out,
    async stop() {
      proc.kill("SIGINT");
      return proc.exited;
    },
  };
}

/** Runs oisp to completion and returns its exit code and output. */
export async function runOispOnce(args: string[], opts: { home: string; env?: Record<string, string> }) {
  const p = runOisp(args, opts);
  const code = await p.proc.exited;
  await Bun.sleep(20);
  return { code, output: p.output() };
}

export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

export async function waitForPort(port: number, proc?: OispProcess): Promise<void> {
  await waitFor(`port ${port}`, async () => {
    if (proc && proc.proc.exitCode !== null) throw new Error(`oisp exited early:\n${proc.output()}`);
    return new Promise<true | undefined>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(undefined));
    });
  });
}

export interface StoredEvent {
  event_id: string;
  event_type: string;
  [key: string]: unknown;
}

/** All events in a database file, oldest first, parsed from the stored JSON. */
export function readEvents(dbPath: string): StoredEvent[] {
  if (!fs.existsSync(dbPath)) return [];
  const db = new Database(dbPath, { readonly: true });
  try {
    const rows = db.query("select json from events order by ts_ms, event_id").all() as { json: string }[];
    return rows.map((r) => JSON.parse(r.json));
  } catch {
    return [];
  } finally {
    db.close();
  }
}
