// The relay thread's tap and its crash journal: an answer is forwarded (afterJournal) only once it is in the
// journal's file, and what several connections tap in one event-loop turn goes out in one record (one write).
import { expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { TapJournal } from "../../src/sensor/tap-journal.ts";
import { WorkerTap } from "../../src/sensor/worker-tap.ts";
import type { ConnMeta } from "../../src/tap/types.ts";

function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-wtap-"));
  const logs: string[] = [];
  const tap = new WorkerTap(() => {}, (_lvl, msg) => logs.push(msg), 1 << 20, () => 0);
  tap.journal = new TapJournal({ dir, runId: "t" });
  const file = () => path.join(dir, fs.readdirSync(dir)[0]!);
  /** The records in the segment: each starts with a u32 length of the rest. */
  const records = () => {
    const data = fs.readFileSync(file());
    let n = 0;
    for (let at = 0; at < data.length; at += 4 + data.readUInt32LE(at)) n++;
    return n;
  };
  const meta = (connId: string) => ({ connId, client: { ip: "127.0.0.1", port: 1 } }) as unknown as ConnMeta;
  return { dir, tap, file, records, meta, logs };
}

test("an answer chunk is in the journal's file before afterJournal lets it go", async () => {
  const { dir, tap, file, records, meta } = setup();
  tap.open(meta("a"));
  tap.data("a", "c2s", new TextEncoder().encode("REQUEST-1"), 1);
  tap.data("a", "s2c", new TextEncoder().encode("ANSWER-1"), 2);
  const seen: string[] = [];
  tap.afterJournal(() => seen.push(fs.readFileSync(file(), "latin1")));
  expect(seen).toEqual([]); // not yet: the turn's write has not happened
  await new Promise((r) => setImmediate(r));
  expect(seen.length).toBe(1);
  expect(seen[0]).toContain("REQUEST-1");
  expect(seen[0]).toContain("ANSWER-1");
  expect(records()).toBe(1);
  // Nothing pending now: the next one runs at once.
  let now = false;
  tap.afterJournal(() => (now = true));
  expect(now).toBe(true);
  tap.journal!.close(true);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("one turn's chunks of several connections share one record, forwarded in order", async () => {
  const { dir, tap, records, meta } = setup();
  const order: string[] = [];
  for (const id of ["a", "b", "c"]) {
    tap.open(meta(id));
    tap.data(id, "s2c", new TextEncoder().encode(`answer ${id}`), 1);
    tap.afterJournal(() => order.push(id));
  }
  await new Promise((r) => setImmediate(r));
  expect(order).toEqual(["a", "b", "c"]);
  expect(records()).toBe(1);
  tap.data("a", "s2c", new TextEncoder().encode("second"), 2);
  tap.afterJournal(() => order.push("a2"));
  await new Promise((r) => setImmediate(r));
  expect(order).toEqual(["a", "b", "c", "a2"]);
  expect(records()).toBe(2);
  tap.journal!.close(true);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a forward that throws does not hold back the others", async () => {
  const { dir, tap, meta, logs } = setup();
  tap.open(meta("a"));
  tap.data("a", "s2c", new TextEncoder().encode("x"), 1);
  const order: string[] = [];
  tap.afterJournal(() => {
    throw new Error("boom");
  });
  tap.afterJournal(() => order.push("next"));
  await new Promise((r) => setImmediate(r));
  expect(order).toEqual(["next"]);
  expect(logs.some((l) => l.includes("boom"))).toBe(true);
  tap.journal!.close(true);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a request needs no write of its own: it goes to disk with its answer, or before its batch is posted", async () => {
  const { dir, tap, file, records, meta } = setup();
  tap.open(meta("a"));
  tap.data("a", "c2s", new TextEncoder().encode("REQUEST-1"), 1);
  await new Promise((r) => setImmediate(r));
  expect(fs.readdirSync(dir)).toEqual([]); // nothing written for the open and the request alone
  tap.data("a", "s2c", new TextEncoder().encode("ANSWER-1"), 2);
  let forwarded = false;
  tap.afterJournal(() => (forwarded = true));
  await new Promise((r) => setImmediate(r));
  expect(forwarded).toBe(true);
  expect(records()).toBe(1); // open, request and answer in one record
  expect(fs.readFileSync(file(), "latin1")).toContain("REQUEST-1");
  // A request whose answer has not come is written before the batch holding it goes to the worker.
  tap.data("a", "c2s", new TextEncoder().encode("REQUEST-2"), 3);
  tap.flush();
  expect(records()).toBe(2);
  expect(fs.readFileSync(file(), "latin1")).toContain("REQUEST-2");
  tap.journal!.close(true);
  fs.rmSync(dir, { recursive: true, force: true });
});
