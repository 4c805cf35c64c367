// Exporters from a TOML file (`--config FILE`): each [export.<kind>] table turns that exporter on, with
// the same options as the flags. Flags given on the command line win over the file; --export adds kinds.
//
//   [export]
//   spool_mb = 256
//   batch_size = 100
//
//   [export.otlp]
//   endpoint = "https://otlp.example.com"
//   protocol = "http/protobuf"          # or "http/json", "grpc"
//   headers = { authorization = "Bearer ..." }
//
//   [export.webhook]
//   url = "https://hooks.example.com/oisp"
//   secret = "..."                      # or $OISP_WEBHOOK_SECRET
//
//   [export.kafka]
//   brokers = ["k1:9092", "k2:9092"]
//   topic = "ai-events"
//   sasl = { mechanism = "scram-sha-512", username = "oisp", password = "..." }
//   tls = true
//
//   [export.jsonl]
//   path = "/var/log/oisp/events.jsonl"
//   max_mb = 100
//   keep = 5
import type { ExportFlagValues } from "./index.ts";
import type { ExportFile } from "./config-schema.ts";
import { arrayOf, boolean, either, int, oneOf, recordOf, strictObject, string } from "../util/plain-check.ts";

const headers = recordOf(string);
const positive = int(1);

/** config-schema.ts's ExportFileSchema as a yes/no check: a valid table needs no zod (src/util/plain-check.ts). */
export const plainValidExport = strictObject({
  spool_mb: positive,
  batch_size: positive,
  otlp: strictObject({ endpoint: string, protocol: oneOf("http/protobuf", "http/json", "grpc"), headers }),
  webhook: strictObject({ url: string, secret: string, headers }, ["url"]),
  kafka: strictObject(
    {
      brokers: either(arrayOf(string, 1), string),
      topic: string,
      client_id: string,
      sasl: strictObject({ mechanism: oneOf("plain", "scram-sha-256", "scram-sha-512"), username: string, password: string }, ["mechanism", "username"]),
      tls: boolean,
      ca: string,
    },
    ["brokers"],
  ),
  jsonl: strictObject({ path: string, max_mb: positive, keep: positive }),
});

/** The export options in a TOML config file, as the flag values startExporters takes. Throws with the path of every problem. */
export function exportValuesFromToml(text: string, file = "config"): ExportFlagValues {
  let doc: unknown;
  try {
    doc = Bun.TOML.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid TOML: ${(err as Error).message}`);
  }
  const section = (doc as { export?: unknown }).export;
  if (section === undefined) return {};
  // A table the plain check refuses goes to the zod schema, which names every problem.
  const e: ExportFile = plainValidExport(section)
    ? (section as ExportFile)
    : (require("./config-schema.ts") as typeof import("./config-schema.ts")).parseExportSection(section, file);
  const headers = (h: Record<string, string> | undefined) => (h ? Object.entries(h).map(([k, v]) => `${k}=${v}`) : undefined);
  const v: ExportFlagValues = {};
  const kinds: string[] = [];
  if (e.spool_mb !== undefined) v["export-spool-mb"] = String(e.spool_mb);
  if (e.batch_size !== undefined) v["export-batch-size"] = String(e.batch_size);
  if (e.otlp) {
    kinds.push("otlp");
    if (e.otlp.endpoint) v["otlp-endpoint"] = e.otlp.endpoint;
    if (e.otlp.protocol) v["otlp-protocol"] = e.otlp.protocol;
    if (e.otlp.headers) v["otlp-header"] = headers(e.otlp.headers);
  }
  if (e.webhook) {
    kinds.push("webhook");
    v["webhook-url"] = e.webhook.url;
    if (e.webhook.secret) v["webhook-secret"] = e.webhook.secret;
    if (e.webhook.headers) v["webhook-header"] = headers(e.webhook.headers);
  }
  if (e.kafka) {
    kinds.push("kafka");
    v["kafka-brokers"] = Array.isArray(e.kafka.brokers) ? e.kafka.brokers.join(",") : e.kafka.brokers;
    if (e.kafka.topic) v["kafka-topic"] = e.kafka.topic;
    if (e.kafka.client_id) v["kafka-client-id"] = e.kafka.client_id;
    if (e.kafka.sasl) {
      v["kafka-sasl-mechanism"] = e.kafka.sasl.mechanism;
      v["kafka-sasl-username"] = e.kafka.sasl.username;
      if (e.kafka.sasl.password) v["kafka-sasl-password"] = e.kafka.sasl.password;
    }
    if (e.kafka.tls !== undefined) v["kafka-tls"] = e.kafka.tls;
    if (e.kafka.ca) v["kafka-ca"] = e.kafka.ca;
  }
  if (e.jsonl) {
    kinds.push("jsonl");
    if (e.jsonl.path) v["jsonl-path"] = e.jsonl.path;
    if (e.jsonl.max_mb !== undefined) v["jsonl-max-mb"] = String(e.jsonl.max_mb);
    if (e.jsonl.keep !== undefined) v["jsonl-keep"] = String(e.jsonl.keep);
  }
  if (kinds.length) v.export = kinds;
  return v;
}

/** File values overridden by flags; --export kinds from both. */
export function mergeExportValues(fromFile: ExportFlagValues, fromFlags: ExportFlagValues & Record<string, unknown>): ExportFlagValues {
  const out: ExportFlagValues & Record<string, unknown> = { ...fromFile };
  for (const [k, val] of Object.entries(fromFlags)) if (val !== undefined) out[k] = val;
  const kinds = [...(fromFile.export ?? []), ...(fromFlags.export ?? [])];
  if (kinds.length) out.export = kinds;
  return out;
}
