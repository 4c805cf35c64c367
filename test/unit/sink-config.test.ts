// Exporters from a TOML config file, merged with flags.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { exportValuesFromToml, mergeExportValues, plainValidExport } from "../../src/sinks/config.ts";
import { expectCheckAgreesWithSchema } from "../support/plain-check-agreement.ts";
import { startExporters } from "../../src/sinks/index.ts";
import { silentLogger } from "../../src/util/log.ts";

const TOML = `
[sensor]
unrelated = true

[export]
spool_mb = 64
batch_size = 50

[export.otlp]
endpoint = "https://otlp.example.com"
protocol = "grpc"
headers = { authorization = "Bearer abc", "x-team" = "ml" }

[export.kafka]
brokers = ["k1:9092", "k2:9092"]
topic = "ai-events"
sasl = { mechanism = "scram-sha-512", username = "oisp", password = "pw" }
tls = true

[export.jsonl]
max_mb = 10
`;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-sinkcfg-"));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

test("each [export.<kind>] table turns that exporter on, with the flags' options", () => {
  expect(exportValuesFromToml(TOML)).toEqual({
    export: ["otlp", "kafka", "jsonl"],
    "export-spool-mb": "64",
    "export-batch-size": "50",
    "otlp-endpoint": "https://otlp.example.com",
    "otlp-protocol": "grpc",
    "otlp-header": ["authorization=Bearer abc", "x-team=ml"],
    "kafka-brokers": "k1:9092,k2:9092",
    "kafka-topic": "ai-events",
    "kafka-sasl-mechanism": "scram-sha-512",
    "kafka-sasl-username": "oisp",
    "kafka-sasl-password": "pw",
    "kafka-tls": true,
    "jsonl-max-mb": "10",
  });
  expect(exportValuesFromToml("[sensor]\nx = 1\n")).toEqual({});
});

test("flags win over the file; --export adds kinds", () => {
  const merged = mergeExportValues(exportValuesFromToml(TOML), { export: ["webhook"], "webhook-url": "http://127.0.0.1:9/h", "otlp-protocol": "http/json", db: "x.db" });
  expect(merged.export).toEqual(["otlp", "kafka", "jsonl", "webhook"]);
  expect(merged["otlp-protocol"]).toBe("http/json");
  expect(merged["otlp-endpoint"]).toBe("https://otlp.example.com");
});

test("mistakes are reported with where they are", () => {
  expect(() => exportValuesFromToml("[export.otlp]\nendpont = 'x'\n", "oisp.toml")).toThrow(/oisp\.toml: \[export\]:.*endpont/);
  expect(() => exportValuesFromToml("[export.kafka]\ntopic = 'x'\n")).toThrow(/brokers/);
  expect(() => exportValuesFromToml("[export\n")).toThrow(/not valid TOML/);
});

test("a config file's exporters start like flags do", async () => {
  const outs = startExporters({ values: exportValuesFromToml(`[export.jsonl]\npath = "${path.join(dataDir, "x.jsonl")}"\n[export.webhook]\nurl = "http://127.0.0.1:9/h"\n`), dataDir, redaction: "safe", env: {} }, silentLogger);
  expect(outs.map((o) => o.name)).toEqual(["jsonl", "webhook"]);
  await Promise.all(outs.map((o) => o.close()));
});

test("the plain check (no zod) accepts only what the schema accepts; every key of a valid table passes it", () => {
  const full = {
    spool_mb: 1,
    batch_size: 2,
    otlp: { endpoint: "", protocol: "http/json", headers: { a: "b" } },
    webhook: { url: "https://h", secret: "s", headers: {} },
    kafka: { brokers: "k:9092", topic: "t", client_id: "c", sasl: { mechanism: "plain", username: "u", password: "p" }, tls: false, ca: "ca.pem" },
    jsonl: { path: "p", max_mb: 3, keep: 4 },
  };
  const accepted: unknown[] = [{}, full, (Bun.TOML.parse(TOML) as { export: unknown }).export, { kafka: { brokers: ["a"] } }, { webhook: { url: "" } }, { otlp: {} }];
  const refused: unknown[] = [
    null, [], 1, { other: {} }, { spool_mb: 0 }, { spool_mb: 1.5 }, { batch_size: "5" }, { batch_size: 2 ** 60 }, { otlp: { endpont: "x" } },
    { otlp: { protocol: "http" } }, { otlp: { headers: { a: 1 } } }, { otlp: { headers: [] } }, { webhook: {} }, { webhook: { url: 1 } },
    { kafka: {} }, { kafka: { brokers: [] } }, { kafka: { brokers: [1] } }, { kafka: { brokers: "k", sasl: { mechanism: "plain" } } },
    { kafka: { brokers: "k", sasl: { mechanism: "md5", username: "u" } } }, { kafka: { brokers: "k", tls: "yes" } }, { jsonl: { keep: 0 } },
    { jsonl: { path: null } }, JSON.parse('{"__proto__": {"spool_mb": 1}}'), { otlp: { headers: JSON.parse('{"__proto__": "x"}') } },
  ];
  const { ExportFileSchema } = require("../../src/sinks/config-schema.ts") as typeof import("../../src/sinks/config-schema.ts");
  expectCheckAgreesWithSchema(plainValidExport, ExportFileSchema, accepted, refused);
  expect(Object.keys(full).sort()).toEqual(Object.keys(ExportFileSchema.shape).sort());
});
