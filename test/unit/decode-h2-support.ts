// Helpers for the HTTP/2 decoder tests: capture real node:http2 conversations through a TCP relay,
// build frames by hand for the cases a real stack will not produce, and replay with splits.
import http2 from "node:http2";
import net from "node:net";
import type { Direction } from "../../src/tap/types.ts";
import type { ConnectionOutput } from "../../src/decode/connection-decoder.ts";
import { H2ConnectionDecoder, type H2ConnectionDecoderOptions } from "../../src/decode/h2-connection.ts";

export interface Step {
  dir: Direction;
  data: Uint8Array;
  ts: number;
}

/**
 * Runs `scenario` with a node:http2 client against a node:http2 server, both plaintext (h2c),
 * through a relay that records each direction's bytes in the order they crossed it.
 */
export async function captureH2(
  handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  scenario: (client: http2.ClientHttp2Session) => Promise<void>,
  opts: { server?: http2.ServerOptions; client?: http2.ClientSessionOptions } = {},
): Promise<Step[]> {
  const server = http2.createServer(opts.server ?? {}, handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const serverPort = (server.address() as net.AddressInfo).port;
  const steps: Step[] = [];
  let ts = 0;
  let relayDone!: () => void;
  const relayClosed = new Promise<void>((r) => (relayDone = r));
  const relay = net.createServer((down) => {
    const up = net.connect(serverPort, "127.0.0.1");
    let open = 2;
    const closed = () => {
      if (--open === 0) relayDone();
    };
    down.on("data", (d: Buffer) => {
      steps.push({ dir: "c2s", data: new Uint8Array(d), ts: ts++ });
      up.write(d);
    });
    up.on("data", (d: Buffer) => {
      steps.push({ dir: "s2c", data: new Uint8Array(d), ts: ts++ });
      down.write(d);
    });
    down.on("end", () => up.end());
    up.on("end", () => down.end());
    down.on("close", closed);
    up.on("close", closed);
    down.on("error", () => up.destroy());
    up.on("error", () => down.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
  const relayPort = (relay.address() as net.AddressInfo).port;
  const client = http2.connect(`http://127.0.0.1:${relayPort}`, opts.client ?? {});
  client.on("error", () => {});
  try {
    await scenario(client);
  } finally {
    await new Promise<void>((r) => client.close(() => r()));
    await Promise.race([relayClosed, new Promise((r) => setTimeout(r, 2000))]);
    relay.close();
    server.close();
  }
  return steps;
}

/** Sends one request and collects the response body; `onData` sees each chunk as it arrives. */
export function request(
  client: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: string | Uint8Array,
  onData?: (chunk: Buffer) => void,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = client.request(headers, { endStream: body === undefined });
    let status = 0;
    const chunks: Buffer[] = [];
    req.on("response", (h) => (status = Number(h[":status"])));
    req.on("data", (d: Buffer) => {
      chunks.push(d);
      onData?.(d);
    });
    req.on("end", () => resolve({ status, body: Buffer.concat(chunks) }));
    req.on("error", reject);
    if (body !== undefined) req.end(body);
  });
}

export function feed(steps: Step[], cut: (step: Step) => Uint8Array[] = (s) => [s.data], opts?: H2ConnectionDecoderOptions, close = true): ConnectionOutput[] {
  const dec = new H2ConnectionDecoder("conn-h2", opts);
  const out: ConnectionOutput[] = [];
  for (const step of steps) for (const piece of cut(step)) out.push(...dec.push(step.dir, piece, step.ts));
  if (close) out.push(...dec.close(steps.length));
  return out;
}

/** Cuts into pieces of `size` bytes. */
export const pieces = (size: number) => (step: Step) => {
  const out: Uint8Array[] = [];
  for (let i = 0; i < step.data.length; i += size) out.push(step.data.subarray(i, i + size));
  return out;
};

/** Cuts each step once at `at` (or at its middle when shorter). */
export const splitAt = (at: number) => (step: Step) => {
  const p = Math.min(at, step.data.length >> 1);
  return [step.data.subarray(0, p), step.data.subarray(p)];
};

// ---- hand-built frames ----

export function frame(type: number, flags: number, streamId: number, payload: Uint8Array | number[] = []): Uint8Array {
  const p = payload instanceof Uint8Array ? payload : Uint8Array.from(payload);
  const out = new Uint8Array(9 + p.length);
  out[0] = (p.length >> 16) & 0xff;
  out[1] = (p.length >> 8) & 0xff;
  out[2] = p.length & 0xff;
  out[3] = type;
  out[4] = flags;
  out[5] = (streamId >>> 24) & 0x7f;
  out[6] = (streamId >>> 16) & 0xff;
  out[7] = (streamId >>> 8) & 0xff;
  out[8] = streamId & 0xff;
  out.set(p, 9);
  return out;
}

/** HPACK block of literal fields without indexing and with literal names (short values only). */
export function literalBlock(headers: Array<[string, string]>): Uint8Array {
  const bytes: number[] = [];
  const str = (s: string) => {
    const b = Buffer.from(s, "latin1");
    if (b.length >= 127) throw new Error("test helper: string too long");
    bytes.push(b.length, ...b);
  };
  for (const [k, v] of headers) {
    bytes.push(0x00);
    str(k);
    str(v);
  }
  return Uint8Array.from(bytes);
}

export const u32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

export const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export function cat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}
