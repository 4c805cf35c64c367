// Exporters chosen with `--export otlp|webhook|kafka|jsonl` (repeatable) on `oisp sensor` / `oisp up`.
// Each network exporter sits behind an ExportQueue (bounded memory, disk spool under the data dir,
// retry with backoff); JSONL writes locally with size-based rotation. All of them are EventOutputs
// with stats() for `oisp status` and close() for shutdown.
import fs from "node:fs";
import path from "node:path";
import type { OispEvent } from "../events/index.ts";
import type { EventOutput } from "../events/output.ts";
import { asList, UsageError } from "../util/args.ts";
import type { Logger } from "../util/log.ts";
import { EXPORT_KINDS, type ExportFlagValues, type ExportKind } from "./flags.ts";
import { JsonlSink } from "./jsonl.ts";
import { KafkaExporter, type KafkaSaslMechanism } from "./kafka.ts";
import { OtlpExporter, type OtlpProtocol } from "./otlp.ts";
import { ExportQueue, type Exporter, type ExporterStats } from "./queue.ts";
import { BatchSpool } from "./spool.ts";
import { WebhookExporter } from "./webhook.ts";

export { ExportQueue, ExportError, type Exporter, type ExportBatch, type ExporterStats } from "./queue.ts";
export { BatchSpool } from "./spool.ts";
export { OtlpExporter } from "./otlp.ts";
export { WebhookExporter, signWebhook, verifyWebhook, SIGNATURE_HEADER, IDEMPOTENCY_HEADER } from "./webhook.ts";
export { KafkaExporter, kafkaMessage } from "./kafka.ts";

export { EXPORT_KINDS, exportFlagSpec, exportFlagsHelp, type ExportFlagValues, type ExportKind } from "./flags.ts";

export interface ExportConfig {
  /** Parsed flags (exportFlagSpec); unknown keys are ignored so the whole command's values can be passed. */
  values: ExportFlagValues & Record<string, unknown>;
  dataDir: string;
  /** Message content goes to OTLP only in full mode. */
  redaction: string;
  /** Environment for secrets (default process.env). */
  env?: Record<string, string | undefined>;
}

/** An exporter as the pipeline sees it, plus what `oisp status` and shutdown need. */
export interface ExporterOutput extends EventOutput {
  readonly name: string;
  stats(): ExporterStats;
  close(): Promise<void>;
}

/**
 * Builds the exporters the flags ask for. Throws UsageError on a bad flag before anything starts.
 * Returns [] when no --export is given.
 */
export function startExporters(cfg: ExportConfig, log: Logger): ExporterOutput[] {
  const v = cfg.values;
  const env = cfg.env ?? process.env;
  const kinds = asList(v.export).flatMap((k) => k.split(",")).map((k) => k.trim().toLowerCase()).filter(Boolean);
  for (const k of kinds) if (!(EXPORT_KINDS as readonly string[]).includes(k)) throw new UsageError(`--export: expected ${EXPORT_KINDS.join(", ")}, got "${k}"`);
  const unique = [...new Set(kinds)] as ExportKind[];
  const batchSize = positiveInt(v["export-batch-size"], "--export-batch-size", 100);
  const spoolBytes = positiveInt(v["export-spool-mb"], "--export-spool-mb", 256) * 1024 * 1024;

  const exporters: Exporter[] = [];
  const outputs: ExporterOutput[] = [];
  for (const kind of unique) {
    if (kind === "jsonl") {
      const file = path.resolve(v["jsonl-path"] ?? path.join(cfg.dataDir, "export", "events.jsonl"));
      outputs.push(jsonlOutput(file, positiveInt(v["jsonl-max-mb"], "--jsonl-max-mb", 100), positiveInt(v["jsonl-keep"], "--jsonl-keep", 5), log));
    } else if (kind === "otlp") {
      const { endpoint, protocol } = otlpTarget(v["otlp-endpoint"], v["otlp-protocol"]);
      exporters.push(
        new OtlpExporter({
          endpoint,
          protocol,
          headers: headerFlags(v["otlp-header"], "--otlp-header"),
          includeContent: cfg.redaction === "full",
        }),
      );
    } else if (kind === "webhook") {
      if (!v["webhook-url"]) throw new UsageError("--export webhook needs --webhook-url URL");
      exporters.push(
        new WebhookExporter({
          url: urlFlag(v["webhook-url"], "--webhook-url"),
          secret: v["webhook-secret"] ?? env.OISP_WEBHOOK_SECRET,
          headers: headerFlags(v["webhook-header"], "--webhook-header"),
        }),
      );
    } else {
      if (!v["kafka-brokers"]) throw new UsageError("--export kafka needs --kafka-brokers host:9092[,host:9092]");
      const mechanism = v["kafka-sasl-mechanism"]?.toLowerCase();
      if (mechanism && !["plain", "scram-sha-256", "scram-sha-512"].includes(mechanism)) {
        throw new UsageError(`--kafka-sasl-mechanism: expected plain, scram-sha-256 or scram-sha-512, got "${mechanism}"`);
      }
      const password = v["kafka-sasl-password"] ?? env.OISP_KAFKA_PASSWORD;
      if (mechanism && (!v["kafka-sasl-username"] || !password)) throw new UsageError("--kafka-sasl-mechanism needs --kafka-sasl-username and a password");
      exporters.push(
        new KafkaExporter({
          brokers: v["kafka-brokers"].split(",").map((b) => b.trim()).filter(Boolean),
          topic: v["kafka-topic"] ?? "oisp-events",
          clientId: v["kafka-client-id"],
          ...(mechanism && { sasl: { mechanism: mechanism as KafkaSaslMechanism, username: v["kafka-sasl-username"]!, password: password! } }),
          tls: v["kafka-tls"] === true,
          ca: v["kafka-ca"],
        }),
      );
    }
  }
  for (const exporter of exporters) {
    const spool = new BatchSpool({
      dir: path.join(cfg.dataDir, "spool", `export-${exporter.name}`),
      maxBytes: spoolBytes,
      onLoss: (m) => log("warn", `export ${exporter.name}: ${m}`),
    });
    if (spool.pendingBatches > 0) log("info", `export ${exporter.name}: ${spool.pendingBatches} batch(es) spooled by an earlier run will be sent first`);
    outputs.push(new ExportQueue(exporter, { batchSize, spool, log }));
  }
  for (const o of outputs) log("info", `exporting to ${o.name}`);
  return outputs;
}

function jsonlOutput(file: string, maxMb: number, keep: number, log: Logger): ExporterOutput {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const sink = new JsonlSink(file, { maxBytes: maxMb * 1024 * 1024, keep, onError: (e) => log("warn", `export jsonl: ${e.message}`) });
  return {
    name: "jsonl",
    write(events: OispEvent[]) {
      for (const e of events) sink.write(e);
    },
    stats(): ExporterStats {
      const s = sink.stats();
      return {
        name: "jsonl",
        state: "ok",
        sent: s.written,
        sentBatches: 0,
        queued: 0,
        spooledBatches: 0,
        spooledBytes: s.pendingBytes,
        dropped: s.dropped,
        failedAttempts: s.errors,
        ...(s.lastError !== undefined && { lastError: s.lastError }),
      };
    },
    async close() {
      sink.close();
    },
  };
}

function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${flag}: expected a positive whole number, got "${value}"`);
  return n;
}

/**
 * The OTLP endpoint and protocol from --otlp-endpoint / --otlp-protocol, as collectors read them: the seed's
 * `host:4317` (no scheme) is http://host:4317, and without --otlp-protocol port 4317 (OTLP's gRPC port) means
 * grpc; anything else defaults to http/protobuf (4318).
 */
export function otlpTarget(endpointFlag: string | undefined, protocolFlag: string | undefined): { endpoint: string; protocol: OtlpProtocol } {
  if (protocolFlag !== undefined && protocolFlag !== "http/protobuf" && protocolFlag !== "http/json" && protocolFlag !== "grpc") {
    throw new UsageError(`--otlp-protocol: expected http/protobuf, http/json or grpc, got "${protocolFlag}"`);
  }
  const given = endpointFlag !== undefined && /^(?:\[[^\]]+\]|[^:/]+):\d+$/.test(endpointFlag) ? `http://${endpointFlag}` : endpointFlag;
  const port = given === undefined ? undefined : URL.parse(given)?.port;
  const protocol = (protocolFlag as OtlpProtocol | undefined) ?? (port === "4317" ? "grpc" : "http/protobuf");
  const endpoint = urlFlag(given ?? (protocol === "grpc" ? "http://127.0.0.1:4317" : "http://127.0.0.1:4318"), "--otlp-endpoint");
  return { endpoint, protocol };
}

function urlFlag(value: string, flag: string): string {
  try {
    const u = new URL(value);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error();
    return value;
  } catch {
    throw new UsageError(`${flag}: expected an http(s) URL, got "${value}"`);
  }
}

function headerFlags(values: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of values ?? []) {
    const i = h.indexOf("=");
    if (i <= 0) throw new UsageError(`${flag}: expected KEY=VALUE, got "${h.split("=")[0]}=…"`);
    out[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1);
  }
  return out;
}
