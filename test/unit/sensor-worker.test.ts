// The sensor worker of `oisp up` (src/sensor/worker-tap.ts + sensor-worker.ts), really started: tap frames
// posted from this thread are decoded, stored in SQLite and counted in the worker; the queue bound drops
// data (and the rest of its connection) instead of stalling; start-up failures come back as errors.
import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import type { ConnMeta } from "../../src/tap/types.ts";
import { openStore } from "../../src/store/index.ts";
import { UsageError } from "../../src/util/args.ts";
import { SENSOR_THREAD_NAME, startSensorWorker, WorkerTap, type SensorWorker } from "../../src/sensor/worker-tap.ts";
import { MIN_REUSED_BYTES, payloadOffset, type FromWorker, type ToWorker } from "../../src/sensor/worker-protocol.ts";
import { startSensorCore, type SensorConfig } from "../../src/sensor/core.ts";
import { tempHome } from "../support/oisp-process.ts";
import { bytes, chatCompletionJson, chunk, jsonResponse, lastChunk, openaiRequest, sseEvents, sseResponseHead } from "./decode-fixtures.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);
const dirs: string[] = [];
let running: SensorWorker | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function config(over: Partial<SensorConfig> = {}): SensorConfig & { logs: string[] } {
  const dir = tempHome("oisp-sensor-worker-");
  dirs.push(dir);
  const logs: string[] = [];
  return { dataDir: dir, dbPath: path.join(dir, "oisp.db"), redaction: "full", processFilter: [], verbose: false, log: (l, m) => logs.push(`${l}: ${m}`), logs, ...over };
}

/** Events in the database now (a read-only connection; 0 before the first commit). */
function countRows(dbPath: string): number {
  if (!fs.existsSync(dbPath)) return 0;
  const store = openStore(dbPath, { readonly: true });
  try {
    return store.count();
  } catch {
    return 0;
  } finally {
    store.close();
  }
}

let n = 0;
function meta(): ConnMeta {
  return { connId: `w-${n++}`, startedAt: Date.now(), client: { ip: "127.0.0.1", port: 50000 + n }, server: { ip: "127.0.0.1", port: 443 }, host: "api.openai.com", sni: "api.openai.com", alpn: "http/1.1", mode: "mitm", captureMethod: "mitm_proxy" };
}

/** One chat call, the response split in two chunks as a relay would tap it; the chunks' buffers are reused afterwards. */
function feedCall(w: SensorWorker): string {
  const m = meta();
  const ts = Date.now();
  w.tap.open(m);
  w.tap.data(m.connId, "c2s", utf8(openaiRequest()), ts);
  const res = utf8(jsonResponse(chatCompletionJson));
  const scratch = new Uint8Array(res.length);
  scratch.set(res);
  w.tap.data(m.connId, "s2c", scratch.subarray(0, 40), ts + 1);
  w.tap.data(m.connId, "s2c", scratch.subarray(40), ts + 2);
  // The relay may reuse its buffer once tap.data returns: the worker must have its own copy.
  w.tap.flush();
  scratch.fill(0);
  w.tap.close(m.connId, ts + 3);
  return m.connId;
}

/** The nice value of one thread of this process, from /proc (Linux). */
function niceOf(tid: string | number): number {
  const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
}

describe("sensor worker", () => {
  test.if(process.platform === "linux")("the worker's threads yield the CPU to the relay's: a higher nice value, the relay's thread unchanged", async () => {
    const before = niceOf(process.pid);
    running = await startSensorWorker(config(), { journalDir: null });
    const sensorThreads = fs.readdirSync("/proc/self/task").filter((t) => fs.readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim() === SENSOR_THREAD_NAME);
    expect(sensorThreads.length).toBeGreaterThan(0);
    for (const t of sensorThreads) expect(niceOf(t)).toBe(Math.max(10, before));
    expect(niceOf(process.pid)).toBe(before);
  });

  test("a burst the worker decodes slower than it arrives is committed as it goes, not when it ends", async () => {
    // A Bun Worker whose message queue never empties runs no timers: the store's 100 ms flush only ran once
    // the burst was over (one commit holding every call), and everything decoded until then was lost with a
    // crash. Calls are posted here faster than the worker decodes them, for 2 s; the store must then be seen
    // holding some of them but not all, i.e. committed while the worker was still behind. Sampled until the
    // worker has caught up, not only during the 2 s: at nice 10 on a loaded machine the worker may not get the
    // CPU for its first commit within them.
    const cfg = config();
    // close() stores what the worker still holds within closeTimeoutMs and leaves the rest to the tap journal
    // (none here); on a loaded machine the default 10 s was not enough to catch up (stored 9,552 of 27,360).
    const w = (running = await startSensorWorker(cfg, { journalDir: null, closeTimeoutMs: 60_000 }));
    let posted = 0;
    const samples: number[] = [];
    const end = Date.now() + 2000;
    while (Date.now() < end) {
      for (let i = 0; i < 20; i++, posted++) feedCall(w);
      samples.push(countRows(cfg.dbPath));
      await Bun.sleep(1);
    }
    const decodedDuringBurst = w.pipeline.stats().aiResponses;
    expect(decodedDuringBurst).toBeLessThan(posted); // the worker was behind: its queue never emptied
    const all = posted * 3;
    const caughtUpBy = Date.now() + 60_000;
    while (samples.at(-1)! < all && Date.now() < caughtUpBy) {
      samples.push(countRows(cfg.dbPath));
      await Bun.sleep(20);
    }
    expect(samples.some((n) => n > 0 && n < all)).toBe(true); // without the fix: 0, then all at once
    await w.close();
    running = undefined;
    expect(countRows(cfg.dbPath)).toBe(all);
  }, 150_000);

  test("tap frames are decoded and stored in the worker; counters reach this thread; close stores everything", async () => {
    const cfg = config();
    const w = (running = await startSensorWorker(cfg));
    const ids = [feedCall(w), feedCall(w), feedCall(w)];
    const seen: number[] = [];
    const unsubscribe = w.live.subscribe((events) => seen.push(events.length));
    feedCall(w);
    const deadline = Date.now() + 5000;
    while (w.pipeline.stats().aiResponses < 4 && Date.now() < deadline) await Bun.sleep(20);
    expect(w.pipeline.stats().aiRequests).toBe(4);
    expect(w.pipeline.stats().aiResponses).toBe(4);
    expect(w.pipeline.stats().internalErrors).toBe(0);
    while (seen.length === 0 && Date.now() < deadline) await Bun.sleep(20);
    expect(seen.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    unsubscribe();
    await w.close();
    running = undefined;
    expect(w.storeOutput.stats()).toMatchObject({ pending: 0, dropped: 0 });
    const store = openStore(cfg.dbPath, { readonly: true });
    try {
      for (const id of ids) {
        const rows = store.list({ connId: id });
        expect(rows.map((r) => r.eventType).sort()).toEqual(["ai.request", "ai.response", "network.connect"]);
        const response = rows.find((r) => r.eventType === "ai.response")!;
        expect(response.model).toBe("gpt-4o-mini");
        expect(response.success).toBe(1);
      }
      expect(store.count({ type: "ai.response" })).toBe(4);
    } finally {
      store.close();
    }
    expect(w.tap.stats()).toMatchObject({ dropped: 0, workerAlive: false });
  });

  test("chunks of connections interleaved in one batch reach their own connection; close errors cross; acks arrive coalesced", async () => {
    const cfg = config();
    const w = (running = await startSensorWorker(cfg));
    const [a, b, c] = [meta(), meta(), meta()];
    const ts = Date.now();
    const res = utf8(jsonResponse(chatCompletionJson));
    for (const m of [a, b, c]) w.tap.open(m);
    for (const m of [a, b, c]) w.tap.data(m.connId, "c2s", utf8(openaiRequest()), ts);
    w.tap.data(b.connId, "s2c", res.subarray(0, 25), ts + 1);
    w.tap.data(a.connId, "s2c", res.subarray(0, 60), ts + 1);
    w.tap.data(b.connId, "s2c", res.subarray(25), ts + 2);
    w.tap.data(a.connId, "s2c", res.subarray(60), ts + 2);
    w.tap.close(a.connId, ts + 3);
    w.tap.close(c.connId, ts + 3, "upstream reset"); // before any response
    w.tap.close(b.connId, ts + 3);
    w.tap.data(a.connId, "s2c", res, ts + 4); // after its close: nothing to deliver to
    expect(w.tap.stats().inFlightBytes).toBeGreaterThan(0);
    // The worker acks with its next stats tick (250 ms) when little is queued.
    const deadline = Date.now() + 5000;
    while ((w.pipeline.stats().aiResponses < 2 || w.tap.stats().inFlightBytes > 0) && Date.now() < deadline) await Bun.sleep(20);
    expect(w.tap.stats()).toMatchObject({ inFlightBytes: 0, dropped: 0, batches: 1 });
    await w.close();
    running = undefined;
    const store = openStore(cfg.dbPath, { readonly: true });
    try {
      for (const m of [a, b]) {
        const response = store.list({ connId: m.connId }).find((r) => r.eventType === "ai.response")!;
        expect(response).toMatchObject({ model: "gpt-4o-mini", success: 1 });
      }
      const cut = store.list({ connId: c.connId });
      expect(cut.map((r) => r.eventType)).toContain("ai.request");
      expect(JSON.stringify(cut)).toContain("upstream reset");
    } finally {
      store.close();
    }
  });

  test("past the queue bound data is dropped and counted, never queued without end; nothing half-decoded is stored", async () => {
    const cfg = config();
    const w = (running = await startSensorWorker(cfg, { maxQueuedBytes: 64 }));
    const m = meta();
    w.tap.open(m);
    w.tap.data(m.connId, "c2s", utf8(openaiRequest()), Date.now()); // > 64 bytes on its own
    w.tap.data(m.connId, "s2c", utf8("HTTP/1.1 200 OK\r\n"), Date.now());
    w.tap.close(m.connId, Date.now());
    expect(w.tap.stats().dropped).toBe(2);
    expect(w.tap.stats().inFlightBytes).toBeLessThanOrEqual(64);
    await w.close();
    running = undefined;
    expect(cfg.logs.some((l) => l.includes("dropping captured data"))).toBe(true);
    const store = openStore(cfg.dbPath, { readonly: true });
    try {
      expect(store.count({ type: "ai.request" })).toBe(0);
      expect(store.list({ connId: m.connId }).map((r) => r.eventType)).toEqual(["network.connect"]);
    } finally {
      store.close();
    }
  });

  test("a batch's counters and acks come back at the end of its task, not from a timer afterwards", async () => {
    // The raw worker, so every message it sends is seen: a batch, then at once a close. A Worker runs no
    // timer while messages wait, so a stats message before "closed" can only be the batch's own.
    const cfg = config();
    const { log: _log, logs: _logs, ...plain } = cfg;
    const worker = new Worker(new URL("../../src/sensor/sensor-worker.ts", import.meta.url).href);
    const seen: FromWorker[] = [];
    const closed = new Promise<void>((resolve) => {
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        seen.push(e.data);
        if (e.data.t === "closed") resolve();
      };
    });
    worker.postMessage({ t: "init", cfg: plain, ackBytes: 1 << 30, nice: 0 } satisfies ToWorker);
    const tap = new WorkerTap((m, transfer) => worker.postMessage(m, transfer), () => {}, 1 << 30, () => 0);
    const m = meta();
    tap.open(m);
    const req = utf8(openaiRequest());
    const res = utf8(jsonResponse(chatCompletionJson));
    tap.data(m.connId, "c2s", req, Date.now());
    tap.data(m.connId, "s2c", res, Date.now());
    tap.flush();
    worker.postMessage({ t: "close" } satisfies ToWorker);
    await closed;
    worker.terminate();
    const kinds = seen.map((x) => x.t);
    expect(kinds.indexOf("stats")).toBeGreaterThan(kinds.indexOf("ready"));
    expect(kinds.indexOf("stats")).toBeLessThan(kinds.indexOf("closed"));
    const stats = seen.find((x) => x.t === "stats") as Extract<FromWorker, { t: "stats" }>;
    expect(stats.acked).toBe(req.length + res.length);
    // The lone call was committed at the batch's end, before its counters went.
    expect(stats.stats.store.written).toBeGreaterThanOrEqual(2);
    expect(stats.stats.store.pending).toBe(0);
  });

  test("decoded batches' buffers come back and carry the next batches; calls cut across them are stored as in one thread", async () => {
    // The raw worker, so each posted buffer can be looked at: a reused one still holds the bytes of an earlier,
    // longer batch past its payload (a new one is zero-filled). Each batch also carries a passthrough
    // connection's bytes, shorter each time, so that it is large enough to be reused. A decoder that kept a view of a batch's payload would
    // see it emptied when the buffer goes back (and the next batch written over it): its events would differ
    // from the same chunks decoded in this thread.
    const cfg = config();
    const { log: _log, logs: _logs, ...plain } = cfg;
    const worker = new Worker(new URL("../../src/sensor/sensor-worker.ts", import.meta.url).href);
    let tap!: WorkerTap;
    let closed!: () => void;
    const ready = new Promise<void>((resolve) => {
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.t === "ready") resolve();
        if (m.t === "ack" || m.t === "stats") {
          tap.acked(m.t === "ack" ? m.bytes : m.acked);
          tap.reuse(m.spent);
        }
        if (m.t === "closed") closed();
      };
    });
    const posted: Array<{ size: number; tailUsed: boolean }> = [];
    tap = new WorkerTap(
      (m, transfer) => {
        if (m.t === "batch") {
          const tail = new Uint8Array(m.buf, payloadOffset(m.nOps) + m.bytes);
          posted.push({ size: m.buf.byteLength, tailUsed: tail.some((b) => b !== 0) });
        }
        worker.postMessage(m, transfer);
      },
      () => {},
      1 << 30,
      () => 0,
    );
    worker.postMessage({ t: "init", cfg: plain, ackBytes: 1 << 30, nice: 0 } satisfies ToWorker);
    await ready;

    const stream = bytes(sseResponseHead, ...sseEvents.map(chunk), lastChunk);
    const json = bytes(jsonResponse(chatCompletionJson));
    const calls = [
      { meta: meta(), req: bytes(openaiRequest(JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "hi" }] }))), res: stream },
      { meta: meta(), req: bytes(openaiRequest()), res: json },
    ];
    const cuts = (b: Uint8Array) => [0, 7, Math.floor(b.length / 3), Math.floor(b.length / 2) + 1, b.length - 3, b.length];
    const steps: Array<{ connId: string; dir: "c2s" | "s2c"; data: Uint8Array; ts: number }[]> = [];
    let ts = 1_730_000_000_000;
    steps.push(calls.map((c) => ({ connId: c.meta.connId, dir: "c2s" as const, data: c.req, ts: ts++ })));
    for (let piece = 0; piece < 5; piece++) {
      steps.push(calls.map((c) => ({ connId: c.meta.connId, dir: "s2c" as const, data: c.res.subarray(cuts(c.res)[piece]!, cuts(c.res)[piece + 1]!), ts: ts++ })));
    }
    const filler = { ...meta(), host: "filler.example", mode: "passthrough" as const };
    steps.forEach((batch, i) => batch.push({ connId: filler.connId, dir: "c2s", data: new Uint8Array(MIN_REUSED_BYTES + 8_000 - i * 1_000).fill(0x61), ts: batch[0]!.ts }));
    for (const c of calls) tap.open(c.meta);
    tap.open(filler);
    for (const batch of steps) {
      for (const st of batch) tap.data(st.connId, st.dir, st.data, st.ts);
      tap.flush();
      const deadline = Date.now() + 5000;
      while (tap.stats().inFlightBytes > 0 && Date.now() < deadline) await Bun.sleep(5);
    }
    for (const c of calls) tap.close(c.meta.connId, ts);
    tap.flush();
    await new Promise<void>((resolve) => {
      closed = resolve;
      worker.postMessage({ t: "close" } satisfies ToWorker);
    });
    worker.terminate();
    expect(posted.length).toBe(steps.length + 1);
    expect(posted.slice(1, steps.length).every((p) => p.tailUsed && p.size === posted[0]!.size)).toBe(true); // one buffer, over and over
    expect(posted.at(-1)!.size).toBeLessThan(MIN_REUSED_BYTES); // the closes alone: a small batch, a new buffer of its size

    // The same chunks, fresh and whole, through the pipeline in this thread.
    const direct = config();
    const core = startSensorCore(direct);
    for (const c of calls) core.pipeline.open(c.meta);
    core.pipeline.open(filler);
    for (const batch of steps) for (const st of batch) core.pipeline.data(st.connId, st.dir, st.data.slice(), st.ts);
    for (const c of calls) core.pipeline.close(c.meta.connId, ts);
    await core.close();
    const events = (dbPath: string) => {
      const store = openStore(dbPath, { readonly: true });
      try {
        return store.list({ limit: 100 }).map((r) => r.event).sort((a, b) => String(a.event_id).localeCompare(String(b.event_id)));
      } finally {
        store.close();
      }
    };
    const viaWorker = events(cfg.dbPath);
    expect(viaWorker.filter((e) => e.event_type === "ai.response").length).toBe(2);
    expect(viaWorker).toEqual(events(direct.dbPath));
  });

  test("a store that cannot be opened or a bad exporter flag fails the start with the sensor's own error", async () => {
    const cfg = config();
    fs.mkdirSync(cfg.dbPath); // a directory where the database file should be
    await expect(startSensorWorker(cfg)).rejects.toThrow(/oisp\.db/);
    const bad = config({ exportValues: { export: ["carrier-pigeon"] } });
    const err = await startSensorWorker(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain("--export");
  });
});
