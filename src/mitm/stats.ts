// Counters shown by `oisp status` and the dashboard. Plain numbers, updated in place by the relay.
export interface ProxyStats {
  connectionsTotal: number;
  connectionsActive: number;
  /** TLS connections decrypted and tapped. */
  intercepted: number;
  /** Relayed blind (not an AI host, pinned, not TLS, interception off, fallbacks). */
  passthrough: number;
  /** Connections relayed blind and untapped because capture was paused when they started. */
  paused: number;
  /** Plain-HTTP (absolute-form) upstream connections, tapped. */
  plain: number;
  /** Hosts currently passed through because a client refused our certificate. */
  pinnedHosts: number;
  /** Handshakes in which the client refused our certificate. */
  clientRejected: number;
  /** Upstream connect or TLS failures. */
  upstreamErrors: number;
  /**
   * Intercepted connections whose upstream leg was reopened: it closed before the client's handshake was done,
   * or (handshakes in parallel) chose another ALPN than the client had been answered with.
   */
  upstreamRedials: number;
  /**
   * Intercepted connections whose first request went to a fresh upstream leg: the upstream closed the first leg
   * before answering, and the retry rule of first-exchange.ts allowed it.
   */
  upstreamRetries: number;
  /** Intercepted connections whose first upstream leg had been idle STALE_LEG_MS when the first request came: replaced before use. */
  upstreamStaleLegs: number;
  /** Intercepted connections whose two handshakes ran at once (an upstream verified recently). */
  parallelHandshakes: number;
  /** Upstream legs that resumed an earlier TLS session (an abbreviated handshake). */
  upstreamResumed: number;
  /** Malformed or unsupported proxy requests answered with 4xx. */
  badRequests: number;
  /** Clients that spoke TLS to the proxy port itself (an https:// proxy URL): answered with an alert at once. */
  tlsToProxyPort: number;
  /** Connections refused because the concurrent-connection limit was reached. */
  refusedOverLimit: number;
  /** Tap sink threw (the relay went on). */
  tapErrors: number;
  bytesClientToServer: number;
  bytesServerToClient: number;
}

export function newProxyStats(): ProxyStats {
  return {
    connectionsTotal: 0,
    connectionsActive: 0,
    intercepted: 0,
    passthrough: 0,
    paused: 0,
    plain: 0,
    pinnedHosts: 0,
    clientRejected: 0,
    upstreamErrors: 0,
    upstreamRedials: 0,
    upstreamRetries: 0,
    upstreamStaleLegs: 0,
    parallelHandshakes: 0,
    upstreamResumed: 0,
    badRequests: 0,
    tlsToProxyPort: 0,
    refusedOverLimit: 0,
    tapErrors: 0,
    bytesClientToServer: 0,
    bytesServerToClient: 0,
  };
}
