// The exporters' command-line flags, apart from the exporters themselves: `oisp up`'s relay thread parses
// them but never runs an exporter (its sensor Worker does), so it must not load OTLP/gRPC and kafkajs.
import type { FlagSpec } from "../util/args.ts";

export const EXPORT_KINDS = ["otlp", "webhook", "kafka", "jsonl"] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

export const exportFlagSpec = {
  export: { type: "string", multiple: true },
  "otlp-endpoint": { type: "string" },
  "otlp-protocol": { type: "string" },
  "otlp-header": { type: "string", multiple: true },
  "webhook-url": { type: "string" },
  "webhook-secret": { type: "string" },
  "webhook-header": { type: "string", multiple: true },
  "kafka-brokers": { type: "string" },
  "kafka-topic": { type: "string" },
  "kafka-client-id": { type: "string" },
  "kafka-sasl-mechanism": { type: "string" },
  "kafka-sasl-username": { type: "string" },
  "kafka-sasl-password": { type: "string" },
  "kafka-tls": { type: "boolean" },
  "kafka-ca": { type: "string" },
  "jsonl-path": { type: "string" },
  "jsonl-max-mb": { type: "string" },
  "jsonl-keep": { type: "string" },
  "export-spool-mb": { type: "string" },
  "export-batch-size": { type: "string" },
} satisfies FlagSpec;

export const exportFlagsHelp = `  --export KIND           send events to otlp, webhook, kafka or jsonl (repeatable). Network exporters
                          queue in memory, spool to disk while the backend is down, and retry.
  --otlp-endpoint URL     OTLP base URL (default http://127.0.0.1:4318, /v1/traces and /v1/metrics;
                          grpc: http://127.0.0.1:4317, https:// for TLS); HOST:PORT means http://HOST:PORT
  --otlp-protocol P       http/protobuf (default; grpc when the endpoint's port is 4317), http/json or grpc
  --otlp-header K=V       header for hosted backends (repeatable), e.g. authorization=Bearer...
  --webhook-url URL       batched JSON POSTs with an Idempotency-Key header
  --webhook-secret S      sign each POST: X-OISP-Signature t=<unix>,v1=HMAC-SHA256(S, "<t>.<body>")
                          (or $OISP_WEBHOOK_SECRET)
  --webhook-header K=V    extra header (repeatable)
  --kafka-brokers LIST    h1:9092,h2:9092
  --kafka-topic T         topic (default oisp-events); values are OISP JSON keyed by host/process:pid
  --kafka-sasl-mechanism  plain, scram-sha-256 or scram-sha-512, with --kafka-sasl-username and
                          --kafka-sasl-password (or $OISP_KAFKA_PASSWORD)
  --kafka-tls             TLS to the brokers; --kafka-ca FILE for a private CA
  --jsonl-path FILE       JSONL export file (default <data dir>/export/events.jsonl)
  --jsonl-max-mb N        rotate past N MB (default 100), keeping --jsonl-keep N old files (default 5)
  --export-spool-mb N     disk spool per network exporter (default 256)
  --export-batch-size N   events per batch (default 100)`;

export type ExportFlagValues = {
  [K in keyof typeof exportFlagSpec]?: (typeof exportFlagSpec)[K] extends { multiple: true } ? string[] : (typeof exportFlagSpec)[K] extends { type: "boolean" } ? boolean : string;
};
