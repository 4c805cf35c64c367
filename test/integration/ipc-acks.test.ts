// IPC acknowledgements (proto 2) over a real unix socket: the real server and client, the real spool.
// A sensor that goes away before acknowledging a connection gets it resent (to the next sensor) from its
// open frame; acknowledged connections are not resent; proto-1 peers on either side are left alone.
import { describe, expect, test } from "bun:test";
import net from "node:net";
import path from "node:path";
import { IpcTapClient, type IpcTapClientOptions } from "../../src/ipc/client.ts";
import { encodeFrame, FrameDecoder, IPC_PROTO, type IpcFrame } from "../../src/ipc/frames.ts";
import type { HostActivity } from "../../src/tap/activity.ts";
import { ipcHarness, meta } from "../support/ipc-harness.ts";
import { waitFor } from "../support/oisp-process.ts";

const onUnix = process.platform !== "win32";

const text = (s: string) => new TextEncoder().encode(s);

const { cleanup, tempDataDir, sensor, client: harnessClient } = ipcHarness("oisp-acks-");
const client = (dataDir: string, extra: Partial<IpcTapClientOptions> = {}): IpcTapClient => harnessClient(dataDir, extra).tap;

/** A "store" whose commits the test performs by hand: durability callbacks wait until commit(). */
function manualStore(): { whenDurable: (done: () => void) => void; commit(): void; waiting(): number } {
  let waiters: Array<() => void> = [];
  return {
    whenDurable: (done) => void waiters.push(done),
    commit() {
      const now = waiters;
      waiters = [];
      for (const done of now) done();
    },
    waiting: () => waiters.length,
  };
}

const until = (what: string, ok: () => boolean) => waitFor(what, () => (ok() ? true : undefined), 5000);

const EXEC: HostActivity = { kind: "exec", ts: 5, pid: 300, ppid: 200, uid: 0, comm: "sh", exe: "/usr/bin/sh", argv: ["sh", "-c", "echo hi > f"], argvTruncated: false, cwd: "/tmp" };

describe.if(onUnix)("ipc acknowledgements", () => {
  test("a connection is acked only once stored; a sensor that goes away gets the unacked ones resent to its successor from their open", async () => {
    const dir = tempDataDir();
    const store = manualStore();
    const first = await sensor(dir, { whenDurable: store.whenDurable });
    const tap = client(dir);
    await until("connected", () => tap.stats().connected);
    expect(tap.stats().acks).toBe(true);

    // a: complete and stored. b: still open. c: complete, not yet stored when the sensor dies.
    tap.open(meta("a"));
    tap.data("a", "c2s", text("req a"), 2);
    tap.close("a", 3);
    tap.open(meta("b"));
    tap.data("b", "c2s", text("req b"), 2);
    await until("first sensor got a and b", () => first.sink.lines.length === 5);
    expect(tap.stats()).toMatchObject({ awaitingAck: 1 });
    expect(store.waiting()).toBe(1);
    store.commit();
    await until("a acked", () => tap.stats().awaitingAck === 0);
    expect(first.server.stats().acksSent).toBe(1);

    tap.open(meta("c"));
    tap.data("c", "c2s", text("req c"), 2);
    tap.data("c", "s2c", text("res c"), 3);
    tap.close("c", 4);
    await until("first sensor got c", () => first.sink.lines.length === 9);
    expect(tap.stats().awaitingAck).toBe(1);

    await first.server.close(); // gone before storing c: c must not be lost
    await until("client notices", () => !tap.stats().connected);
    // b is not closed at the stopping sensor's sink (no "cut short" call): the next sensor gets it whole.
    expect(first.sink.lines.length).toBe(9);
    tap.data("b", "s2c", text("res b"), 5); // tapped while no sensor runs: spooled behind the resend
    tap.close("b", 6);

    const second = await sensor(dir);
    await until("second sensor got the resend and the spool", () => second.sink.lines.length === 8);
    expect(second.sink.lines).toEqual([
      "open b api.openai.com",
      "data b c2s req b",
      "open c api.openai.com",
      "data c c2s req c",
      "data c s2c res c",
      "close c",
      "data b s2c res b",
      "close b",
    ]);
    await until("all acked by the second sensor", () => tap.stats().awaitingAck === 0 && tap.stats().unackedBytes === 0);
    expect(tap.stats()).toMatchObject({ resent: 6, dropped: 0, unprotected: 0 }); // b: 2 frames, c: 4
  });

  test("past the unacked bound the oldest connection is given up: still delivered while the sensor lives, but not resent (nor its later frames) after it dies", async () => {
    const dir = tempDataDir();
    const store = manualStore();
    const first = await sensor(dir, { whenDurable: store.whenDurable });
    const logs: string[] = [];
    const tap = client(dir, { maxUnackedBytes: 1500, log: (_level, msg) => logs.push(msg) });
    await until("connected", () => tap.stats().connected);
    tap.open(meta("old"));
    tap.data("old", "c2s", text("x".repeat(1000)), 2);
    tap.open(meta("new"));
    tap.data("new", "c2s", text("y".repeat(1000)), 2);
    await until("delivered", () => first.sink.lines.length === 4);
    expect(tap.stats().unprotected).toBe(1);
    expect(logs.filter((l) => l.includes("sent and not yet acknowledged")).length).toBe(1);

    await first.server.close();
    await until("client notices", () => !tap.stats().connected);
    const droppedBefore = tap.stats().dropped;
    tap.data("old", "s2c", text("late"), 3); // the next sensor never saw "old" open: pointless to send
    tap.close("old", 4);
    tap.close("new", 4);
    const second = await sensor(dir);
    await until("second sensor got new", () => second.sink.lines.length === 3);
    expect(second.sink.lines).toEqual(["open new api.openai.com", `data new c2s ${"y".repeat(1000)}`, "close new"]);
    expect(tap.stats().dropped).toBe(droppedBefore + 2);
  });

  test("a proto-1 redirector (hello without proto) gets a welcome and no ack frames; a proto-2 one gets its acks", async () => {
    const dir = tempDataDir();
    const { server } = await sensor(dir);
    async function talk(proto: number | undefined): Promise<IpcFrame[]> {
      const sock = net.createConnection(server.path);
      cleanup.push(() => sock.destroy());
      const got: IpcFrame[] = [];
      const decoder = new FrameDecoder();
      sock.on("data", (chunk: Buffer) => got.push(...decoder.push(chunk).frames));
      await new Promise<void>((resolve) => sock.once("connect", () => resolve()));
      sock.write(encodeFrame({ t: "hello", token: server.token, version: "old", pid: 1, runId: `r${proto}`, ...(proto !== undefined && { proto }) }));
      sock.write(encodeFrame({ t: "open", meta: meta(`k${proto}`) }));
      sock.write(encodeFrame({ t: "close", connId: `k${proto}`, ts: 2 }));
      await until("welcome", () => got.length >= 1);
      await Bun.sleep(150); // room for an ack that must not come (or must)
      return got;
    }
    const old = await talk(undefined);
    expect(old.map((f) => f.t)).toEqual(["welcome"]);
    expect(old[0]).toMatchObject({ t: "welcome", proto: IPC_PROTO });
    const current = await talk(2);
    expect(current).toEqual([expect.objectContaining({ t: "welcome" }), { t: "ack", connIds: ["k2"] }]);
  });

  test("eBPF activity (proto 3) reaches the sensor's sink in order with the connections; none while disconnected", async () => {
    const dir = tempDataDir();
    const tap = client(dir);
    tap.activity([EXEC]); // no sensor yet: dropped and counted, never spooled
    const s = await sensor(dir);
    await until("connected", () => tap.stats().connected);
    tap.open(meta("m"));
    tap.activity([EXEC, { kind: "file_write", ts: 6, endTs: 7, pid: 300, path: "/tmp/f", bytes: 3, writes: 1, hashedBytes: 3, contentHash: "sha256:0011223344556677", flushedBy: "close" }]);
    tap.close("m", 8);
    await until("delivered", () => s.sink.lines.length === 4);
    expect(s.sink.lines).toEqual(["open m api.openai.com", "activity exec 300 sh -c echo hi > f", "activity file_write 300 /tmp/f", "close m"]);
    expect(tap.stats().activityDropped).toBe(1);
  });

  test("a proto-1 sensor (welcome without proto) never acks: the client keeps nothing for it and still delivers", async () => {
    const dir = tempDataDir();
    const sock = path.join(dir, "old.sock");
    const received: IpcFrame[] = [];
    const old = net.createServer((s) => {
      const decoder = new FrameDecoder();
      s.on("data", (chunk: Buffer) => {
        for (const frame of decoder.push(chunk).frames) {
          received.push(frame);
          if (frame.t === "hello") s.write(encodeFrame({ t: "welcome", version: "0.0.9" }));
        }
      });
      s.on("error", () => {});
    });
    await new Promise<void>((resolve) => old.listen(sock, () => resolve()));
    cleanup.push(() => new Promise<void>((resolve) => old.close(() => resolve())));
    const tap = client(dir, { path: sock, token: "t" });
    await until("connected", () => tap.stats().connected);
    tap.open(meta("z"));
    tap.activity([EXEC]); // an old sensor would drop the link on the unknown frame type: not sent, counted
    tap.close("z", 2);
    await until("delivered", () => received.length === 3);
    expect(received[0]).toMatchObject({ t: "hello", proto: IPC_PROTO });
    expect(received.map((f) => f.t)).toEqual(["hello", "open", "close"]);
    expect(tap.stats()).toMatchObject({ acks: false, unackedBytes: 0, awaitingAck: 0, activityDropped: 1 });
  });
});
