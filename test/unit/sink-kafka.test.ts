// Kafka export. No Kafka broker can run on this machine (Debian has no kafka package and nothing else
// here ships one), so what a broker does with the messages is not tested: only the message mapping,
// and that the real kafkajs client failing to reach a broker leaves every event queued and spooled.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { OispEvent } from "../../src/events/index.ts";
import { BatchSpool, ExportQueue, KafkaExporter, kafkaMessage } from "../../src/sinks/index.ts";
import { aiExchange, PROCESSES } from "../support/event-fixtures.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-kafka-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test("one message per event: OISP JSON value, keyed by host and process, with type and ids as headers", () => {
  const [request] = aiExchange({ tsMs: Date.parse("2026-03-01T10:00:00Z"), process: PROCESSES.node }) as unknown as OispEvent[];
  const m = kafkaMessage(request!, "batch-1");
  expect(m.key).toBe("dev-laptop/node:5151");
  expect(JSON.parse(m.value)).toEqual(JSON.parse(JSON.stringify(request)));
  expect(m.headers).toMatchObject({ "oisp-event-type": "ai.request", "oisp-event-id": request!.event_id, "oisp-batch-id": "batch-1" });
});

test("an unreachable broker: kafkajs errors reach the queue, events are kept and spooled, nothing dropped", async () => {
  // A port that was just free: connection refused.
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const events = aiExchange({ tsMs: Date.parse("2026-03-01T10:00:00Z") }) as unknown as OispEvent[];
  const queue = new ExportQueue(new KafkaExporter({ brokers: [`127.0.0.1:${port}`], topic: "ai-events", timeoutMs: 500 }), {
    flushMs: 5,
    initialBackoffMs: 50,
    closeTimeoutMs: 300,
    spool: new BatchSpool({ dir, maxBytes: 1 << 20 }),
  });
  queue.write(events);
  const deadline = Date.now() + 8000;
  while (queue.stats().failedAttempts === 0 && Date.now() < deadline) await Bun.sleep(50);
  expect(queue.stats().failedAttempts).toBeGreaterThan(0);
  expect(queue.stats().lastError).toContain("kafka ai-events");
  await queue.close();
  expect(queue.stats()).toMatchObject({ sent: 0, dropped: 0, spooledBatches: 1 });
}, 15_000);
