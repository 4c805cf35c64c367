// Kafka export with kafkajs: each OISP event is one message, JSON value, keyed by host and process so a
// partition keeps one process's calls in order. The batch id travels as a header (consumers dedup on
// event_id anyway: at-least-once). kafkajs' own retries are kept short: the export queue does the
// long retrying, with the disk spool behind it.
import fs from "node:fs";
import type { Producer, SASLOptions } from "kafkajs";
import type { OispEvent } from "../events/index.ts";
import { ExportError, type ExportBatch, type Exporter } from "./queue.ts";

export type KafkaSaslMechanism = "plain" | "scram-sha-256" | "scram-sha-512";

export interface KafkaOptions {
  brokers: string[];
  topic: string;
  clientId?: string;
  sasl?: { mechanism: KafkaSaslMechanism; username: string; password: string };
  /** TLS to the brokers; `ca` is a PEM file for a private CA. */
  tls?: boolean;
  ca?: string;
  timeoutMs?: number;
}

export interface KafkaMessage {
  key: string;
  value: string;
  headers: Record<string, string>;
}

/** The message for one event: key "<hostname>/<process name>:<pid>", value the OISP JSON. */
export function kafkaMessage(event: OispEvent, batchId: string): KafkaMessage {
  const host = event.host?.hostname ?? "unknown-host";
  const proc = event.process;
  const key = `${host}/${proc?.name ?? "unknown"}:${proc?.pid ?? 0}`;
  return {
    key,
    value: JSON.stringify(event),
    headers: { "oisp-event-type": event.event_type, "oisp-event-id": event.event_id, "oisp-batch-id": batchId, "content-type": "application/json" },
  };
}

export class KafkaExporter implements Exporter {
  readonly name = "kafka";
  private readonly producer: Producer;
  private connected?: Promise<void>;

  constructor(private readonly opts: KafkaOptions) {
    if (opts.brokers.length === 0) throw new Error("kafka: no brokers (--kafka-brokers host:9092,...)");
    // kafkajs is loaded only when a Kafka exporter is configured (it adds ~13 MB to every sensor otherwise).
    const { Kafka, logLevel } = require("kafkajs") as typeof import("kafkajs");
    const kafka = new Kafka({
      clientId: opts.clientId ?? "oisp-sensor",
      brokers: opts.brokers,
      ...(opts.tls || opts.ca ? { ssl: opts.ca ? { ca: [fs.readFileSync(opts.ca, "utf8")] } : true } : {}),
      ...(opts.sasl && { sasl: opts.sasl as SASLOptions }),
      connectionTimeout: opts.timeoutMs ?? 5000,
      requestTimeout: opts.timeoutMs ?? 10_000,
      retry: { retries: 2, initialRetryTime: 200 },
      logLevel: logLevel.NOTHING, // failures reach the queue, which logs them once per episode
    });
    this.producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  }

  async send(batch: ExportBatch): Promise<void> {
    try {
      this.connected ??= this.producer.connect();
      await this.connected;
      await this.producer.send({ topic: this.opts.topic, acks: -1, messages: batch.events.map((e) => kafkaMessage(e, batch.id)) });
    } catch (err) {
      this.connected = undefined; // reconnect on the next attempt
      throw new ExportError(`kafka ${this.opts.topic}: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    await this.producer.disconnect().catch(() => {});
  }
}
