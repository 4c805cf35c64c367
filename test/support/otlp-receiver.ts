// A local OTLP/HTTP receiver (protobuf) for tests: decodes every trace and metrics request it gets with
// protobufjs from the OTLP message definitions below, so checks read spans, attributes and metrics as the
// collector would. Used by the export tests and the container image test.
import protobuf from "protobufjs";

// The subset of opentelemetry-proto (collector/trace/v1, collector/metrics/v1, common/v1) we read.
// Field numbers are the OTLP wire contract; fields we do not read are skipped by the decoder.
const OTLP_PROTO = `
syntax = "proto3";
package otlp;
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Scope { string name = 1; string version = 2; }
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9; Status status = 15;
}
message ScopeSpans { Scope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message HistogramDataPoint {
  fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3; fixed64 count = 4; double sum = 5;
  repeated fixed64 bucket_counts = 6; repeated double explicit_bounds = 7; repeated KeyValue attributes = 9;
}
message Histogram { repeated HistogramDataPoint data_points = 1; int32 aggregation_temporality = 2; }
message Metric { string name = 1; string description = 2; string unit = 3; Histogram histogram = 9; }
message ScopeMetrics { Scope scope = 1; repeated Metric metrics = 2; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
`;
export const root = protobuf.parse(OTLP_PROTO, { keepCase: true }).root;
export const TraceRequest = root.lookupType("otlp.ExportTraceServiceRequest");
export const MetricsRequest = root.lookupType("otlp.ExportMetricsServiceRequest");

export type Attr = string | number | boolean | Attr[];
export interface DecodedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  startMs: number;
  endMs: number;
  attrs: Record<string, Attr>;
  status?: { code?: number; message?: string };
}

function value(v: Record<string, any> | undefined): Attr {
  if (!v) return "";
  if ("string_value" in v) return v.string_value;
  if ("bool_value" in v) return v.bool_value;
  if ("int_value" in v) return Number(v.int_value);
  if ("double_value" in v) return v.double_value;
  if ("array_value" in v) return (v.array_value.values ?? []).map(value);
  return "";
}
export const attrsOf = (kvs: any[] | undefined) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, value(kv.value)]));
const hex = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString("hex");
const nanosToMs = (n: any) => Number(BigInt(n.toString()) / 1000n) / 1000;

/** A local OTLP/HTTP receiver: decodes every protobuf request it gets. */
export class OtlpReceiver {
  spans: DecodedSpan[] = [];
  resources: Array<Record<string, Attr>> = [];
  metrics: Array<{ name: string; unit: string; points: Array<{ count: number; sum: number; attrs: Record<string, Attr>; bounds: number[] }> }> = [];
  contentTypes = new Set<string>();
  headers: Headers[] = [];
  /** `port`: 0 for any free one; a given port lets a test start the collector after a sender gave up on it. */
  readonly server: ReturnType<typeof Bun.serve>;
  constructor(port = 0) {
    this.server = Bun.serve({
      hostname: "127.0.0.1",
      port,
      fetch: async (req) => {
        const body = new Uint8Array(await req.arrayBuffer());
        this.contentTypes.add(req.headers.get("content-type") ?? "");
        this.headers.push(req.headers);
        const url = new URL(req.url);
        if (url.pathname === "/v1/traces") this.traces(TraceRequest.toObject(TraceRequest.decode(body), { longs: String, bytes: Uint8Array }));
        else if (url.pathname === "/v1/metrics") this.metricsIn(MetricsRequest.toObject(MetricsRequest.decode(body), { longs: String }));
        else return new Response("not found", { status: 404 });
        return new Response(new Uint8Array(0), { headers: { "content-type": "application/x-protobuf" } });
      },
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  private traces(msg: any): void {
    for (const rs of msg.resource_spans ?? []) {
      this.resources.push(attrsOf(rs.resource?.attributes));
      for (const ss of rs.scope_spans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            name: s.name,
            kind: s.kind,
            traceId: hex(s.trace_id),
            spanId: hex(s.span_id),
            parentSpanId: hex(s.parent_span_id),
            startMs: nanosToMs(s.start_time_unix_nano),
            endMs: nanosToMs(s.end_time_unix_nano),
            attrs: attrsOf(s.attributes),
            status: s.status,
          });
        }
      }
    }
  }

  private metricsIn(msg: any): void {
    for (const rm of msg.resource_metrics ?? []) {
      for (const sm of rm.scope_metrics ?? []) {
        for (const m of sm.metrics ?? []) {
          this.metrics.push({
            name: m.name,
            unit: m.unit,
            points: (m.histogram?.data_points ?? []).map((p: any) => ({ count: Number(p.count), sum: p.sum, attrs: attrsOf(p.attributes), bounds: p.explicit_bounds ?? [] })),
          });
        }
      }
    }
  }
}

