// A lean HTTP/1.1-over-TLS load generator for the benchmarks: raw node:tls sockets, directly to the
// upstream or through an HTTP CONNECT proxy, with a tiny incremental response reader. No HTTP client
// library in the way, so the client is not what limits the figures. Loopback only, bounded by count and time.
import net from "node:net";
import tls from "node:tls";

export interface Target {
  name: string;
  /** The upstream's own port, used when there is no proxy. */
  upstreamPort: number;
  /** CONNECT through this proxy (127.0.0.1:port) to `authority`. */
  proxy?: { port: number; authority: string };
  /** The TLS name the client asks for and verifies. */
  servername: string;
  /** The root the client trusts for that name (the upstream's CA directly, the proxy's CA through it). */
  ca: string;
}

export interface StreamSpec {
  chunks: number;
  intervalMs: number;
}

export interface ScenarioOptions {
  target: Target;
  /** Connections at once. */
  concurrency: number;
  /** Requests in all. */
  total: number;
  /** keepalive: each connection carries many requests; new: one connection (CONNECT + TLS) per request. */
  mode: "keepalive" | "new";
  stream?: StreamSpec;
  /** Give up on one request after this long (counted as an error). */
  requestTimeoutMs?: number;
  /** Stop starting requests after this long. */
  deadlineMs?: number;
  /** Pace requests to this many per second in all (steady-rate runs); default: as fast as they complete. */
  ratePerSec?: number;
}

export interface ScenarioResult {
  ok: number;
  errors: Record<string, number>;
  /** One entry per successful request, in ms: from writing the request (or, new connections, from connecting) to the last byte. */
  latenciesMs: number[];
  durationMs: number;
  /** For streams: each chunk's arrival minus the upstream's stamp, in ms. */
  chunkDelaysMs: number[];
  bytes: number;
  /** When errors happened, in ms since the start (first 200), to tell a burst from a trickle. */
  errorTimesMs: number[];
}

const API_KEY = "sk-proj-BenchKey0123456789abcdefghijklmnop";

export function requestBytes(stream: StreamSpec | undefined, close: boolean): Buffer {
  const body = JSON.stringify({
    model: "gpt-4o-mini",
    stream: Boolean(stream),
    messages: [{ role: "user", content: "Say hello to the benchmark." }],
    ...(stream ? { bench: { chunks: stream.chunks, interval_ms: stream.intervalMs }, stream_options: { include_usage: true } } : {}),
  });
  return Buffer.from(
    `POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer ${API_KEY}\r\n` +
      `Content-Type: application/json\r\nAccept: */*\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${close ? "Connection: close\r\n" : ""}\r\n${body}`,
  );
}

const nowNs = () => process.hrtime.bigint();

/** Opens a TLS connection to the target, through CONNECT when it has a proxy. */
export function openConnection(target: Target, timeoutMs = 30_000): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error("connect timeout")), timeoutMs);
    let raw: net.Socket | undefined;
    let sock: tls.TLSSocket | undefined;
    const fail = (err: Error) => {
      clearTimeout(timer);
      raw?.destroy();
      sock?.destroy();
      reject(err);
    };
    const startTls = (socket?: net.Socket) => {
      const opts: tls.ConnectionOptions = { servername: target.servername, ca: target.ca, ALPNProtocols: ["http/1.1"] };
      sock = socket ? tls.connect({ ...opts, socket }) : tls.connect({ ...opts, host: "127.0.0.1", port: target.upstreamPort });
      sock.once("secureConnect", () => {
        clearTimeout(timer);
        sock!.setNoDelay(true);
        sock!.removeListener("error", fail);
        resolve(sock!);
      });
      sock.once("error", fail);
    };
    if (!target.proxy) return startTls();
    const { port, authority } = target.proxy;
    raw = net.connect(port, "127.0.0.1");
    raw.setNoDelay(true);
    raw.once("error", fail);
    let head = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > 8192) fail(new Error("CONNECT: oversized answer"));
        return;
      }
      raw!.removeListener("data", onData);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString("latin1"))?.[1];
      if (status !== "200") return fail(new Error(`CONNECT ${status ?? "garbled"}`));
      if (head.length > end + 4) return fail(new Error("CONNECT: bytes after the answer"));
      raw!.removeListener("error", fail);
      raw!.pause();
      startTls(raw);
    };
    raw.on("data", onData);
    raw.once("connect", () => raw!.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
  });
}

interface Response {
  status: number;
  bytes: number;
}

/**
 * Sends one request on `sock` and reads its response (content-length or chunked). `onChunk` gets each
 * arriving TCP read of the body with its arrival time, for streamed responses.
 */
export function exchange(sock: tls.TLSSocket, req: Buffer, timeoutMs: number, onBody?: (text: string, atNs: bigint) => void): Promise<Response> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    let status = 0;
    let bodyStart = -1;
    let contentLength = -1;
    let chunked = false;
    let chunkPos = 0; // chunked: where the next chunk-size line starts
    let total = 0;
    const timer = setTimeout(() => done(new Error("timeout")), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      sock.removeListener("data", onData);
      sock.removeListener("error", onError);
      sock.removeListener("close", onClose);
    };
    const done = (err?: Error) => {
      cleanup();
      if (err) reject(err);
      else resolve({ status, bytes: total });
    };
    const onError = (err: Error) => done(new Error(`socket: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    const onClose = () => done(new Error(bodyStart < 0 ? "closed before response" : "closed mid-body"));
    const onData = (d: Buffer) => {
      const at = nowNs();
      total += d.length;
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (bodyStart < 0) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString("latin1");
        status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head);
        contentLength = cl ? Number(cl[1]) : -1;
        bodyStart = end + 4;
        chunkPos = bodyStart;
        if (!chunked && contentLength < 0) return done(new Error("response without length"));
      }
      if (onBody) onBody(d.toString("latin1"), at);
      if (!chunked) {
        if (buf.length - bodyStart >= contentLength) done();
        return;
      }
      // Walk complete chunks; the terminating zero-size chunk ends the response.
      for (;;) {
        const lineEnd = buf.indexOf("\r\n", chunkPos);
        if (lineEnd < 0) return;
        const size = parseInt(buf.subarray(chunkPos, lineEnd).toString("latin1"), 16);
        if (Number.isNaN(size)) return done(new Error("bad chunk size"));
        if (size === 0) {
          if (buf.length >= lineEnd + 4) return done();
          return;
        }
        if (buf.length < lineEnd + 2 + size + 2) return;
        chunkPos = lineEnd + 2 + size + 2;
      }
    };
    sock.on("data", onData);
    sock.once("error", onError);
    sock.once("close", onClose);
    if (sock.isPaused()) sock.resume();
    sock.write(req);
  });
}

const STAMP = /"t":"(\d+\.\d+)"/g;
const wallMs = () => performance.timeOrigin + performance.now();

/** Runs `total` requests over `concurrency` connections and measures each. */
export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const timeoutMs = o.requestTimeoutMs ?? 30_000;
  const t0 = performance.now();
  const deadline = Date.now() + (o.deadlineMs ?? 120_000);
  const reqKeep = requestBytes(o.stream, false);
  const reqClose = requestBytes(o.stream, true);
  const result: ScenarioResult = { ok: 0, errors: {}, latenciesMs: [], durationMs: 0, chunkDelaysMs: [], bytes: 0, errorTimesMs: [] };
  const err = (what: string) => {
    result.errors[what] = (result.errors[what] ?? 0) + 1;
    if (result.errorTimesMs.length < 200) result.errorTimesMs.push(Math.round(performance.now() - t0));
  };
  let started = 0;
  const interval = o.ratePerSec ? 1000 / o.ratePerSec : 0;

  const onBody = o.stream
    ? (text: string) => {
        const at = wallMs();
        for (const m of text.matchAll(STAMP)) result.chunkDelaysMs.push(at - Number(m[1]));
      }
    : undefined;

  async function worker() {
    let sock: tls.TLSSocket | undefined;
    while (started < o.total && Date.now() < deadline) {
      const n = started++;
      if (interval) {
        const due = t0 + n * interval;
        const wait = due - performance.now();
        if (wait > 0) await Bun.sleep(wait);
      }
      const begin = nowNs();
      try {
        if (o.mode === "new" || !sock || sock.destroyed) {
          sock?.destroy();
          sock = await openConnection(o.target, timeoutMs);
        }
        const sent = o.mode === "new" ? begin : nowNs();
        const res = await exchange(sock, o.mode === "new" ? reqClose : reqKeep, timeoutMs, onBody);
        const latency = Number(nowNs() - sent) / 1e6;
        result.bytes += res.bytes;
        if (res.status === 200) {
          result.ok++;
          result.latenciesMs.push(latency);
        } else err(`HTTP ${res.status}`);
        if (o.mode === "new") {
          sock.destroy();
          sock = undefined;
        }
      } catch (e) {
        err((e as Error).message);
        sock?.destroy();
        sock = undefined;
      }
    }
    sock?.end();
    sock?.destroy();
  }

  await Promise.all(Array.from({ length: Math.min(o.concurrency, o.total) }, worker));
  result.durationMs = performance.now() - t0;
  return result;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const reqPerSec = (r: ScenarioResult) => (r.ok * 1000) / r.durationMs;
export const errorCount = (r: ScenarioResult) => Object.values(r.errors).reduce((a, b) => a + b, 0);
