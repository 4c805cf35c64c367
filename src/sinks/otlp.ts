// OTLP export with the official OpenTelemetry JS SDK and exporters (http/protobuf, http/json or grpc).
// Each batch of OISP events becomes spans (genai.ts: one client span per AI call, execute_tool children)
// that are handed straight to the OTLP trace exporter, so the queue knows whether the backend took
// them and can retry/spool. Metrics (gen_ai.client.token.usage, gen_ai.client.operation.duration) go
// through the SDK's periodic reader with cumulative temporality: a failed metrics export is made up
// by the next one, so nothing is lost there either.
import type { Histogram } from "@opentelemetry/api";
import type { MeterProvider, PushMetricExporter } from "@opentelemetry/sdk-metrics";
import type { BasicTracerProvider, ReadableSpan, SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace-base";
import os from "node:os";
import { VERSION } from "../version.ts";
import type { OispEvent } from "../events/index.ts";
import { obj, requestIdOf } from "../events/read.ts";
import { GenAiCorrelator, requestsMissingFrom, type GenAiCall } from "./genai.ts";
import { ExportError, type ExportBatch, type Exporter } from "./queue.ts";

/**
 * The OTLP exporter packages (with gRPC) add ~30 MB to a process: loaded on first use, so a sensor
 * without an OTLP exporter never pays for them.
 */
/** The OpenTelemetry API (~44 modules, 2-5 MB kept), loaded with the exporter: the sensor Worker imports this file. */
let otelApi: typeof import("@opentelemetry/api") | undefined;
const api = () => (otelApi ??= require("@opentelemetry/api") as typeof import("@opentelemetry/api"));

function otlpModules() {
  return {
    Metadata: (require("@grpc/grpc-js") as typeof import("@grpc/grpc-js")).Metadata,
    OTLPMetricExporterGrpc: (require("@opentelemetry/exporter-metrics-otlp-grpc") as typeof import("@opentelemetry/exporter-metrics-otlp-grpc")).OTLPMetricExporter,
    OTLPMetricExporterJson: (require("@opentelemetry/exporter-metrics-otlp-http") as typeof import("@opentelemetry/exporter-metrics-otlp-http")).OTLPMetricExporter,
    OTLPMetricExporterProto: (require("@opentelemetry/exporter-metrics-otlp-proto") as typeof import("@opentelemetry/exporter-metrics-otlp-proto")).OTLPMetricExporter,
    OTLPTraceExporterGrpc: (require("@opentelemetry/exporter-trace-otlp-grpc") as typeof import("@opentelemetry/exporter-trace-otlp-grpc")).OTLPTraceExporter,
    OTLPTraceExporterJson: (require("@opentelemetry/exporter-trace-otlp-http") as typeof import("@opentelemetry/exporter-trace-otlp-http")).OTLPTraceExporter,
    OTLPTraceExporterProto: (require("@opentelemetry/exporter-trace-otlp-proto") as typeof import("@opentelemetry/exporter-trace-otlp-proto")).OTLPTraceExporter,
    resourceFromAttributes: (require("@opentelemetry/resources") as typeof import("@opentelemetry/resources")).resourceFromAttributes,
    MeterProvider: (require("@opentelemetry/sdk-metrics") as typeof import("@opentelemetry/sdk-metrics")).MeterProvider,
    PeriodicExportingMetricReader: (require("@opentelemetry/sdk-metrics") as typeof import("@opentelemetry/sdk-metrics")).PeriodicExportingMetricReader,
    BasicTracerProvider: (require("@opentelemetry/sdk-trace-base") as typeof import("@opentelemetry/sdk-trace-base")).BasicTracerProvider,
  };
}

export type OtlpProtocol = "http/protobuf" | "http/json" | "grpc";

export interface OtlpOptions {
  /** Base URL, e.g. http://127.0.0.1:4318: traces go to /v1/traces, metrics to /v1/metrics (grpc: the server, e.g. http://127.0.0.1:4317). */
  endpoint: string;
  protocol?: OtlpProtocol;
  headers?: Record<string, string>;
  /** Message content as gen_ai.input/output.messages: only when the sensor runs in full redaction mode. */
  includeContent?: boolean;
  timeoutMs?: number;
  metricIntervalMs?: number;
}

/** semconv's advised bucket boundaries for the two GenAI client metrics. */
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
const DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

/** Collects ended spans synchronously, so a batch's spans can be exported as one unit. */
class CollectingProcessor implements SpanProcessor {
  spans: ReadableSpan[] = [];
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    this.spans.push(span);
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

export class OtlpExporter implements Exporter {
  readonly name = "otlp";
  private readonly spanExporter: SpanExporter;
  private readonly collector = new CollectingProcessor();
  private readonly tracerProvider: BasicTracerProvider;
  private readonly meterProvider: MeterProvider;
  private readonly tokenUsage: Histogram;
  private readonly duration: Histogram;
  private readonly correlator: GenAiCorrelator;
  /** The spans of the batch being retried: built (and its metrics recorded) once, however many attempts. */
  private prepared?: { id: string; spans: ReadableSpan[]; joined: Map<string, OispEvent> };

  constructor(opts: OtlpOptions) {
    const base = opts.endpoint.replace(/\/+$/, "");
    new URL(base); // a bad endpoint fails at startup
    const headers = opts.headers ?? {};
    const timeoutMillis = opts.timeoutMs ?? 10_000;
    let metricExporter: unknown;
    const { Metadata, OTLPTraceExporterGrpc, OTLPMetricExporterGrpc, OTLPTraceExporterJson, OTLPMetricExporterJson, OTLPTraceExporterProto, OTLPMetricExporterProto, resourceFromAttributes, BasicTracerProvider, MeterProvider, PeriodicExportingMetricReader } = otlpModules();
    if (opts.protocol === "grpc") {
      // gRPC carries headers as metadata; an http:// URL means plaintext, https:// TLS.
      const metadata = new Metadata();
      for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
      this.spanExporter = new OTLPTraceExporterGrpc({ url: base, metadata, timeoutMillis });
      metricExporter = new OTLPMetricExporterGrpc({ url: base, metadata, timeoutMillis });
    } else if (opts.protocol === "http/json") {
      this.spanExporter = new OTLPTraceExporterJson({ headers, timeoutMillis, url: `${base}/v1/traces` });
      metricExporter = new OTLPMetricExporterJson({ headers, timeoutMillis, url: `${base}/v1/metrics` });
    } else {
      this.spanExporter = new OTLPTraceExporterProto({ headers, timeoutMillis, url: `${base}/v1/traces` });
      metricExporter = new OTLPMetricExporterProto({ headers, timeoutMillis, url: `${base}/v1/metrics` });
    }
    const resource = resourceFromAttributes({ "service.name": "oisp-sensor", "service.version": VERSION, "host.name": os.hostname() });
    this.tracerProvider = new BasicTracerProvider({ resource, spanProcessors: [this.collector] });
    this.meterProvider = new MeterProvider({
      resource,
      // Same interface; the exporter packages pin their own sdk-metrics patch version, hence the cast.
      readers: [new PeriodicExportingMetricReader({ exporter: metricExporter as PushMetricExporter, exportIntervalMillis: opts.metricIntervalMs ?? 60_000 })],
    });
    const meter = this.meterProvider.getMeter("oisp-sensor", VERSION);
    this.tokenUsage = meter.createHistogram("gen_ai.client.token.usage", {
      unit: "{token}",
      description: "Number of input and output tokens used",
      advice: { explicitBucketBoundaries: TOKEN_BUCKETS },
    });
    this.duration = meter.createHistogram("gen_ai.client.operation.duration", {
      unit: "s",
      description: "GenAI operation duration",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.correlator = new GenAiCorrelator({ includeContent: opts.includeContent ?? false });
  }

  async send(batch: ExportBatch): Promise<void> {
    if (this.prepared?.id !== batch.id) {
      const joined = new Map<string, OispEvent>();
      this.prepared = { id: batch.id, spans: this.toSpans(batch, joined), joined };
    }
    const spans = this.prepared.spans;
    if (spans.length === 0) return;
    const result = await new Promise<{ code: number; error?: Error }>((resolve) => this.spanExporter.export(spans, resolve));
    // ExportResultCode.SUCCESS is 0
    if (result.code !== 0) throw new ExportError(`OTLP traces: ${result.error?.message ?? "export failed"}`);
    this.prepared = undefined;
  }

  /**
   * A batch going to the spool carries the ai.requests of its responses that earlier batches held: those
   * were acknowledged (a request alone makes no span) and the next run's correlator never saw them;
   * without them the replayed span would take the response's model as gen_ai.request.model.
   */
  spoolForm(batch: ExportBatch): ExportBatch {
    const joined = this.prepared?.id === batch.id ? this.prepared.joined : undefined;
    const carried = requestsMissingFrom(batch.events, (id) => joined?.get(id) ?? (this.correlator.pendingRequest(id) as OispEvent | undefined));
    return carried.length ? { id: batch.id, events: [...(carried as OispEvent[]), ...batch.events] } : batch;
  }

  /** Pushes the metrics now (tests, shutdown). */
  async flushMetrics(): Promise<void> {
    await this.meterProvider.forceFlush();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.meterProvider.shutdown(), this.tracerProvider.shutdown(), this.spanExporter.shutdown()]);
  }

  /** `joined` collects, by request id, the ai.request events the batch's responses were joined with. */
  private toSpans(batch: ExportBatch, joined: Map<string, OispEvent>): ReadableSpan[] {
    const tracer = this.tracerProvider.getTracer("oisp-sensor", VERSION);
    this.collector.spans = [];
    for (const event of batch.events) {
      const call = this.correlator.add(event);
      if (!call) continue;
      const requestId = call.request && requestIdOf(obj(call.request.data) ?? {});
      if (requestId) joined.set(requestId, call.request as OispEvent);
      this.emit(tracer, call);
    }
    const spans = this.collector.spans;
    this.collector.spans = [];
    return spans;
  }

  private emit(tracer: ReturnType<BasicTracerProvider["getTracer"]>, call: GenAiCall): void {
    const { context, SpanKind, SpanStatusCode, trace } = api();
    const span = tracer.startSpan(call.name, { kind: SpanKind.CLIENT, startTime: call.startMs, attributes: call.attributes }, context.active());
    if (call.error) span.setStatus({ code: SpanStatusCode.ERROR, ...(call.error.message && { message: call.error.message }) });
    // The model asked for these tools in its answer; the agent runs them after it (we see the request, not the run).
    const parent = trace.setSpan(context.active(), span);
    for (const t of call.tools) {
      tracer.startSpan(t.name, { kind: SpanKind.INTERNAL, startTime: call.endMs, attributes: t.attributes }, parent).end(call.endMs);
    }
    span.end(call.endMs);

    const m = call.metric;
    if (m.inputTokens !== undefined) this.tokenUsage.record(m.inputTokens, { ...m.attributes, "gen_ai.token.type": "input" });
    if (m.outputTokens !== undefined) this.tokenUsage.record(m.outputTokens, { ...m.attributes, "gen_ai.token.type": "output" });
    this.duration.record(m.durationS, m.attributes);
  }
}
