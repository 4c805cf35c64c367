// When the relay thread's tap posts to the sensor worker, and what it asks back. Each message wakes the
// worker (and a reply wakes the relay), and the worker's cost per message is fixed: under sustained traffic
// several calls share one, while a lone call still goes at once.
import { expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { TapJournal } from "../../src/sensor/tap-journal.ts";
import { batchDelayMs, WorkerTap } from "../../src/sensor/worker-tap.ts";
import { atNextSlowTick, SLOW_TICK_MS } from "../../src/util/slow-tick.ts";
import type { ToWorker } from "../../src/sensor/worker-protocol.ts";
import type { ConnMeta } from "../../src/tap/types.ts";

const meta = (connId: string) => ({ connId, client: { ip: "127.0.0.1", port: 1 } }) as unknown as ConnMeta;
const bytes = (s: string) => new TextEncoder().encode(s);

/** A journaled tap that records its batch posts, and one call (request, answer) on connection "a". */
function tapWithOneCall(prefix: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const posted: Array<Extract<ToWorker, { t: "batch" }>> = [];
  const tap = new WorkerTap((m) => m.t === "batch" && posted.push(m), () => {}, 1 << 20, () => 0);
  const journal = new TapJournal({ dir, runId: "t" });
  tap.journal = journal;
  tap.open(meta("a"));
  tap.data("a", "c2s", bytes("REQUEST"), 1);
  tap.data("a", "s2c", bytes("ANSWER"), 2);
  const done = () => {
    journal.close(true);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { tap, journal, posted, done };
}

test("a batch after a quiet interval waits the short window; one soon after a message waits for the next tick", () => {
  expect(batchDelayMs(Infinity)).toBe(20); // the first ever, or after a quiet spell
  expect(batchDelayMs(10_000)).toBe(20);
  expect(batchDelayMs(SLOW_TICK_MS)).toBe(20); // calls a second or more apart: each stored at once
  expect(batchDelayMs(0)).toBeUndefined(); // right after a message: at the next housekeeping tick
  expect(batchDelayMs(SLOW_TICK_MS - 10)).toBeUndefined();
});

test("under sustained traffic a batch rides the housekeeping tick, and the journal's sync goes with it", async () => {
  const { tap, journal, posted, done } = tapWithOneCall("oisp-wtap-tick-");
  await new Promise((r) => setImmediate(r)); // the turn's journal write
  expect(journal.syncPending).toBe(true);
  tap.flush();
  expect(journal.syncPending).toBe(false); // synced with the post, no timer of its own left
  // The next call, right after that post: no timer of its own, it goes in the tick's wake-up.
  tap.data("a", "c2s", bytes("REQUEST 2"), 3);
  let postedAtTick = -1;
  atNextSlowTick(() => (postedAtTick = posted.length)); // registered after the batch: runs after it, same tick
  const deadline = Date.now() + 10 * SLOW_TICK_MS;
  while (postedAtTick < 0 && Date.now() < deadline) await Bun.sleep(10);
  expect(postedAtTick).toBe(2);
  done();
});

test("a batch asks for the durable mark only when a journaled close waits for it", () => {
  const { tap, journal, posted, done } = tapWithOneCall("oisp-wtap-batch-");
  tap.flush();
  // A keep-alive connection: nothing the journal could forget, so no reply (and no wake-up of the relay).
  expect(posted.at(-1)!.upTo).toBeUndefined();
  tap.close("a", 3);
  tap.flush();
  expect(posted.at(-1)!.upTo).toBe(4);
  journal.durable(4);
  expect(journal.stats().protectedConnections).toBe(0);
  tap.open(meta("b"));
  tap.flush();
  expect(posted.at(-1)!.upTo).toBeUndefined();
  done();
});
