// The tap journal's bookkeeping with real files: segments are deleted once every connection opened in them
// (or before) is closed and committed, the size bound gives up the oldest, and a torn record (a write cut
// by the kill) stops the replay of its segment without losing what came before it.
import { expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { recoverJournals, TapJournal, type JournalEntry } from "../../src/sensor/tap-journal.ts";
import { OP_CLOSE, OP_DATA, OP_OPEN, OP_WIDTH, payloadOffset } from "../../src/sensor/worker-protocol.ts";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "oisp-tapj-"));
let opCount = 0;

function entry(parts: Array<["open", number, string] | ["data", number, string] | ["close", number, string]>): JournalEntry {
  const ops: number[] = [];
  const strs: unknown[] = [];
  const chunks: Uint8Array[] = [];
  const opened: string[] = [];
  const closed: string[] = [];
  let payloadBytes = 0;
  for (const [kind, no, s] of parts) {
    opCount++;
    if (kind === "open") {
      ops.push(OP_OPEN, no, 0, 0, 0);
      strs.push({ connId: s });
      opened.push(s);
    } else if (kind === "data") {
      const b = new TextEncoder().encode(s);
      ops.push(OP_DATA, no, 1, 1, b.length);
      chunks.push(b);
      payloadBytes += b.length;
    } else {
      ops.push(OP_CLOSE, no, 2, 0, 0);
      closed.push(s);
    }
  }
  return { ops: new Float64Array(ops), strs, chunks, payloadBytes, opened, closed, opEnd: opCount };
}

/** Replays as the sensor worker would: each connection's bytes, and the closes synthesised for the open ones. */
function replayed(dir: string): { data: Record<string, string>; closedByReplay: number[] } {
  const rec = recoverJournals(dir, 5);
  const names = new Map<number, string>();
  const data: Record<string, string> = {};
  const closedByReplay: number[] = [];
  for (const b of rec.batches) {
    const ops = new Float64Array(b.buf, 0, b.nOps * OP_WIDTH);
    let off = payloadOffset(b.nOps);
    let s = 0;
    for (let i = 0; i < ops.length; i += OP_WIDTH) {
      const no = ops[i + 1]!;
      if (ops[i] === OP_OPEN) names.set(no, (b.strs[s++] as { connId: string }).connId);
      else if (ops[i] === OP_DATA) {
        const len = ops[i + 4]!;
        const id = names.get(no);
        if (id) data[id] = (data[id] ?? "") + Buffer.from(b.buf, off, len).toString();
        off += len;
      } else {
        if (ops[i + 3] === 1 && b.strs[s++] && ops[i + 2] === 5) closedByReplay.push(no);
        names.delete(no);
      }
    }
  }
  return { data, closedByReplay };
}

/** Journals of this process are never replayed (it is alive): the test writes them as a dead pid would. */
function asDeadRun(dir: string): void {
  for (const f of fs.readdirSync(dir)) fs.renameSync(path.join(dir, f), path.join(dir, f.replace(`-${process.pid}-`, "-999999999-")));
}

test("segments go once their connections are committed; a replay has the open ones, closed by the replay", () => {
  const dir = tmp();
  const j = new TapJournal({ dir, runId: "r1", segmentBytes: 1 });
  j.append(entry([["open", 0, "a"], ["data", 0, "req-a"]]));
  j.append(entry([["open", 1, "b"], ["data", 1, "req-b"]]));
  j.append(entry([["data", 0, "resp-a"], ["close", 0, "a"]]));
  const aClosedAt = opCount;
  expect(j.stats().segments).toBe(3);
  j.durable(aClosedAt); // a's events are committed: the segment of its open can go, b's stays
  expect(j.stats()).toMatchObject({ segments: 2, protectedConnections: 1 });
  j.close(false);
  asDeadRun(dir);
  const r = replayed(dir);
  expect(r.data).toEqual({ b: "req-b" }); // a's data in a later segment is ignored: its open is gone
  expect(r.closedByReplay).toEqual([1]);
});

test("a torn last record: what precedes it is replayed, the problem reported", () => {
  const dir = tmp();
  const j = new TapJournal({ dir, runId: "r2" });
  j.append(entry([["open", 0, "c"], ["data", 0, "whole"]]));
  j.append(entry([["data", 0, "torn-away"]]));
  j.close(false);
  const [file] = fs.readdirSync(dir);
  const full = path.join(dir, file!);
  fs.truncateSync(full, fs.statSync(full).size - 3);
  asDeadRun(dir);
  expect(replayed(dir).data).toEqual({ c: "whole" });
  expect(recoverJournals(dir, 5).problems[0]).toMatch(/torn record at byte \d+/);
});

test("past maxBytes the oldest segment is given up and counted", () => {
  const dir = tmp();
  const errors: string[] = [];
  const j = new TapJournal({ dir, runId: "r3", segmentBytes: 1, maxBytes: 300, onError: (m) => errors.push(m) });
  for (let i = 0; i < 10; i++) j.append(entry([["open", i, `k${i}`], ["data", i, "x".repeat(60)]]));
  const s = j.stats();
  expect(s.bytes).toBeLessThanOrEqual(300);
  expect(s.unprotected).toBeGreaterThan(0);
  expect(s.unprotected + s.protectedConnections).toBe(10);
  expect(errors[0]).toContain("can no longer be replayed after a crash");
  j.close(true);
  expect(fs.readdirSync(dir)).toEqual([]);
});
