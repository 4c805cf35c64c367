// The live feed (dashboard SSE, TUI redraws) is answered by reading the store: a listener must hear of
// a batch only once the store holds it, whatever the store's commit interval.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { OispEvent } from "../../src/events/schema.ts";
import { CommittedLiveOutput, LiveOutput, StoreOutput } from "../../src/sensor/outputs.ts";
import { openStore } from "../../src/store/index.ts";
import { aiExchange } from "../support/event-fixtures.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-live-output-"));
const store = openStore(path.join(dir, "oisp.db"));
afterAll(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a live listener hears of a batch only after its commit, and can read every event of it", async () => {
  const storeOutput = new StoreOutput(store, () => {});
  const live = new LiveOutput();
  const heard: Array<{ ids: string[]; storedThen: boolean[] }> = [];
  live.subscribe((events) => heard.push({ ids: events.map((e) => e.event_id), storedThen: events.map((e) => store.get(e.event_id) !== undefined) }));
  const committedLive = new CommittedLiveOutput(storeOutput, live);

  const batch = aiExchange({ tsMs: Date.now(), provider: "openai", model: "gpt-4o", process: { pid: 4242, name: "live-test" } }) as unknown as OispEvent[];
  storeOutput.write(batch);
  committedLive.write(batch);
  expect(heard).toEqual([]); // not committed yet: nothing to read, so nothing announced

  const done = Date.now() + 5000;
  while (heard.length === 0 && Date.now() < done) await Bun.sleep(10);
  expect(heard).toEqual([{ ids: batch.map((e) => e.event_id), storedThen: batch.map(() => true) }]);
});

test("a finished lone call is committed at once; calls within 100 ms of a commit share the next one", async () => {
  const storeOutput = new StoreOutput(store, () => {});
  const call = (pid: number) => aiExchange({ tsMs: Date.now(), provider: "openai", model: "gpt-4o", process: { pid, name: "cadence-test" } }) as unknown as OispEvent[];
  const first = call(1);
  storeOutput.write(first);
  storeOutput.flushIfDue(); // not due: the batch may hold more, or a response may follow
  expect(storeOutput.stats()).toMatchObject({ written: 0, pending: first.length });
  const firstAt = performance.now();
  storeOutput.commitIfQuiet(); // the sensor worker's end of batch with no call awaiting its response
  expect(storeOutput.stats()).toMatchObject({ written: first.length, pending: 0 });

  const second = call(2);
  storeOutput.write(second);
  storeOutput.commitIfQuiet(); // right after a commit: waits for its timer
  expect(storeOutput.stats()).toMatchObject({ written: first.length, pending: second.length });
  const third = call(3);
  storeOutput.write(third);
  const when = await new Promise<number>((resolve) => storeOutput.whenCommitted(() => resolve(performance.now()))); // by its timer
  expect(when - firstAt).toBeGreaterThanOrEqual(99);
  expect(storeOutput.stats()).toMatchObject({ written: first.length + second.length + third.length, pending: 0 });
  for (const e of [...second, ...third]) expect(store.get(e.event_id)).toBeDefined();
});
