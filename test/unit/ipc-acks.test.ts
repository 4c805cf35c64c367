// Bookkeeping behind IPC acknowledgements (proto 2): the redirector's record of unacknowledged frames, the
// ack frame and protocol fields, the store's commit waiters the sensor acks on, and the JSONL output that
// must not repeat events re-derived from resent connections.
import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { OispEvent } from "../../src/events/index.ts";
import { encodeFrame, FrameDecoder, frameConnection, IPC_PROTO, MAX_ACK_IDS, type IpcFrame } from "../../src/ipc/frames.ts";
import { UnackedFrames } from "../../src/ipc/unacked.ts";
import { durableAfter, JsonlOutput, StoreOutput } from "../../src/sensor/outputs.ts";
import { JsonlSink } from "../../src/sinks/jsonl.ts";
import { openStore } from "../../src/store/index.ts";
import { silentLogger } from "../../src/util/log.ts";
import { aiExchange } from "../support/event-fixtures.ts";

/** Three distinct realistic events (request, response, tool call of one AI call). */
const sampleEvents = () => aiExchange({ tsMs: Date.UTC(2026, 0, 1), toolCalls: [{ name: "ls", arguments: "{}" }] }) as unknown as OispEvent[];

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanup.splice(0).reverse()) fn();
});

/** A recognisable fake frame: the bytes spell "<conn>:<n>". */
const f = (label: string) => new TextEncoder().encode(label);
const labels = (frames: Uint8Array[]) => frames.map((b) => new TextDecoder().decode(b));

describe("UnackedFrames", () => {
  test("frames of unacknowledged connections come back in send order, interleaved as sent; acked ones do not", () => {
    const u = new UnackedFrames(1 << 20);
    u.add("a", "open", f("a0"));
    u.add("b", "open", f("b0"));
    u.add("a", "data", f("a1"));
    u.add("b", "data", f("b1"));
    u.add("a", "close", f("a2"));
    u.add("c", "open", f("c0"));
    expect(u.stats()).toMatchObject({ conns: 3, frames: 6, bytes: 12, awaitingAck: 1 });
    u.ack("a");
    expect(u.stats()).toMatchObject({ conns: 2, frames: 3, bytes: 6, awaitingAck: 0, acked: 1 });
    u.add("b", "data", f("b2"));
    const replay = u.takeForReplay();
    expect(labels(replay.frames)).toEqual(["b0", "b1", "c0", "b2"]);
    expect(replay.lostOpen).toEqual([]);
    // Emptied: the resent frames are recorded again as they are sent to the next sensor.
    expect(u.stats()).toMatchObject({ conns: 0, frames: 0, bytes: 0, awaitingAck: 0 });
    expect(u.takeForReplay().frames).toEqual([]);
  });

  test("data or close of a connection not recorded from its open is not kept (it could not be replayed); unknown acks are ignored", () => {
    const u = new UnackedFrames(1 << 20);
    u.add("x", "data", f("x1"));
    u.add("x", "close", f("x2"));
    u.ack("nobody");
    expect(u.stats()).toMatchObject({ conns: 0, frames: 0, awaitingAck: 0, acked: 0 });
    expect(u.takeForReplay().frames).toEqual([]);
  });

  test("awaitingAck counts closed connections until their ack; an ack of an open connection also forgets it", () => {
    const u = new UnackedFrames(1 << 20);
    for (const id of ["a", "b", "c"]) {
      u.add(id, "open", f(`${id}0`));
      u.add(id, "close", f(`${id}1`));
    }
    u.add("d", "open", f("d0"));
    expect(u.awaitingAck).toBe(3);
    u.ack("b");
    expect(u.awaitingAck).toBe(2);
    u.ack("d");
    expect(u.awaitingAck).toBe(2);
    expect(labels(u.takeForReplay().frames)).toEqual(["a0", "a1", "c0", "c1"]);
  });

  test("over the byte bound the oldest connection is given up whole, counted and reported; if still open it is listed as lost", () => {
    const given: string[] = [];
    const u = new UnackedFrames(10, (connId, bytes) => given.push(`${connId}:${bytes}`));
    u.add("old", "open", f("old0")); // 4 bytes
    u.add("done", "open", f("dn0")); // 3
    u.add("done", "close", f("dn1")); // 3 → 10, at the bound
    u.add("new", "open", f("new0")); // 14 → "old" goes
    expect(given).toEqual(["old:4"]);
    expect(u.stats()).toMatchObject({ conns: 2, bytes: 10, unprotected: 1, awaitingAck: 1 });
    // Later frames of a given-up connection are not kept: it can no longer be replayed from its open.
    u.add("old", "data", f("o1"));
    expect(u.stats().bytes).toBe(10);
    u.add("new", "data", f("n1")); // 12 → "done" (closed, awaiting its ack) goes
    expect(given).toEqual(["old:4", "done:6"]);
    expect(u.awaitingAck).toBe(0);
    const replay = u.takeForReplay();
    expect(labels(replay.frames)).toEqual(["new0", "n1"]);
    expect(replay.lostOpen).toEqual(["old"]); // "done" was closed: nothing more will be sent for it
  });

  test("a given-up connection that closes is no longer listed as lost", () => {
    const u = new UnackedFrames(4);
    u.add("a", "open", f("a0a0"));
    u.add("b", "open", f("b0")); // a given up
    u.add("a", "close", f("a1"));
    expect(u.takeForReplay().lostOpen).toEqual([]);
  });

  test("many connections acked out of order: bookkeeping stays exact and order is kept across compactions", () => {
    const u = new UnackedFrames(1 << 30);
    const n = 5000;
    for (let i = 0; i < n; i++) {
      u.add(`c${i}`, "open", f(`c${i}`));
      if (i % 3 !== 0) u.add(`c${i}`, "close", f(`c${i}.`));
    }
    for (let i = 0; i < n; i++) if (i % 3 !== 0 && i % 7 !== 0) u.ack(`c${i}`);
    const keep = [...Array(n).keys()].filter((i) => i % 3 === 0 || i % 7 === 0);
    const expected = keep.flatMap((i) => (i % 3 === 0 ? [`c${i}`] : [`c${i}`, `c${i}.`]));
    expect(u.stats().frames).toBe(expected.length);
    expect(u.awaitingAck).toBe(keep.filter((i) => i % 3 !== 0).length);
    expect(labels(u.takeForReplay().frames)).toEqual(expected);
  });
});

describe("ack frames and protocol revision", () => {
  const decode = (bytes: Uint8Array) => new FrameDecoder().push(bytes);

  test("an ack frame round-trips; more ids than fit one frame is an error", () => {
    const ack: IpcFrame = { t: "ack", connIds: ["01J0000000000000000000000A", "c-2"] };
    expect(decode(encodeFrame(ack))).toEqual({ frames: [ack] });
    const tooMany = encodeFrame({ t: "ack", connIds: Array.from({ length: MAX_ACK_IDS + 1 }, (_, i) => `c${i}`) });
    expect(decode(tooMany).error).toMatch(/ack header invalid at connIds/);
  });

  test("hello and welcome carry proto; without it (a proto-1 peer) they still decode", () => {
    const hello: IpcFrame = { t: "hello", token: "t", version: "0.1.0", pid: 1, runId: "r", proto: IPC_PROTO };
    expect(decode(encodeFrame(hello)).frames).toEqual([hello]);
    const old: IpcFrame = { t: "hello", token: "t", version: "0.0.9", pid: 1, runId: "r" };
    expect(decode(encodeFrame(old)).frames).toEqual([old]);
    expect(decode(encodeFrame({ t: "welcome", version: "0.0.9" })).frames).toEqual([{ t: "welcome", version: "0.0.9" }]);
    expect(decode(encodeFrame({ t: "hello", token: "t", version: "x", pid: 1, runId: "r", proto: 0 })).error).toMatch(/hello header invalid at proto/);
  });

  test("frameConnection reads the connection and kind of an encoded open/data/close frame", () => {
    const meta = { connId: "m1", startedAt: 1, client: { ip: "1.1.1.1", port: 1 }, server: { ip: "2.2.2.2", port: 443 }, host: "h", mode: "mitm" as const, captureMethod: "mitm_proxy" as const };
    expect(frameConnection(encodeFrame({ t: "open", meta }))).toEqual({ connId: "m1", kind: "open" });
    expect(frameConnection(encodeFrame({ t: "data", connId: "d1", dir: "c2s", ts: 1, bytes: f("x") }))).toEqual({ connId: "d1", kind: "data" });
    expect(frameConnection(encodeFrame({ t: "close", connId: "k1", ts: 1 }))).toEqual({ connId: "k1", kind: "close" });
    expect(frameConnection(encodeFrame({ t: "ack", connIds: ["a"] }))).toBeUndefined();
    expect(frameConnection(f("garbage bytes here"))).toBeUndefined();
    expect(frameConnection(encodeFrame({ t: "close", connId: "k1", ts: 1 }).subarray(0, 14))).toBeUndefined();
  });
});

describe("StoreOutput.whenCommitted", () => {
  const events = (n: number, tag: string) => sampleEvents().slice(0, 1).flatMap((e) => Array.from({ length: n }, (_, i) => ({ ...e, event_id: eventId(tag, i) }) as OispEvent));

  test("fires only once the events written before it are committed; right away when nothing is pending", () => {
    const store = openStore(":memory:");
    cleanup.push(() => store.close());
    const out = new StoreOutput(store, silentLogger);
    const fired: string[] = [];
    out.whenCommitted(() => fired.push("idle"));
    expect(fired).toEqual(["idle"]);
    out.write(events(3, "A"));
    out.whenCommitted(() => fired.push("after A"));
    out.write(events(2, "B"));
    out.whenCommitted(() => fired.push("after B"));
    expect(fired).toEqual(["idle"]);
    out.flush();
    expect(fired).toEqual(["idle", "after A", "after B"]);
    expect(store.count()).toBe(5);
  });

  test("a failing store holds the waiters until a commit succeeds; events dropped over the bound count as done", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-acks-"));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const store = openStore(path.join(dir, "e.db"));
    let failing = true;
    const flaky = { ...store, insertEvents: (batch: Parameters<typeof store.insertEvents>[0]) => (failing ? (() => { throw new Error("disk I/O error"); })() : store.insertEvents(batch)) };
    cleanup.push(() => store.close());
    const out = new StoreOutput(flaky as typeof store, silentLogger, 4);
    const fired: string[] = [];
    out.write(events(3, "A"));
    out.whenCommitted(() => fired.push("A"));
    out.flush();
    expect(fired).toEqual([]);
    expect(out.stats()).toMatchObject({ pending: 3, lastError: "disk I/O error" });
    // Two more: only one fits the bound of 4 (the other is dropped and counted); A is still not committed.
    out.write(events(2, "B"));
    out.whenCommitted(() => fired.push("B"));
    out.flush();
    expect(fired).toEqual([]);
    failing = false;
    out.flush();
    expect(fired).toEqual(["A", "B"]);
    expect(store.count()).toBe(4);
    expect(out.stats()).toMatchObject({ dropped: 1, pending: 0 });
  });
});

describe("durableAfter (the sensor's whenDurable)", () => {
  test("done fires after the SQLite commit, with the JSONL lines of those events already in the file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-acks-"));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const store = openStore(":memory:");
    cleanup.push(() => store.close());
    const file = path.join(dir, "events.jsonl");
    const sink = new JsonlSink(file, { flushIntervalMs: 60_000 });
    cleanup.push(() => sink.close());
    const storeOut = new StoreOutput(store, silentLogger);
    const jsonlOut = new JsonlOutput(sink);
    const whenDurable = durableAfter(storeOut, [sink]);
    const events = sampleEvents();
    storeOut.write(events);
    jsonlOut.write(events);
    const seen: Array<{ stored: number; lines: number }> = [];
    const lines = () => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean).length : 0);
    whenDurable(() => seen.push({ stored: store.count(), lines: lines() }));
    expect(seen).toEqual([]);
    expect(lines()).toBe(0); // still buffered: a kill now would lose them, so no ack yet
    storeOut.flush();
    expect(seen).toEqual([{ stored: events.length, lines: events.length }]);
  });
});

describe("JsonlOutput", () => {
  test("an event_id already written (this run, or in the file's tail from an earlier run) is not written again", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-acks-"));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "events.jsonl");
    const [e1, e2, e3] = sampleEvents();
    const first = new JsonlSink(file);
    const out1 = new JsonlOutput(first);
    out1.write([e1!, e2!]);
    out1.write([e2!]); // a replay within the run
    first.close();
    // A restarted sensor re-derives e2 from a resent connection, and e3 is new.
    const second = new JsonlSink(file);
    const out2 = new JsonlOutput(second);
    out2.write([e2!, e3!]);
    second.close();
    const ids = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => (JSON.parse(l) as OispEvent).event_id);
    expect(ids).toEqual([e1!.event_id, e2!.event_id, e3!.event_id]);
  });

  test("an event from before this output started (a replay) is skipped if the store has it; a live one is not looked up", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-acks-"));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "events.jsonl");
    const store = openStore(":memory:");
    cleanup.push(() => store.close());
    const [e1, e2, e3] = sampleEvents(); // timestamped 2026-01-01: before this output started
    store.insertEvents([e1!]); // exported by an earlier sensor long ago (beyond the file tail)
    const live = { ...e2!, event_id: "01ZZZZZZZZZZZZZZZZZZZZZZZ0", ts: new Date(Date.now() + 60_000).toISOString() } as OispEvent;
    store.insertEvents([live]);
    const lookedUp: string[] = [];
    const sink = new JsonlSink(file);
    const out = new JsonlOutput(sink, { isStored: (id) => (lookedUp.push(id), store.get(id) !== undefined) });
    out.write([e1!, e3!, live]);
    sink.close();
    const ids = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => (JSON.parse(l) as OispEvent).event_id);
    expect(ids).toEqual([e3!.event_id, live.event_id]);
    expect(lookedUp).toEqual([e1!.event_id, e3!.event_id]);
  });

  test("the remembered ids are bounded: the oldest are forgotten first", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-acks-"));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "events.jsonl");
    const sink = new JsonlSink(file);
    const out = new JsonlOutput(sink, { maxRemembered: 2 });
    const [e1, e2, e3] = sampleEvents();
    out.write([e1!, e2!, e3!, e1!, e3!]); // e1 forgotten when e3 came: written again; e3 still known
    sink.close();
    const ids = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => (JSON.parse(l) as OispEvent).event_id);
    expect(ids).toEqual([e1!.event_id, e2!.event_id, e3!.event_id, e1!.event_id]);
  });
});

/** A valid ULID-shaped id per (tag, i). */
function eventId(tag: string, i: number): string {
  return `01J${tag.padEnd(3, "0")}${String(i).padStart(20, "0")}`.slice(0, 26);
}
