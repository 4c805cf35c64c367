// startExporters: flags in, running exporters out (and clear errors for bad flags before anything starts).
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { OispEvent } from "../../src/events/index.ts";
import { startExporters } from "../../src/sinks/index.ts";
import { UsageError } from "../../src/util/args.ts";
import { silentLogger } from "../../src/util/log.ts";
import { aiExchange } from "../support/event-fixtures.ts";

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-exporters-"));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));
const start = (values: Record<string, unknown>) => startExporters({ values, dataDir, redaction: "safe", env: {} }, silentLogger);

test("no --export: no exporters", () => {
  expect(start({})).toEqual([]);
});

test("bad flags are usage errors, before anything starts", () => {
  expect(() => start({ export: ["s3"] })).toThrow(UsageError);
  expect(() => start({ export: ["webhook"] })).toThrow("--webhook-url");
  expect(() => start({ export: ["webhook"], "webhook-url": "ftp://x" })).toThrow(UsageError);
  expect(() => start({ export: ["kafka"] })).toThrow("--kafka-brokers");
  expect(() => start({ export: ["kafka"], "kafka-brokers": "h:9092", "kafka-sasl-mechanism": "gssapi" })).toThrow("scram-sha-256");
  expect(() => start({ export: ["kafka"], "kafka-brokers": "h:9092", "kafka-sasl-mechanism": "plain", "kafka-sasl-username": "u" })).toThrow("password");
  expect(() => start({ export: ["otlp"], "otlp-protocol": "thrift" })).toThrow("http/protobuf");
  expect(() => start({ export: ["otlp"], "otlp-header": ["novalue"] })).toThrow("KEY=VALUE");
  expect(() => start({ export: ["jsonl"], "jsonl-max-mb": "-1" })).toThrow("positive");
});

test("--export may repeat or list kinds; each kind once, spools under the data dir", async () => {
  const outs = start({ export: ["otlp,webhook", "otlp"], "webhook-url": "http://127.0.0.1:9/hook", "otlp-endpoint": "http://127.0.0.1:9" });
  expect(outs.map((o) => o.name)).toEqual(["otlp", "webhook"]);
  expect(fs.existsSync(path.join(dataDir, "spool", "export-webhook"))).toBe(true);
  await Promise.all(outs.map((o) => o.close()));
});

test("--export jsonl writes every event and rotates by size", async () => {
  const file = path.join(dataDir, "out.jsonl");
  const [jsonl] = start({ export: ["jsonl"], "jsonl-path": file, "jsonl-max-mb": "1", "jsonl-keep": "2" });
  const events: OispEvent[] = [];
  // ~1.5 kB per event: 2 000 events ≈ 3 MB → two rotations with a 1 MB limit
  for (let i = 0; i < 1000; i++) events.push(...(aiExchange({ tsMs: Date.parse("2026-03-01T10:00:00Z") + i }) as unknown as OispEvent[]));
  jsonl!.write(events);
  await jsonl!.close();
  const files = [file, `${file}.1`, `${file}.2`].filter((f) => fs.existsSync(f));
  expect(files.length).toBe(3);
  for (const f of files) expect(fs.statSync(f).size).toBeLessThanOrEqual(1024 * 1024);
  const s = jsonl!.stats();
  expect(s.dropped).toBe(0);
  // With keep=2 the oldest rotated file is deleted: what is on disk is the newest events, in order, none torn.
  const lines = files.reverse().flatMap((f) => fs.readFileSync(f, "utf8").trimEnd().split("\n"));
  expect(lines.map((l) => JSON.parse(l).event_id)).toEqual(events.slice(events.length - lines.length).map((e) => e.event_id));
  expect(s.sent).toBe(events.length);
});

test("--export jsonl without a path writes <data dir>/export/events.jsonl (directory created)", async () => {
  const [jsonl] = start({ export: ["jsonl"] });
  jsonl!.write(aiExchange({ tsMs: Date.parse("2026-03-01T10:00:00Z") }) as unknown as OispEvent[]);
  await jsonl!.close();
  expect(fs.readFileSync(path.join(dataDir, "export", "events.jsonl"), "utf8").trim().split("\n")).toHaveLength(2);
  expect(jsonl!.stats()).toMatchObject({ sent: 2, dropped: 0, failedAttempts: 0 });
});

test("the sinks load no OpenTelemetry module until an OTLP exporter starts (the sensor Worker imports them)", () => {
  const sinks = path.join(import.meta.dir, "../../src/sinks/index.ts");
  const script = `
    const { startExporters } = await import(${JSON.stringify(sinks)});
    const otel = () => Object.keys(require.cache).some((k) => k.includes("/node_modules/@opentelemetry/"));
    const cfg = (values) => ({ values, dataDir: require("node:os").tmpdir(), redaction: "safe", env: {} });
    const log = () => {};
    const none = startExporters(cfg({ export: ["webhook"], "webhook-url": "http://127.0.0.1:9/hook" }), log);
    const before = otel();
    const outs = startExporters(cfg({ export: ["otlp"], "otlp-endpoint": "http://127.0.0.1:9" }), log);
    const after = otel();
    await Promise.all([...none, ...outs].map((o) => o.close?.()));
    console.log(JSON.stringify({ before, after }));`;
  const r = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(JSON.parse(r.stdout.toString())).toEqual({ before: false, after: true });
});
