// The benchmarks' "real host": an HTTPS server in its own process that answers OpenAI chat completions,
// plain JSON or SSE. Each SSE chunk carries the time it was written (`"t"`, wall-clock ms with µs digits, which
// every process on the machine shares) so a client can measure how long a proxy held it.
//
//   bun bench/lib/upstream-server.ts DIR   → writes DIR/upstream-ca.pem, prints "PORT <n>" on stdout.
//
// Request body: the usual {"model", "stream", "messages"} plus optional "bench": {"chunks", "interval_ms"}.
import fs from "node:fs";
import path from "node:path";
import { createTestCa } from "../../test/support/upstream.ts";

const HOSTS = ["api.openai.com", "localhost", "127.0.0.1"];

const dir = process.argv[2];
if (!dir) {
  console.error("usage: upstream-server.ts DIR");
  process.exit(2);
}

const ca = await createTestCa("OISP Bench Upstream CA");
const { cert, key } = await ca.issue(HOSTS);
fs.writeFileSync(path.join(dir, "upstream-ca.pem"), ca.certPem);

const JSON_BODY = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1_732_000_000,
  model: "gpt-4o-mini-2024-07-18",
  choices: [{ index: 0, message: { role: "assistant", content: "Hello from the bench upstream.", refusal: null }, logprobs: null, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
});

const enc = new TextEncoder();
// Wall-clock ms with sub-ms precision: comparable across processes (Bun's hrtime is per-process).
const now = () => (performance.timeOrigin + performance.now()).toFixed(3);

function sseChunk(i: number, finish: string | null): Uint8Array {
  const delta = i === 0 ? { role: "assistant", content: "" } : finish ? {} : { content: `tok${i} ` };
  const data = { id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1_732_000_000, model: "gpt-4o-mini", choices: [{ index: 0, delta, finish_reason: finish }], t: now() };
  return enc.encode(`data: ${JSON.stringify(data)}\n\n`);
}

function sseStream(chunks: number, intervalMs: number): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    type: "direct",
    async pull(controller: { write(b: Uint8Array): void; flush(): unknown; close(): void }) {
      // One write + flush per chunk, like a real provider token by token.
      for (; i < chunks; i++) {
        if (i > 0 && intervalMs > 0) await Bun.sleep(intervalMs);
        controller.write(sseChunk(i, i === chunks - 1 ? "stop" : null));
        await controller.flush();
      }
      const usage = { id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1_732_000_000, model: "gpt-4o-mini", choices: [], usage: { prompt_tokens: 12, completion_tokens: chunks, total_tokens: 12 + chunks } };
      controller.write(enc.encode(`data: ${JSON.stringify(usage)}\n\ndata: [DONE]\n\n`));
      await controller.flush();
      controller.close();
    },
  } as unknown as UnderlyingSource<Uint8Array>);
}

// --node: the same answers from node:http over node:tls (a second server implementation, to tell an
// upstream quirk from a proxy bug).
if (process.argv.includes("--node")) {
  const http = await import("node:http");
  const tls = await import("node:tls");
  const h = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", async () => {
      let body: { stream?: boolean; bench?: { chunks?: number; interval_ms?: number } } = {};
      try {
        body = JSON.parse(Buffer.concat(parts).toString() || "{}");
      } catch {}
      if (!body.stream) {
        res.writeHead(200, { "content-type": "application/json", "x-request-id": "req_bench", "content-length": Buffer.byteLength(JSON_BODY) });
        return res.end(JSON_BODY);
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const chunks = Math.min(Math.max(body.bench?.chunks ?? 10, 2), 10_000);
      const interval = Math.min(Math.max(body.bench?.interval_ms ?? 5, 0), 10_000);
      for (let i = 0; i < chunks && !res.destroyed; i++) {
        if (i > 0 && interval > 0) await Bun.sleep(interval);
        res.write(sseChunk(i, i === chunks - 1 ? "stop" : null));
      }
      res.end("data: [DONE]\n\n");
    });
  });
  h.keepAliveTimeout = 120_000;
  const t = tls.createServer({ cert, key, ALPNProtocols: ["http/1.1"] }, (sock) => h.emit("connection", sock));
  t.listen(0, "127.0.0.1", () => console.log(`PORT ${(t.address() as import("node:net").AddressInfo).port}`));
  process.on("SIGTERM", () => process.exit(0));
} else {
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  tls: { cert, key },
  idleTimeout: 120,
  async fetch(req) {
    const url = new URL(req.url);
    if (req.method !== "POST" || url.pathname !== "/v1/chat/completions") return new Response("not found", { status: 404 });
    let body: { stream?: boolean; bench?: { chunks?: number; interval_ms?: number } } = {};
    try {
      body = (await req.json()) as typeof body;
    } catch {
      return Response.json({ error: { message: "bad json", type: "invalid_request_error" } }, { status: 400 });
    }
    if (!body.stream) return new Response(JSON_BODY, { headers: { "content-type": "application/json", "x-request-id": "req_bench" } });
    const chunks = Math.min(Math.max(body.bench?.chunks ?? 10, 2), 10_000);
    const interval = Math.min(Math.max(body.bench?.interval_ms ?? 5, 0), 10_000);
    return new Response(sseStream(chunks, interval), { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
  },
});

console.log(`PORT ${server.port}`);
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
}
