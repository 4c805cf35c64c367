// The Linux process lookup in its Worker (src/capture/process/threaded.ts + lookup-worker.ts), really
// started: this test process connects to its own server and the lookup must name this process.
import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { Endpoint } from "../../src/tap/types.ts";
import { createThreadedLinuxLookup, LOOKUP_THREAD_NAME, type ThreadedLookup } from "../../src/capture/process/threaded.ts";

const onLinux = process.platform === "linux";

/** A connection from this process to a local server: the client end as the server sees it, and the server's. */
async function ownConnection(): Promise<{ client: Endpoint; proxy: Endpoint; close(): void }> {
  let accepted!: (s: net.Socket) => void;
  const serverSide = new Promise<net.Socket>((r) => (accepted = r));
  const srv = net.createServer((s) => {
    s.on("error", () => {});
    accepted(s);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const sock = net.connect((srv.address() as net.AddressInfo).port, "127.0.0.1");
  sock.on("error", () => {});
  const s = await serverSide;
  return {
    client: { ip: s.remoteAddress!, port: s.remotePort! },
    proxy: { ip: s.localAddress!, port: s.localPort! },
    close() {
      sock.destroy();
      s.destroy();
      srv.close();
    },
  };
}

/** Threads of this process named as the lookup Worker's. */
function lookupThreads(): number {
  return fs.readdirSync("/proc/self/task").filter((t) => {
    try {
      return fs.readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim() === LOOKUP_THREAD_NAME;
    } catch {
      return false; // thread gone
    }
  }).length;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

function track<T extends ThreadedLookup | { close(): void }>(x: T): T {
  cleanup.push(() => x.close());
  return x;
}

/** The lookup's first call runs in this thread while the Worker loads; waits until the Worker answers. */
async function warm(lookup: ThreadedLookup, conn: { client: Endpoint; proxy: Endpoint }): Promise<void> {
  expect(await lookup(conn.client, conn.proxy)).toMatchObject({ pid: process.pid });
  await until("the Worker to load", () => lookup.stats().ready);
}

describe.skipIf(!onLinux)("threaded linux lookup", () => {
  test("a real connection of this process is attributed to this process, by the Worker", async () => {
    const lookup = track(createThreadedLinuxLookup());
    const conn = track(await ownConnection());
    await warm(lookup, conn);
    const info = await lookup(conn.client, conn.proxy);
    expect(info).toMatchObject({ pid: process.pid, exe: process.execPath, uid: process.getuid!() });
    expect(lookup.stats()).toMatchObject({ running: true, starts: 1, coldLookups: 1, workerLookups: 1, failures: 0, fallbackLookups: 0 });
  });

  test("lookups made while the Worker loads are answered in this thread", async () => {
    const lookup = track(createThreadedLinuxLookup());
    const conn = track(await ownConnection());
    const infos = await Promise.all([lookup(conn.client, conn.proxy), lookup(conn.client, conn.proxy)]);
    expect(infos).toMatchObject([{ pid: process.pid }, { pid: process.pid }]);
    expect(lookup.stats()).toMatchObject({ starts: 1, coldLookups: 2, workerLookups: 0 });
  });

  test("the Worker starts only with the first lookup, ends after the idle time and starts again on the next", async () => {
    await Bun.sleep(50); // Workers closed by earlier tests end
    const others = lookupThreads(); // other test files' lookups may keep theirs (30 s idle)
    const lookup = track(createThreadedLinuxLookup({ idleMs: 1000 }));
    expect(lookup.stats()).toMatchObject({ running: false, starts: 0 });
    const conn = track(await ownConnection());
    await warm(lookup, conn);
    expect(await lookup(conn.client, conn.proxy)).toMatchObject({ pid: process.pid });
    expect(lookup.stats()).toMatchObject({ running: true, workerLookups: 1 });
    expect(lookupThreads()).toBe(others + 1);
    await until("the idle stop", () => !lookup.stats().running);
    expect(lookup.stats()).toMatchObject({ starts: 1, idleStops: 1 });
    await until("the Worker's thread to end", () => lookupThreads() === others);
    await warm(lookup, conn);
    expect(await lookup(conn.client, conn.proxy)).toMatchObject({ pid: process.pid });
    expect(lookup.stats()).toMatchObject({ running: true, starts: 2, workerLookups: 2, failures: 0 });
  });

  test("a Worker that loads slower than the idle time is not stopped before it answers", async () => {
    // The real lookup Worker behind a 600 ms delay, with an idle time of 100 ms: on a loaded machine a load can
    // take that long. The idle time counts from the end of the load, not from the lookup that started it.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-lookup-worker-"));
    const slow = path.join(dir, "slow-worker.ts");
    const real = new URL("../../src/capture/process/lookup-worker.ts", import.meta.url).href;
    fs.writeFileSync(slow, `await Bun.sleep(600); await import(${JSON.stringify(real)});`);
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const lookup = track(createThreadedLinuxLookup({ workerUrl: Bun.pathToFileURL(slow).href, idleMs: 100 }));
    const conn = track(await ownConnection());
    await warm(lookup, conn);
    expect(await lookup(conn.client, conn.proxy)).toMatchObject({ pid: process.pid });
    expect(lookup.stats()).toMatchObject({ starts: 1, idleStops: 0, workerLookups: 1 });
  });

  test("a Worker module that cannot load: lookups are answered in this thread", async () => {
    const lookup = track(createThreadedLinuxLookup({ workerUrl: new URL("./no-such-lookup-worker.ts", import.meta.url).href }));
    const conn = track(await ownConnection());
    expect(await lookup(conn.client, conn.proxy)).toMatchObject({ pid: process.pid });
    await until("the failed start", () => lookup.stats().failures === 1);
    expect(await lookup(conn.client, conn.proxy)).toMatchObject({ pid: process.pid });
    expect(await lookup(conn.client, conn.proxy)).toMatchObject({ pid: process.pid });
    expect(lookup.stats()).toMatchObject({ running: false, starts: 1, failures: 1, workerLookups: 0, fallbackLookups: 2 });
  });

  test("a Worker that dies: its waiting lookups resolve undefined, later ones run in this thread", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-lookup-worker-"));
    const dying = path.join(dir, "dying-worker.ts");
    // Loads (says so, as lookup-worker.ts does), then exits on the first request.
    fs.writeFileSync(dying, `self.onmessage = () => process.exit(3); self.postMessage({ id: 0, info: undefined });`);
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const lookup = track(createThreadedLinuxLookup({ workerUrl: Bun.pathToFileURL(dying).href }));
    const conn = track(await ownConnection());
    await warm(lookup, conn);
    expect(await lookup(conn.client, conn.proxy)).toBeUndefined();
    expect(await lookup(conn.client, conn.proxy)).toMatchObject({ pid: process.pid });
    expect(lookup.stats()).toMatchObject({ running: false, failures: 1, fallbackLookups: 1 });
  });

  test("past maxPending waiting lookups, new ones resolve undefined at once", async () => {
    const lookup = track(createThreadedLinuxLookup({ maxPending: 1 }));
    const conn = track(await ownConnection());
    await warm(lookup, conn);
    const first = lookup(conn.client, conn.proxy);
    expect(await lookup(conn.client, conn.proxy)).toBeUndefined();
    expect(await first).toMatchObject({ pid: process.pid });
    expect(lookup.stats()).toMatchObject({ overflow: 1, workerLookups: 1 });
  });
});
