// OTLP export end to end: events from the real builders (a streamed OpenAI call with two tool calls)
// go through the export queue and the official OTLP exporters (HTTP protobuf, HTTP JSON, gRPC) to local
// receivers, which decode the protobuf themselves (protobufjs, from the OTLP message definitions below)
// and check span names, parentage, attributes and the two GenAI metrics.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { buildAiRequest, buildAiResponse, buildToolCalls, redactEvent, type OispEvent, type RedactionMode } from "../../src/events/index.ts";
import { BatchSpool, ExportQueue, OtlpExporter, otlpTarget, startExporters } from "../../src/sinks/index.ts";
import { waitFor } from "../support/oisp-process.ts";
import { connContext, exchange, parsedRequest, parsedResponse } from "../unit/events.fixtures.ts";
import { attrsOf, type DecodedSpan, MetricsRequest, OtlpReceiver, TraceRequest } from "../support/otlp-receiver.ts";

/** A streamed OpenAI chat call with two tool calls, as the sensor's builders make it, redacted in `mode`. */
function streamedCallWithTools(mode: RedactionMode): OispEvent[] {
  const ctx = connContext();
  const ex = exchange();
  const req = parsedRequest();
  const res = parsedResponse();
  const request = buildAiRequest(ctx, ex, req);
  const response = buildAiResponse(ctx, ex, req, res, request);
  return [request, response, ...buildToolCalls(ctx, res, response)].map((e) => redactEvent(e, mode));
}

const receiver = new OtlpReceiver();
const dirs: string[] = [];
afterAll(() => {
  receiver.server.stop(true);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function queueFor(exporter: OtlpExporter): ExportQueue {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-otlp-"));
  dirs.push(dir);
  return new ExportQueue(exporter, { batchSize: 50, flushMs: 20, spool: new BatchSpool({ dir, maxBytes: 1 << 20 }) });
}

describe("OTLP http/protobuf", () => {
  let events: OispEvent[];
  beforeAll(async () => {
    events = streamedCallWithTools("safe");
    const exporter = new OtlpExporter({ endpoint: receiver.url, headers: { authorization: "Bearer test-token" }, metricIntervalMs: 3_600_000 });
    const queue = queueFor(exporter);
    queue.write(events);
    expect(await queue.flush(5000)).toBe(true);
    await exporter.flushMetrics();
    expect(queue.stats()).toMatchObject({ sent: events.length, dropped: 0, queued: 0, spooledBatches: 0 });
    await queue.close();
  });

  test("protobuf over HTTP with the configured headers and resource", () => {
    expect(receiver.contentTypes.has("application/x-protobuf")).toBe(true);
    expect(receiver.headers.every((h) => h.get("authorization") === "Bearer test-token")).toBe(true);
    expect(receiver.resources[0]).toMatchObject({ "service.name": "oisp-sensor", "host.name": os.hostname() });
  });

  test("one client span per AI call, named after operation and model, timed from request to response", () => {
    const chat = receiver.spans.filter((s) => s.attrs["gen_ai.operation.name"] === "chat");
    expect(chat).toHaveLength(1);
    const s = chat[0]!;
    expect(s.name).toBe("chat gpt-4o");
    expect(s.kind).toBe(3); // SPAN_KIND_CLIENT
    const request = events.find((e) => e.event_type === "ai.request")!;
    const response = events.find((e) => e.event_type === "ai.response")!;
    expect(s.startMs).toBeCloseTo(Date.parse(request.ts), 0);
    expect(s.endMs).toBeCloseTo(Date.parse(response.ts), 0);
    expect(s.parentSpanId).toBe("");
  });

  test("GenAI semantic-convention attributes", () => {
    const s = receiver.spans.find((x) => x.name === "chat gpt-4o")!;
    expect(s.attrs).toMatchObject({
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "openai",
      "gen_ai.request.model": "gpt-4o",
      "gen_ai.response.model": "gpt-4o-2024-11-20",
      "gen_ai.response.id": "chatcmpl-AbC123xyz",
      "gen_ai.response.finish_reasons": ["tool_calls"],
      "gen_ai.usage.input_tokens": 120,
      "gen_ai.usage.output_tokens": 30,
      "gen_ai.usage.cache_read.input_tokens": 64,
      "gen_ai.usage.reasoning.output_tokens": 8,
      "gen_ai.request.temperature": 0.2,
      "gen_ai.request.max_tokens": 512,
      "gen_ai.request.stop_sequences": ["END"],
      "gen_ai.request.stream": true,
      "server.address": "api.openai.com",
      "server.port": 443,
      // 56 × $2.50/M + 64 × $1.25/M + 30 × $10/M = 140 + 80 + 300 µ$
      "oisp.usage.total_cost_usd": 0.00052,
    });
    expect(s.attrs["gen_ai.response.time_to_first_chunk"]).toBeGreaterThan(0);
    // safe redaction: no message content leaves the machine
    expect(s.attrs["gen_ai.input.messages"]).toBeUndefined();
    expect(s.attrs["gen_ai.output.messages"]).toBeUndefined();
    expect(s.attrs["error.type"]).toBeUndefined();
  });

  test("each tool call is an execute_tool child span", () => {
    const parent = receiver.spans.find((x) => x.name === "chat gpt-4o")!;
    const tools = receiver.spans.filter((x) => x.attrs["gen_ai.operation.name"] === "execute_tool");
    expect(tools.map((t) => t.name).sort()).toEqual(["execute_tool get_weather", "execute_tool lookup"]);
    for (const t of tools) {
      expect(t.parentSpanId).toBe(parent.spanId);
      expect(t.traceId).toBe(parent.traceId);
      expect(t.kind).toBe(1); // INTERNAL
      expect(t.attrs["gen_ai.tool.type"]).toBe("function");
      expect(t.attrs["gen_ai.tool.call.arguments"]).toBeUndefined();
    }
    expect(tools.find((t) => t.name === "execute_tool get_weather")!.attrs["gen_ai.tool.call.id"]).toBe("call_1");
  });

  test("gen_ai.client.token.usage and gen_ai.client.operation.duration histograms", () => {
    const usage = receiver.metrics.find((m) => m.name === "gen_ai.client.token.usage")!;
    expect(usage.unit).toBe("{token}");
    const byType = Object.fromEntries(usage.points.map((p) => [p.attrs["gen_ai.token.type"], p]));
    expect(byType.input).toMatchObject({ count: 1, sum: 120 });
    expect(byType.output).toMatchObject({ count: 1, sum: 30 });
    expect(byType.input!.attrs).toMatchObject({ "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "server.address": "api.openai.com" });
    expect(byType.input!.bounds.slice(0, 3)).toEqual([1, 4, 16]);
    const duration = receiver.metrics.find((m) => m.name === "gen_ai.client.operation.duration")!;
    expect(duration.unit).toBe("s");
    const s = receiver.spans.find((x) => x.name === "chat gpt-4o")!;
    expect(duration.points[0]!.count).toBe(1);
    expect(duration.points[0]!.sum).toBeCloseTo((s.endMs - s.startMs) / 1000, 3);
  });
});

describe("content only in full mode", () => {
  test("gen_ai.input/output.messages and tool arguments with includeContent", async () => {
    const before = receiver.spans.length;
    const exporter = new OtlpExporter({ endpoint: receiver.url, includeContent: true, metricIntervalMs: 3_600_000 });
    const queue = queueFor(exporter);
    queue.write(streamedCallWithTools("full"));
    expect(await queue.flush(5000)).toBe(true);
    await queue.close();
    const spans = receiver.spans.slice(before);
    const chat = spans.find((s) => s.name === "chat gpt-4o")!;
    const input = JSON.parse(String(chat.attrs["gen_ai.input.messages"]));
    expect(input[0]).toMatchObject({ role: "user", parts: [{ type: "text" }] });
    expect(JSON.parse(String(chat.attrs["gen_ai.system_instructions"]))[0].type).toBe("text");
    const output = JSON.parse(String(chat.attrs["gen_ai.output.messages"]));
    expect(output[0].role).toBe("assistant");
    expect(output[0].parts.filter((p: { type: string }) => p.type === "tool_call").map((p: { name: string }) => p.name)).toEqual(["get_weather", "lookup"]);
    expect(spans.find((s) => s.name === "execute_tool get_weather")!.attrs["gen_ai.tool.call.arguments"]).toBeString();
  });
});

test("a failed call sets error.type and an ERROR status", async () => {
  const before = receiver.spans.length;
  const ctx = connContext();
  const ex = exchange();
  const req = parsedRequest({ streaming: false });
  const res = parsedResponse({ statusCode: 429, success: false, toolCalls: [], content: undefined, usage: undefined, finishReason: undefined, error: { type: "rate_limit_error", message: "Rate limit reached" } });
  const request = buildAiRequest(ctx, ex, req);
  const response = buildAiResponse(ctx, ex, req, res, request);
  const exporter = new OtlpExporter({ endpoint: receiver.url, metricIntervalMs: 3_600_000 });
  const queue = queueFor(exporter);
  queue.write([request, response].map((e) => redactEvent(e, "safe")));
  expect(await queue.flush(5000)).toBe(true);
  await queue.close();
  const s = receiver.spans.slice(before).find((x) => x.name === "chat gpt-4o")!;
  expect(s.attrs["error.type"]).toBe("rate_limit_error");
  expect(s.status?.code).toBe(2); // STATUS_CODE_ERROR
});

test("http/json protocol sends the same span as OTLP JSON", async () => {
  const bodies: any[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (req) => {
      expect(req.headers.get("content-type")).toStartWith("application/json");
      bodies.push(await req.json());
      return Response.json({});
    },
  });
  try {
    const exporter = new OtlpExporter({ endpoint: `http://127.0.0.1:${server.port}`, protocol: "http/json", metricIntervalMs: 3_600_000 });
    const queue = queueFor(exporter);
    queue.write(streamedCallWithTools("safe"));
    expect(await queue.flush(5000)).toBe(true);
    await queue.close();
    const spans = bodies.flatMap((b) => b.resourceSpans ?? []).flatMap((r: any) => r.scopeSpans).flatMap((s: any) => s.spans);
    expect(spans.map((s: any) => s.name).sort()).toEqual(["chat gpt-4o", "execute_tool get_weather", "execute_tool lookup"]);
  } finally {
    server.stop(true);
  }
});

test("grpc protocol: the same spans and metrics through a gRPC collector, headers as metadata", async () => {
  const traces: Buffer[] = [];
  const metrics: Buffer[] = [];
  const auth: string[] = [];
  const raw = (b: Buffer) => b;
  const unary = (path: string) => ({ path, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw });
  const server = new grpc.Server();
  const handler = (into: Buffer[]) => (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
    into.push(call.request);
    auth.push(String(call.metadata.get("authorization")[0] ?? ""));
    done(null, Buffer.alloc(0)); // an empty Export*ServiceResponse
  };
  server.addService({ Export: unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export") } as grpc.ServiceDefinition, { Export: handler(traces) });
  server.addService({ Export: unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export") } as grpc.ServiceDefinition, { Export: handler(metrics) });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  try {
    const exporter = new OtlpExporter({ endpoint: `http://127.0.0.1:${port}`, protocol: "grpc", headers: { authorization: "Bearer grpc-token" }, metricIntervalMs: 3_600_000 });
    const queue = queueFor(exporter);
    queue.write(streamedCallWithTools("safe"));
    expect(await queue.flush(10_000)).toBe(true);
    await exporter.flushMetrics();
    await queue.close();
    const spans = traces.flatMap((b) => (TraceRequest.toObject(TraceRequest.decode(b)) as any).resource_spans).flatMap((r: any) => r.scope_spans).flatMap((s: any) => s.spans);
    expect(spans.map((s: any) => s.name).sort()).toEqual(["chat gpt-4o", "execute_tool get_weather", "execute_tool lookup"]);
    expect(attrsOf(spans.find((s: any) => s.name === "chat gpt-4o").attributes)).toMatchObject({ "gen_ai.usage.input_tokens": 120, "gen_ai.provider.name": "openai" });
    const names = metrics.flatMap((b) => (MetricsRequest.toObject(MetricsRequest.decode(b)) as any).resource_metrics).flatMap((r: any) => r.scope_metrics).flatMap((s: any) => s.metrics).map((m: any) => m.name);
    // exported at flushMetrics() and again (cumulative) at shutdown
    expect([...new Set(names)].sort()).toEqual(["gen_ai.client.operation.duration", "gen_ai.client.token.usage"]);
    expect(auth.every((a) => a === "Bearer grpc-token")).toBe(true);
  } finally {
    server.forceShutdown();
  }
});

test("a collector that is down at first: spans are retried and arrive once it is back", async () => {
  let up = false;
  let refused = 0;
  const got: DecodedSpan[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (req) => {
      if (!up) {
        refused++;
        return new Response("unavailable", { status: 503 });
      }
      const body = new Uint8Array(await req.arrayBuffer());
      if (new URL(req.url).pathname === "/v1/traces") {
        const msg = TraceRequest.toObject(TraceRequest.decode(body), { longs: String }) as any;
        for (const rs of msg.resource_spans ?? []) for (const ss of rs.scope_spans ?? []) for (const s of ss.spans ?? []) got.push({ name: s.name } as DecodedSpan);
      }
      return new Response(new Uint8Array(0), { headers: { "content-type": "application/x-protobuf" } });
    },
  });
  try {
    const exporter = new OtlpExporter({ endpoint: `http://127.0.0.1:${server.port}`, metricIntervalMs: 3_600_000, timeoutMs: 2000 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-otlp-"));
    dirs.push(dir);
    const queue = new ExportQueue(exporter, { flushMs: 10, initialBackoffMs: 50, maxBackoffMs: 200, spool: new BatchSpool({ dir, maxBytes: 1 << 20 }) });
    queue.write(streamedCallWithTools("safe"));
    const deadline = Date.now() + 15_000;
    while (queue.stats().failedAttempts === 0 && Date.now() < deadline) await Bun.sleep(50);
    expect(queue.stats()).toMatchObject({ state: "retrying", sent: 0 });
    expect(refused).toBeGreaterThan(0);
    up = true;
    expect(await queue.flush(15_000)).toBe(true);
    await queue.close();
    expect(got.map((s) => s.name).sort()).toEqual(["chat gpt-4o", "execute_tool get_weather", "execute_tool lookup"]);
  } finally {
    server.stop(true);
  }
}, 30_000);

test("a response spooled after its request was acknowledged still gives the span the requested model", async () => {
  // Collector down. The request goes out alone (batches of one) and is acknowledged at once: alone it
  // makes no span, its facts wait in the correlator. The response's batch fails and is spooled at
  // shutdown; the next run's correlator never saw the request, so the spool must bring it.
  const down = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("unavailable", { status: 503 }) });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-otlp-order-"));
  dirs.push(dir);
  const [request, ...rest] = streamedCallWithTools("safe");
  const first = new ExportQueue(new OtlpExporter({ endpoint: `http://127.0.0.1:${down.port}`, metricIntervalMs: 3_600_000, timeoutMs: 2000 }), {
    batchSize: 1,
    flushMs: 5,
    initialBackoffMs: 20,
    maxBackoffMs: 50,
    closeTimeoutMs: 100,
    spool: new BatchSpool({ dir, maxBytes: 1 << 20 }),
  });
  first.write([request!]);
  await waitFor("the request batch acknowledged", () => (first.stats().sent === 1 ? true : undefined));
  first.write(rest);
  await waitFor("the response batch failing", () => (first.stats().failedAttempts > 0 ? true : undefined));
  await first.close();
  down.stop(true);
  expect(first.stats()).toMatchObject({ sent: 1, dropped: 0 });

  // Collector up: the next run replays the spool.
  const up = new OtlpReceiver();
  try {
    const second = new ExportQueue(new OtlpExporter({ endpoint: up.url, metricIntervalMs: 3_600_000 }), { flushMs: 5, spool: new BatchSpool({ dir, maxBytes: 1 << 20 }) });
    expect(await second.flush(10_000)).toBe(true);
    await second.close();
    expect(second.stats()).toMatchObject({ dropped: 0 });
    const chat = up.spans.filter((s) => s.attrs["gen_ai.operation.name"] === "chat");
    expect(chat).toHaveLength(1);
    expect(chat[0]!.attrs).toMatchObject({ "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-11-20" });
    expect(chat[0]!.name).toBe("chat gpt-4o");
  } finally {
    up.server.stop(true);
  }
}, 30_000);

test("--export otlp --otlp-endpoint host:4317 (the seed's spelling): gRPC, as collectors take port 4317", async () => {
  expect(otlpTarget("127.0.0.1:4317", undefined)).toEqual({ endpoint: "http://127.0.0.1:4317", protocol: "grpc" });
  expect(otlpTarget("collector.local:4318", undefined)).toEqual({ endpoint: "http://collector.local:4318", protocol: "http/protobuf" });
  expect(otlpTarget("https://otel.example.com:4317", "http/json")).toEqual({ endpoint: "https://otel.example.com:4317", protocol: "http/json" });
  expect(otlpTarget(undefined, undefined)).toEqual({ endpoint: "http://127.0.0.1:4318", protocol: "http/protobuf" });
  expect(() => otlpTarget("ftp://x:4317", undefined)).toThrow(/--otlp-endpoint: expected an http\(s\) URL/);

  // And through the exporters the flags build, to a gRPC collector really listening on 127.0.0.1:4317.
  const traces: Buffer[] = [];
  const raw = (b: Buffer) => b;
  const unary = (p: string) => ({ path: p, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw });
  const server = new grpc.Server();
  const ok = (into: Buffer[] | undefined) => (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => (into?.push(call.request), done(null, Buffer.alloc(0)));
  server.addService({ Export: unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export") } as grpc.ServiceDefinition, { Export: ok(traces) });
  server.addService({ Export: unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export") } as grpc.ServiceDefinition, { Export: ok(undefined) });
  await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:4317", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-otlp-4317-"));
  const [exporter] = startExporters({ values: { export: ["otlp"], "otlp-endpoint": "127.0.0.1:4317" }, dataDir: dir, redaction: "safe" }, () => {});
  try {
    exporter!.write(streamedCallWithTools("safe"));
    await waitFor("spans at the gRPC collector on :4317", () => (traces.length > 0 ? true : undefined));
    const spans = traces.flatMap((b) => (TraceRequest.toObject(TraceRequest.decode(b)) as any).resource_spans).flatMap((r: any) => r.scope_spans).flatMap((s: any) => s.spans);
    expect(spans.map((s: any) => s.name)).toContain("chat gpt-4o");
  } finally {
    await exporter!.close();
    server.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
