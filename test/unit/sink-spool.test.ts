// The exporters' disk spool: order, bounds, restart replay, torn tails, progress kept on close.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BatchSpool } from "../../src/sinks/spool.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-spool-"));
  dirs.push(d);
  return d;
};
const batch = (i: number) => ({ id: `b${i}`, events: [{ event_id: `e${i}`, pad: "x".repeat(100) }] });

test("batches come back in order across segments, and are removed once shifted", () => {
  const dir = tempDir();
  const spool = new BatchSpool({ dir, maxBytes: 1 << 20, segmentBytes: 300 });
  for (let i = 0; i < 10; i++) expect(spool.append(batch(i))).toBe(true);
  expect(spool.pendingBatches).toBe(10);
  expect(fs.readdirSync(dir).length).toBeGreaterThan(2); // several segments
  const ids: string[] = [];
  for (let b = spool.peek(); b; b = spool.peek()) {
    ids.push(b.id);
    spool.shift();
    if (ids.length === 5) spool.append(batch(10)); // appends while reading go after
  }
  expect(ids).toEqual(["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "b10"]);
  expect(spool.pendingBatches).toBe(0);
  expect(spool.pendingBytes).toBe(0);
  spool.close();
  expect(fs.readdirSync(dir)).toEqual([]);
});

test("maxBytes bounds the spool: a batch that does not fit is refused", () => {
  const line = Buffer.byteLength(JSON.stringify(batch(0))) + 1;
  const spool = new BatchSpool({ dir: tempDir(), maxBytes: line * 3 + line / 2 });
  const accepted = [0, 1, 2, 3, 4].filter((i) => spool.append(batch(i)));
  expect(accepted).toEqual([0, 1, 2]);
  expect(spool.pendingBytes).toBe(line * 3);
  spool.close();
});

test("a restart replays only what was not sent, and skips a torn last line", () => {
  const dir = tempDir();
  const a = new BatchSpool({ dir, maxBytes: 1 << 20 });
  for (let i = 0; i < 4; i++) a.append(batch(i));
  expect(a.peek()?.id).toBe("b0");
  a.shift();
  a.close(); // records that b0 went out
  // A crash mid-write left half a line at the end of a newer segment.
  fs.writeFileSync(path.join(dir, "000000000099.jsonl"), `${JSON.stringify(batch(9))}\n{"id":"b10","ev`);
  const losses: string[] = [];
  const b = new BatchSpool({ dir, maxBytes: 1 << 20, onLoss: (m) => losses.push(m) });
  expect(b.pendingBatches).toBe(4);
  const ids: string[] = [];
  for (let x = b.peek(); x; x = b.peek()) {
    ids.push(x.id);
    b.shift();
  }
  expect(ids).toEqual(["b1", "b2", "b3", "b9"]);
  expect(losses).toHaveLength(1);
  expect(b.pendingBytes).toBe(0);
  b.append(batch(11)); // numbering continues after the highest segment seen
  expect(fs.readdirSync(dir)).toEqual(["000000000100.jsonl"]);
  b.close();
});
