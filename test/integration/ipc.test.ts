// Redirector ↔ sensor over a real unix socket in a temp dir: the real server, the real client, the real spool.
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import type { TapSink } from "../../src/tap/types.ts";
import { tokenPath } from "../../src/ipc/endpoint.ts";
import { encodeFrame } from "../../src/ipc/frames.ts";
import { startIpcServer } from "../../src/ipc/server.ts";
import { ipcHarness, meta, RecordingSink } from "../support/ipc-harness.ts";
import { waitFor } from "../support/oisp-process.ts";

const onUnix = process.platform !== "win32";

/** Taps `n` connections through the client and returns the lines the sink should end up with. */
function tapConnections(tap: TapSink, prefix: string, n: number): string[] {
  const expected: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${prefix}${i}`;
    tap.open(meta(id));
    tap.data(id, "c2s", new TextEncoder().encode(`request ${i}`), 2);
    tap.data(id, "s2c", new TextEncoder().encode(`response ${i}`), 3);
    tap.close(id, 4);
    expected.push(`open ${id} api.openai.com`, `data ${id} c2s request ${i}`, `data ${id} s2c response ${i}`, `close ${id}`);
  }
  return expected;
}

const { cleanup, tempDataDir, sensor, client } = ipcHarness("oisp-ipc-");

const spoolFiles = (dataDir: string) => {
  try {
    return fs.readdirSync(path.join(dataDir, "spool")).filter((n) => n.endsWith(".spool"));
  } catch {
    return [];
  }
};

describe.if(onUnix)("ipc over a unix socket", () => {
  test("frames from one redirector arrive in order", async () => {
    const dir = tempDataDir();
    const { server, sink } = await sensor(dir);
    const { tap } = client(dir);
    await waitFor("client connected", () => tap.stats().connected || undefined, 5000);
    const expected = tapConnections(tap, "c", 200);
    await waitFor("all frames", () => (sink.lines.length === expected.length ? true : undefined), 5000);
    expect(sink.lines).toEqual(expected);
    expect(server.stats()).toMatchObject({ peers: 1, peersSeen: 1, framesIn: 801, connsSeen: 200, badFrames: 0, authFailures: 0 });
    expect(tap.stats()).toMatchObject({ connected: true, sent: 800, dropped: 0, queuedBytes: 0, spooledBytes: 0 });
  });

  test("socket file is 0600, its directory 0700, the token file 0600", async () => {
    const dir = tempDataDir();
    const { server } = await sensor(dir);
    expect(fs.statSync(server.path).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(server.path)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(tokenPath(dir)).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(tokenPath(dir), "utf8")).toBe(server.token);
    await server.close();
    expect(fs.existsSync(server.path)).toBe(false);
  });

  test("a wrong token is rejected: peer dropped, counted, nothing reaches the sink", async () => {
    const dir = tempDataDir();
    const { server, sink, logs: serverLogs } = await sensor(dir);
    const { tap, logs: clientLogs } = client(dir, { token: "not-the-token" });
    tapConnections(tap, "x", 3);
    await waitFor("auth failure", () => (server.stats().authFailures >= 1 ? true : undefined), 5000);
    expect(sink.lines).toEqual([]);
    expect(tap.stats().connected).toBe(false);
    expect(serverLogs.lines.some((l) => /ipc: dropped peer: wrong token from pid \d+/.test(l))).toBe(true);
    await waitFor("client reports refusal", () => clientLogs.lines.find((l) => l.includes("refused our hello")), 5000);
  });

  test("a peer that never says hello is dropped after the hello timeout", async () => {
    const dir = tempDataDir();
    const { server, logs: serverLogs } = await sensor(dir, { helloTimeoutMs: 100 });
    const raw = net.createConnection(server.path);
    cleanup.push(() => raw.destroy());
    const closed = new Promise((resolve) => raw.once("close", resolve));
    await closed;
    expect(server.stats()).toMatchObject({ authFailures: 1, peers: 0 });
    expect(serverLogs.lines).toContain("warn: ipc: dropped peer: no hello within 100 ms (peer #1)");
  });

  test("garbage from a raw client drops that peer only; a good peer keeps working", async () => {
    const dir = tempDataDir();
    const { server, sink, logs: serverLogs } = await sensor(dir);
    const { tap } = client(dir);
    await waitFor("client connected", () => tap.stats().connected || undefined, 5000);
    const first = tapConnections(tap, "a", 5);

    // A peer that authenticates, then sends garbage.
    const raw = net.createConnection(server.path).resume(); // read (and discard) the welcome, so "close" can fire
    cleanup.push(() => raw.destroy());
    await new Promise((resolve) => raw.once("connect", resolve));
    raw.write(encodeFrame({ t: "hello", token: server.token, version: "test", pid: 1, runId: "raw" }));
    raw.write(encodeFrame({ t: "open", meta: meta("raw1") }));
    raw.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    await new Promise((resolve) => raw.once("close", resolve));

    const second = tapConnections(tap, "b", 5);
    await waitFor("good peer frames", () => (sink.lines.filter((l) => !l.includes("raw1")).length === 40 ? true : undefined), 5000);
    expect(sink.lines.filter((l) => !l.includes("raw1"))).toEqual([...first, ...second]);
    // The dropped peer's open connection is closed for it, so the sensor frees its state.
    expect(sink.lines).toContain("close raw1 ipc: redirector dropped: bad magic byte 0x47 (not an OISP IPC v1 peer)");
    expect(server.stats()).toMatchObject({ badFrames: 1, peers: 1, peersSeen: 2 });
    expect(serverLogs.lines).toContain("warn: ipc: dropped peer: bad magic byte 0x47 (not an OISP IPC v1 peer) (redirector pid 1 run raw)");
  });

  test("an oversized frame drops the peer with a clear reason", async () => {
    const dir = tempDataDir();
    const { server, logs: serverLogs } = await sensor(dir);
    const raw = net.createConnection(server.path).resume(); // read (and discard) the welcome, so "close" can fire
    cleanup.push(() => raw.destroy());
    await new Promise((resolve) => raw.once("connect", resolve));
    raw.write(encodeFrame({ t: "hello", token: server.token, version: "test", pid: 2, runId: "big" }));
    const prefix = new Uint8Array(10);
    const v = new DataView(prefix.buffer);
    v.setUint8(0, 0xa1);
    v.setUint8(1, 3);
    v.setUint32(2, 2);
    v.setUint32(6, 64 * 1024 * 1024);
    raw.write(prefix);
    await new Promise((resolve) => raw.once("close", resolve));
    expect(server.stats().badFrames).toBe(1);
    expect(serverLogs.lines.some((l) => l.includes("ipc: dropped peer: data payload too large: 67108864 bytes"))).toBe(true);
  });

  test("a redirector that disconnects has its open connections closed at the sink", async () => {
    const dir = tempDataDir();
    const { sink } = await sensor(dir);
    const { tap } = client(dir);
    await waitFor("client connected", () => tap.stats().connected || undefined, 5000);
    tap.open(meta("open1"));
    await waitFor("open", () => (sink.lines.length === 1 ? true : undefined), 5000);
    await tap.close();
    await waitFor("closed for it", () => (sink.lines.length === 2 ? true : undefined), 5000);
    expect(sink.lines).toEqual(["open open1 api.openai.com", "close open1 ipc: redirector disconnected"]);
  });

  test("sensor absent: the client spools; sensor started later gets everything in order; spool deleted", async () => {
    const dir = tempDataDir();
    const { tap, logs: clientLogs } = client(dir);
    const expected = tapConnections(tap, "s", 50);
    expect(tap.stats().connected).toBe(false);
    expect(tap.stats().spooledBytes).toBeGreaterThan(0);
    expect(spoolFiles(dir).length).toBe(1);
    expect(clientLogs.lines.some((l) => l.includes("is `oisp sensor` running? spooling meanwhile"))).toBe(true);

    const { sink } = await sensor(dir);
    const later = tapConnections(tap, "t", 10); // tapped while the replay may still be running
    await waitFor("replayed", () => (sink.lines.length === expected.length + later.length ? true : undefined), 5000);
    expect(sink.lines).toEqual([...expected, ...later]);
    expect(tap.stats()).toMatchObject({ connected: true, spooledBytes: 0, dropped: 0, sent: 240 });
    expect(spoolFiles(dir)).toEqual([]);
  });

  test("sensor restarts with a new token: the client reconnects, frames tapped meanwhile are replayed", async () => {
    const dir = tempDataDir();
    const first = await sensor(dir);
    const { tap } = client(dir);
    await waitFor("connected", () => tap.stats().connected || undefined, 5000);
    const before = tapConnections(tap, "p", 3);
    await waitFor("first sensor got them", () => (first.sink.lines.length === before.length ? true : undefined), 5000);
    await first.server.close();
    await waitFor("client notices", () => (!tap.stats().connected ? true : undefined), 5000);
    const during = tapConnections(tap, "q", 3);
    expect(tap.stats().spooledBytes).toBeGreaterThan(0);

    const second = await sensor(dir);
    expect(second.server.token).not.toBe(first.server.token);
    await waitFor("second sensor got the spool", () => (second.sink.lines.length === during.length ? true : undefined), 5000);
    expect(first.sink.lines).toEqual(before);
    expect(second.sink.lines).toEqual(during);
  });

  test("memory queue over its limit while connected: frames go through the spool, order kept", async () => {
    const dir = tempDataDir();
    const { sink } = await sensor(dir);
    const { tap } = client(dir, { maxQueueBytes: 1 });
    await waitFor("connected", () => tap.stats().connected || undefined, 5000);
    const big = "z".repeat(64 * 1024);
    const expected: string[] = [];
    for (let i = 0; i < 100; i++) {
      tap.data("big", "s2c", new TextEncoder().encode(`${i}:${big}`), i);
      expected.push(`data big s2c ${i}:${big}`);
    }
    // The socket cannot take 6.4 MB at once, so most of this went to disk.
    expect(tap.stats().spooledBytes).toBeGreaterThan(0);
    await waitFor("all delivered", () => (sink.lines.length === 100 ? true : undefined), 10_000);
    expect(sink.lines).toEqual(expected);
    expect(tap.stats()).toMatchObject({ spooledBytes: 0, queuedBytes: 0, dropped: 0 });
    expect(spoolFiles(dir)).toEqual([]);
  });

  test("spool over its limit: frames dropped and counted, once logged, the rest intact", async () => {
    const dir = tempDataDir();
    const { tap, logs: clientLogs } = client(dir, { maxSpoolBytes: 1500 });
    const expected = tapConnections(tap, "f", 20);
    const stats = tap.stats();
    expect(stats.dropped).toBeGreaterThan(0);
    expect(stats.spooledBytes).toBeLessThanOrEqual(1500);
    expect(clientLogs.lines.filter((l) => l.includes("ipc: spool full")).length).toBe(1);

    const { sink } = await sensor(dir);
    await waitFor("spool replayed", () => (tap.stats().spooledBytes === 0 && tap.stats().connected ? true : undefined), 5000);
    await waitFor("lines", () => (sink.lines.length > 0 ? true : undefined), 5000);
    // What arrived is a prefix of what was tapped: nothing reordered, nothing garbled.
    expect(sink.lines.length).toBeLessThan(expected.length);
    expect(sink.lines).toEqual(expected.slice(0, sink.lines.length));
  });

  test("a connection that lost data to a full spool is closed with a note; its later data is not sent", async () => {
    const dir = tempDataDir();
    const { tap } = client(dir, { maxSpoolBytes: 1024 });
    tap.open(meta("c"));
    tap.data("c", "c2s", new Uint8Array(2048), 1); // does not fit
    tap.data("c", "c2s", new TextEncoder().encode("tail"), 2); // would fit, but after a gap it is useless
    tap.close("c", 3);
    expect(tap.stats().dropped).toBe(2);
    const { sink } = await sensor(dir);
    await waitFor("delivered", () => (sink.lines.length === 2 ? true : undefined), 5000);
    expect(sink.lines).toEqual(["open c api.openai.com", "close c ipc: some captured bytes were lost (spool full or disk error)"]);
  });

  test("spool directory unusable (disk error): frames dropped and counted, one log line, no throw", async () => {
    const dir = tempDataDir();
    const blocker = path.join(dir, "file");
    fs.writeFileSync(blocker, "");
    const { tap, logs: clientLogs } = client(dir, { spoolDir: path.join(blocker, "spool") });
    expect(() => tapConnections(tap, "d", 5)).not.toThrow();
    expect(tap.stats()).toMatchObject({ dropped: 20, spooledBytes: 0 }); // every frame of the 5 connections
    expect(clientLogs.lines.filter((l) => l.includes("ipc: cannot write the spool")).length).toBe(1);
  });

  test("a spool left by a dead redirector is adopted and replayed first; a torn tail is skipped and counted", async () => {
    const dir = tempDataDir();
    const firstClient = client(dir);
    const old = tapConnections(firstClient.tap, "old", 4);
    await firstClient.tap.close();
    const [file] = spoolFiles(dir);
    expect(file).toBeDefined();
    // The dead redirector stopped in the middle of a frame.
    fs.appendFileSync(path.join(dir, "spool", file!), encodeFrame({ t: "close", connId: "torn", ts: 1 }).subarray(0, 7));

    const second = client(dir);
    const fresh = tapConnections(second.tap, "new", 2);
    const { sink } = await sensor(dir);
    await waitFor("replayed", () => (sink.lines.length === old.length + fresh.length ? true : undefined), 5000);
    expect(sink.lines).toEqual([...old, ...fresh]);
    expect(second.tap.stats().dropped).toBe(1);
    expect(second.logs.lines.some((l) => l.includes("torn frame at the end"))).toBe(true);
    expect(spoolFiles(dir)).toEqual([]);
  });

  test("a second sensor on a live path fails clearly; a stale socket file is replaced", async () => {
    const dir = tempDataDir();
    const { server } = await sensor(dir);
    const sink = new RecordingSink();
    expect(startIpcServer({ path: server.path, dataDir: dir, sink })).rejects.toThrow(`another sensor is already listening on ${server.path}`);
    // The first sensor's token was not overwritten by the failed attempt.
    expect(fs.readFileSync(tokenPath(dir), "utf8")).toBe(server.token);

    // A sensor killed with SIGKILL leaves its socket file behind.
    const stalePath = path.join(dir, "run", "stale.sock");
    const child = Bun.spawn(
      [process.execPath, "-e", `require("node:net").createServer().listen(${JSON.stringify(stalePath)}, () => console.log("up"))`],
      { stdout: "pipe" },
    );
    const reader = child.stdout.getReader();
    await reader.read();
    child.kill("SIGKILL");
    await child.exited;
    expect(fs.existsSync(stalePath)).toBe(true);
    const replaced = await startIpcServer({ path: stalePath, token: "t", sink });
    cleanup.push(() => replaced.close());
    const { tap } = client(dir, { path: stalePath, token: "t" });
    tapConnections(tap, "r", 1);
    await waitFor("works", () => (sink.lines.length === 4 ? true : undefined), 5000);
  });

  test("a path that is a regular file is never deleted", async () => {
    const dir = tempDataDir();
    const file = path.join(dir, "not-a-socket");
    fs.writeFileSync(file, "keep me");
    expect(startIpcServer({ path: file, token: "t", sink: new RecordingSink() })).rejects.toThrow("exists and is not a socket");
    expect(fs.readFileSync(file, "utf8")).toBe("keep me");
  });
});
