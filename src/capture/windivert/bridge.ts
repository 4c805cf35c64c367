// The transparent listener: reflected connections arrive here (peer = original server S and the client's
// port cp, see engine.ts); the WinDivert directory says where each was really going and who opened it,
// and the socket is handed to the proxy's transparent entry (RunningProxy.handleTransparent), which peeks
// the ClientHello, decides intercept-or-pass by SNI, connects upstream, relays and taps.
import net from "node:net";
import type { TransparentDestination } from "../proxy/server.ts";
import type { ProcessLookup } from "../process/index.ts";
import type { Endpoint, ProcessInfo } from "../../tap/types.ts";
import type { OriginalDestination, WinDivertCapture } from "./redirector.ts";
import type { Logger } from "../../util/log.ts";

export interface BridgeOptions {
  /** The wildcard address (reflected packets are addressed to the client's own interface address). */
  listen: { host: string; port: number };
  directory: Pick<WinDivertCapture, "originalDestination">;
  proxy: { handleTransparent(client: net.Socket, dest: TransparentDestination): void };
  /** Owner of the original client socket (C:cp → S:sp), when the SOCKET layer did not give a PID. */
  lookupProcess: ProcessLookup;
  /** PID → ProcessInfo (Windows: image path); default { pid }. */
  processInfo?: (pid: number) => ProcessInfo;
  /** "host:port" → "addr[:port]": where to connect instead (the proxy's --resolve, for tests). */
  resolve?: Map<string, string>;
  log: Logger;
  maxConnections?: number;
}

export interface BridgeStats {
  accepted: number;
  notDiverted: number;
  handedOver: number;
  overLimit: number;
  active: number;
}

export interface RunningBridge {
  address: { host: string; port: number };
  stats(): BridgeStats;
  close(): Promise<void>;
}

/** Applies a --resolve style override to the original destination. */
export function resolveOverride(resolve: Map<string, string> | undefined, host: string | undefined, server: Endpoint): Endpoint {
  const to = resolve && ((host && resolve.get(`${host}:${server.port}`)) || resolve.get(`${server.ip}:${server.port}`));
  if (!to) return server;
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(to.includes(":") && !to.startsWith("[") && to.split(":").length > 2 ? `[${to}]` : to);
  return m ? { ip: m[1]!, port: m[2] ? Number(m[2]) : server.port } : server;
}

export function destinationFor(
  d: OriginalDestination, opts: Pick<BridgeOptions, "lookupProcess" | "processInfo" | "resolve">,
): TransparentDestination {
  const target = resolveOverride(opts.resolve, d.host, d.server);
  const info = opts.processInfo ?? ((pid: number) => ({ pid }));
  return {
    ip: target.ip,
    port: target.port,
    host: d.host,
    client: d.client,
    captureMethod: "windivert",
    // The SOCKET layer's PID when it had one; else the owner of the original client socket, which
    // still exists while this connection is being accepted.
    lookup: d.pid !== undefined ? async () => info(d.pid!) : () => opts.lookupProcess(d.client, d.server),
  };
}

export async function startBridge(opts: BridgeOptions): Promise<RunningBridge> {
  const maxConnections = opts.maxConnections ?? 10_000;
  const stats: BridgeStats = { accepted: 0, notDiverted: 0, handedOver: 0, overLimit: 0, active: 0 };
  const pending = new Set<net.Socket>();

  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    stats.accepted++;
    client.on("error", () => {});
    if (pending.size >= maxConnections) {
      stats.overLimit++;
      client.destroy();
      return;
    }
    pending.add(client);
    client.once("close", () => pending.delete(client));
    const peer: Endpoint = { ip: client.remoteAddress ?? "", port: client.remotePort ?? 0 };
    opts.directory
      .originalDestination(peer)
      .then((d) => {
        pending.delete(client);
        if (client.destroyed) return;
        if (!d) {
          stats.notDiverted++;
          opts.log("debug", `divert listener: ${peer.ip}:${peer.port} is not a diverted connection; closed`);
          client.destroy();
          return;
        }
        stats.handedOver++;
        opts.proxy.handleTransparent(client, destinationFor(d, opts));
      })
      .catch((e: Error) => {
        opts.log("error", `divert listener: ${e.message}`);
        client.destroy();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: opts.listen.host, port: opts.listen.port, ipv6Only: false }, () => resolve());
  });
  const addr = server.address() as net.AddressInfo;
  return {
    address: { host: addr.address, port: addr.port },
    stats: () => ({ ...stats, active: pending.size }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of pending) s.destroy();
        server.close(() => resolve());
      }),
  };
}
