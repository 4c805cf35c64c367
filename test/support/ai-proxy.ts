// The in-process intercepting proxy the proxy-level tests start: one AI host (api.openai.com by default) whose
// real address is a local test upstream, no process lookup, quiet. A test overrides what it varies.
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
