// Webhook export against a real local HTTP receiver that fails on purpose: nothing is lost, duplicates
// only ever carry an idempotency key already seen (at-least-once), every POST is signed, a restart
// replays the spool with the same batch ids, and the bounds hold when the receiver stays down.
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { OispEvent } from "../../src/events/index.ts";
import { BatchSpool, ExportQueue, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verifyWebhook, WebhookExporter } from "../../src/sinks/index.ts";
import { aiExchange } from "../support/event-fixtures.ts";

const SECRET = "whsec_test_0123456789";
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-webhook-"));
  dirs.push(d);
  return d;
}

function sampleEvents(calls: number, t0 = Date.parse("2026-03-01T10:00:00Z")): OispEvent[] {
  const out: OispEvent[] = [];
  for (let i = 0; i < calls; i++) out.push(...(aiExchange({ tsMs: t0 + i * 1000, toolCalls: i % 4 === 0 ? [{ name: "read_file", arguments: "{}" }] : undefined }) as unknown as OispEvent[]));
  return out;
}

interface Received {
  key: string;
  status: number;
  signatureOk: boolean;
  eventIds: string[];
  body: string;
}

/** Answers each POST with whatever `decide` says, and records it. */
function receiver(decide: (attempt: number) => number | Response) {
  const log: Received[] = [];
  let attempt = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (req) => {
      const body = await req.text();
      const answer = decide(++attempt);
      const status = typeof answer === "number" ? answer : answer.status;
      const parsed = JSON.parse(body) as { batch_id: string; events: Array<{ event_id: string }> };
      const key = req.headers.get(IDEMPOTENCY_HEADER) ?? "";
      expect(parsed.batch_id).toBe(key);
      log.push({
        key,
        status,
        signatureOk: verifyWebhook(SECRET, body, req.headers.get(SIGNATURE_HEADER), Math.floor(Date.now() / 1000)),
        eventIds: parsed.events.map((e) => e.event_id),
        body,
      });
      return typeof answer === "number" ? new Response(null, { status: answer }) : answer;
    },
  });
  return { server, log, url: `http://127.0.0.1:${server.port}/hook?token=secret-in-query` };
}

/** Events the receiver accepted (2xx), deduplicated by idempotency key as a receiver would. */
function delivered(log: Received[]): string[] {
  const seen = new Map<string, string[]>();
  for (const r of log) if (r.status < 300 && !seen.has(r.key)) seen.set(r.key, r.eventIds);
  return [...seen.values()].flat();
}

describe("receiver failing the first attempts", () => {
  test("nothing lost, nothing duplicated beyond one idempotency key, every POST signed", async () => {
    // 503, 503, 429 (Retry-After 0), 500, then accept everything.
    const r = receiver((n) => (n === 3 ? new Response(null, { status: 429, headers: { "retry-after": "0" } }) : n <= 4 ? 503 : 200));
    const events = sampleEvents(40); // 40 calls (10 with a tool call) → 90 events
    const queue = new ExportQueue(new WebhookExporter({ url: r.url, secret: SECRET }), {
      batchSize: 25,
      flushMs: 10,
      initialBackoffMs: 10,
      maxBackoffMs: 50,
      spool: new BatchSpool({ dir: tempDir(), maxBytes: 8 << 20 }),
    });
    for (let i = 0; i < events.length; i += 7) queue.write(events.slice(i, i + 7));
    expect(await queue.flush(10_000)).toBe(true);
    await queue.close();
    r.server.stop(true);

    const got = delivered(r.log);
    expect(got.sort()).toEqual(events.map((e) => e.event_id).sort()); // all, once each after dedup
    expect(new Set(got).size).toBe(events.length);
    // The four failures were retries of the same first batch: same key, same body.
    const failed = r.log.filter((x) => x.status >= 300);
    expect(failed).toHaveLength(4);
    expect(new Set(failed.map((x) => x.key)).size).toBe(1);
    const firstOk = r.log.find((x) => x.key === failed[0]!.key && x.status === 200)!;
    expect(JSON.parse(firstOk.body).events).toEqual(JSON.parse(failed[0]!.body).events);
    // Any event seen twice came under the same key (a retry), never in two different batches.
    const keysByEvent = new Map<string, Set<string>>();
    for (const x of r.log) for (const id of x.eventIds) keysByEvent.set(id, (keysByEvent.get(id) ?? new Set()).add(x.key));
    for (const keys of keysByEvent.values()) expect(keys.size).toBe(1);
    expect(r.log.every((x) => x.signatureOk)).toBe(true);
    expect(queue.stats()).toMatchObject({ sent: events.length, dropped: 0, failedAttempts: 4, state: "closed" });
  });

  test("a wrong secret or an old timestamp does not verify", () => {
    const body = '{"batch_id":"x","events":[]}';
    const now = 1_780_000_000;
    const good = `t=${now},v1=${new Bun.CryptoHasher("sha256", SECRET).update(`${now}.${body}`).digest("hex")}`;
    expect(verifyWebhook(SECRET, body, good, now)).toBe(true);
    expect(verifyWebhook("other", body, good, now)).toBe(false);
    expect(verifyWebhook(SECRET, `${body} `, good, now)).toBe(false);
    expect(verifyWebhook(SECRET, body, good, now + 301)).toBe(false);
    expect(verifyWebhook(SECRET, body, undefined, now)).toBe(false);
  });
});

test("a restart replays the spool with the same batch ids", async () => {
  const dir = tempDir();
  const down = receiver(() => 503);
  const events = sampleEvents(10);
  const first = new ExportQueue(new WebhookExporter({ url: down.url, secret: SECRET }), {
    batchSize: 10,
    flushMs: 5,
    initialBackoffMs: 10,
    maxBackoffMs: 20,
    closeTimeoutMs: 200,
    spool: new BatchSpool({ dir, maxBytes: 8 << 20 }),
  });
  first.write(events);
  await Bun.sleep(100);
  await first.close();
  down.server.stop(true);
  const triedKeys = new Set(down.log.map((x) => x.key));
  expect(triedKeys.size).toBeGreaterThan(0);
  expect(first.stats()).toMatchObject({ sent: 0, dropped: 0, queued: 0 });
  expect(first.stats().spooledBatches).toBe(Math.ceil(events.length / 10));

  const up = receiver(() => 200);
  const second = new ExportQueue(new WebhookExporter({ url: up.url, secret: SECRET }), { flushMs: 5, spool: new BatchSpool({ dir, maxBytes: 8 << 20 }) });
  expect(await second.flush(5000)).toBe(true);
  await second.close();
  up.server.stop(true);
  expect(delivered(up.log).sort()).toEqual(events.map((e) => e.event_id).sort());
  // The batch that was being retried when the sensor stopped went out again under the key it had.
  for (const key of triedKeys) expect(up.log.some((x) => x.key === key)).toBe(true);
  expect(fs.readdirSync(dir).filter((n) => n.endsWith(".jsonl"))).toEqual([]);
});

test("a batch retried while newer events overflow into the spool is replayed before them", async () => {
  // Receiver down: the first batch is retried while the next ones overflow memory (5 events) into the
  // spool; the restart must deliver in the order the events happened, the retried batch first.
  const dir = tempDir();
  const down = receiver(() => 503);
  const events = sampleEvents(7); // 16 events: batches of 5
  const first = new ExportQueue(new WebhookExporter({ url: down.url, secret: SECRET }), {
    batchSize: 5,
    maxQueued: 5,
    flushMs: 5,
    initialBackoffMs: 10,
    maxBackoffMs: 20,
    closeTimeoutMs: 100,
    spool: new BatchSpool({ dir, maxBytes: 8 << 20 }),
  });
  first.write(events.slice(0, 5));
  const deadline = Date.now() + 15_000;
  while (first.stats().failedAttempts === 0 && Date.now() < deadline) await Bun.sleep(10);
  first.write(events.slice(5));
  await first.close();
  down.server.stop(true);
  expect(first.stats()).toMatchObject({ sent: 0, dropped: 0 });

  const up = receiver(() => 200);
  const second = new ExportQueue(new WebhookExporter({ url: up.url, secret: SECRET }), { flushMs: 5, spool: new BatchSpool({ dir, maxBytes: 8 << 20 }) });
  expect(await second.flush(5000)).toBe(true);
  await second.close();
  up.server.stop(true);
  expect(delivered(up.log)).toEqual(events.map((e) => e.event_id));
  expect(up.log[0]!.key).toBe(down.log[0]!.key); // the retried batch, under the key it had
});

test("the retried batch moved to the spool mid-send leaves it once the receiver is back, sent once", async () => {
  let up = false;
  const r = receiver(() => (up ? 200 : 503));
  const dir = tempDir();
  const events = sampleEvents(7); // 16 events: batches of 5
  const queue = new ExportQueue(new WebhookExporter({ url: r.url, secret: SECRET }), {
    batchSize: 5,
    maxQueued: 5,
    flushMs: 5,
    initialBackoffMs: 10,
    maxBackoffMs: 20,
    spool: new BatchSpool({ dir, maxBytes: 8 << 20 }),
  });
  queue.write(events.slice(0, 5));
  const deadline = Date.now() + 15_000;
  while (queue.stats().failedAttempts === 0 && Date.now() < deadline) await Bun.sleep(10);
  queue.write(events.slice(5));
  up = true;
  expect(await queue.flush(5000)).toBe(true);
  await queue.close();
  r.server.stop(true);
  expect(delivered(r.log)).toEqual(events.map((e) => e.event_id));
  expect(r.log.filter((x) => x.status === 200).length).toBe(new Set(r.log.map((x) => x.key)).size);
  expect(queue.stats()).toMatchObject({ sent: events.length, dropped: 0, spooledBatches: 0 });
});

test("a 4xx other than 408/429 drops the batch (counted) and moves on", async () => {
  const r = receiver((n) => (n === 1 ? 400 : 200));
  const events = sampleEvents(4); // 9 events: the first batch of 5 is refused
  const queue = new ExportQueue(new WebhookExporter({ url: r.url }), { batchSize: 5, flushMs: 5, initialBackoffMs: 10 });
  queue.write(events);
  expect(await queue.flush(5000)).toBe(true);
  await queue.close();
  const port = r.server.port;
  r.server.stop(true);
  expect(queue.stats()).toMatchObject({ sent: events.length - 5, dropped: 5, failedAttempts: 1 });
  expect(delivered(r.log)).toEqual(events.slice(5).map((e) => e.event_id));
  expect(queue.stats().lastError).toBe(`POST http://127.0.0.1:${port}/hook: HTTP 400`); // no query token in logs
});

test("receiver down: memory, then spool, then counted drops; write() never blocks", async () => {
  const r = receiver(() => 503);
  const dir = tempDir();
  const queue = new ExportQueue(new WebhookExporter({ url: r.url }), {
    batchSize: 10,
    maxQueued: 30,
    flushMs: 5,
    initialBackoffMs: 1000,
    closeTimeoutMs: 100,
    spool: new BatchSpool({ dir, maxBytes: 40_000 }), // a few batches of ~1.5 kB events
  });
  const events = sampleEvents(100); // 225 events
  const t = performance.now();
  queue.write(events);
  expect(performance.now() - t).toBeLessThan(500);
  const s = queue.stats();
  expect(s.queued).toBeLessThanOrEqual(30 + 10); // memory bound (+ the batch in flight)
  expect(s.spooledBytes).toBeLessThanOrEqual(40_000);
  expect(s.spooledBatches).toBeGreaterThan(0);
  expect(s.dropped).toBeGreaterThan(0);
  expect(s.queued + s.spooledBatches * 10 + s.dropped).toBe(events.length);
  await queue.close();
  r.server.stop(true);
});
