// The in-process intercepting proxy the proxy-level tests start: one AI host (api.openai.com by default) whose
// real address is a local test upstream, no process lookup, quiet. A test overrides what it varies.
import { expect } from "bun:test";
import net from "node:net";
import tls from "node:tls";
import { startProxy, type LeafIssuer, type ProxyOptions, type RunningProxy } from "../../src/capture/proxy/server.ts";
import type { TapSink } from "../../src/tap/types.ts";
import { silentLogger } from "../../src/util/log.ts";

export interface AiProxyOptions extends Partial<ProxyOptions> {
  /** Signs the leaves the proxy shows its clients. */
  issuer: LeafIssuer;
  /** The upstream's CA (PEM) and its loopback port. */
  upstreamCaPem: string;
  upstreamPort: number;
  tap: TapSink;
  host?: string;
}

export function startAiProxy({ issuer, upstreamCaPem, upstreamPort, tap, host = "api.openai.com", ...overrides }: AiProxyOptions): Promise<RunningProxy> {
  return startProxy({
    listen: { host: "127.0.0.1", port: 0 },
    tlsMitm: true,
    allTraffic: false,
    issuer,
    isAiHost: (h) => h === host,
    upstreamCa: [upstreamCaPem],
    resolve: new Map([[`${host}:443`, `127.0.0.1:${upstreamPort}`]]),
    tap,
    lookupProcess: async () => undefined,
    log: silentLogger,
    ...overrides,
  });
}

/** CONNECT `host`:443 through the proxy on `port`; resolves with the raw socket once the 200 is read. */
export async function connectTunnel(port: number, host = "api.openai.com"): Promise<net.Socket> {
  const raw = net.connect(port, "127.0.0.1");
  raw.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
  let head = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      raw.off("data", onData);
      resolve();
    };
    raw.on("data", onData);
    raw.once("error", reject);
  });
  expect(head.split("\r\n")[0]).toBe("HTTP/1.1 200 Connection Established");
  return raw;
}

/** A TLS client (HTTP/1.1, trusting only `caPem`) through the proxy's CONNECT; resolves once its handshake is done. */
export async function tlsThroughProxy(port: number, caPem: string, host = "api.openai.com"): Promise<tls.TLSSocket> {
  const raw = await connectTunnel(port, host);
  const client = tls.connect({ socket: raw, servername: host, ca: [caPem], ALPNProtocols: ["http/1.1"] });
  let failure: Error | undefined; // the handshake's error, if any, is what a failed connect rejects with
  client.on("error", (err) => (failure ??= err));
  await new Promise<void>((resolve, reject) => {
    client.once("secureConnect", () => resolve());
    client.once("close", () => reject(failure ?? new Error("closed during the handshake")));
  });
  return client;
}
