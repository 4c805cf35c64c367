// Entry point of the Windows capture for `oisp redirect`: checks elevation, finds WinDivert, starts the
// divert listener and the packet workers, and hands diverted connections to the proxy. The CLI wires it:
//
//   const lookup = processLookupForPlatform();
//   const proxy = await startProxy({ listen: { host: "127.0.0.1", port: 0 }, ..., lookupProcess: lookup });
//   const win = await startWindowsRedirect({ proxy, lookupProcess: lookup, divertPort: flags.port, ... });
//   process.on("SIGINT", () => win.stop().then(() => proxy.close()));   // stop diverting first
import path from "node:path";
import type { Logger } from "../../util/log.ts";
import type { ProcessLookup } from "../process/index.ts";
import type { TransparentDestination } from "../proxy/server.ts";
import type net from "node:net";
import type { ProcessInfo } from "../../tap/types.ts";
import { startBridge, type RunningBridge } from "./bridge.ts";
import { findWinDivertDll } from "./dll.ts";
import { aiHostsToSeed, resolveSeeds } from "./seed.ts";
import { startWinDivert, type WinDivertCapture, type WinDivertStats } from "./redirector.ts";

export class NotElevatedError extends Error {
  constructor() {
    super("oisp redirect must run as Administrator (WinDivert loads a driver): open an elevated terminal and run it again.");
    this.name = "NotElevatedError";
  }
}

export interface WindowsRedirectOptions {
  /** Port the reflected connections arrive on (the seed's --port, default 8443). */
  divertPort: number;
  /** The running proxy (its transparent entry). */
  proxy: { handleTransparent(client: net.Socket, dest: TransparentDestination): void };
  /** The platform process lookup (Windows: TCP owner table), for connections without a SOCKET-layer PID. */
  lookupProcess: ProcessLookup;
  /** "host:port" → "addr[:port]" overrides of where to connect (the proxy's --resolve). */
  resolve?: Map<string, string>;
  allTraffic: boolean;
  dataDir: string;
  windivertDir?: string;
  embedded?: { dll: string; sys: string };
  log: Logger;
  onError?: (message: string) => void;
  /** Tests: a library path to load instead of discovering WinDivert.dll, and no elevation check. */
  dllPath?: string;
  extraAiHosts?: string[];
  useSpec?: boolean;
  socketLayer?: boolean;
  /** Resolve the spec's AI hosts at start so connections using cached DNS answers are diverted (default on with the spec). */
  seedDns?: boolean;
}

export interface WindowsRedirect {
  capture: WinDivertCapture;
  bridge: RunningBridge;
  stats(): { divert: WinDivertStats; bridge: ReturnType<RunningBridge["stats"]> };
  /** Stops diverting first (traffic flows normally again), then closes the listener. */
  stop(): Promise<void>;
}

async function windowsProcessInfo(): Promise<((pid: number) => ProcessInfo) | undefined> {
  if (process.platform !== "win32") return undefined;
  return (await import("../process/windows.ts")).windowsProcessInfo;
}

export async function startWindowsRedirect(opts: WindowsRedirectOptions): Promise<WindowsRedirect> {
  let dllPath = opts.dllPath;
  if (!dllPath) {
    if (process.platform === "win32") {
      const { isElevated } = await import("../../../ffi/win32.ts");
      if (!isElevated()) throw new NotElevatedError();
    }
    dllPath = findWinDivertDll({
      explicitDir: opts.windivertDir ?? process.env.OISP_WINDIVERT_DIR,
      exeDir: path.dirname(process.execPath),
      dataDir: opts.dataDir,
      embedded: opts.embedded,
      requireDriver: process.platform === "win32",
    });
  }
  // The listener first: reflected SYNs must find it.
  let capture: WinDivertCapture | undefined;
  const bridge = await startBridge({
    listen: { host: "::", port: opts.divertPort },
    directory: { originalDestination: (peer, waitMs) => capture ? capture.originalDestination(peer, waitMs) : Promise.resolve(undefined) },
    proxy: opts.proxy,
    lookupProcess: opts.lookupProcess,
    resolve: opts.resolve,
    log: opts.log,
    processInfo: await windowsProcessInfo(),
  });
  const seeds = opts.seedDns ?? opts.useSpec ?? true ? await resolveSeeds([...aiHostsToSeed(), ...(opts.extraAiHosts ?? [])]) : [];
  opts.log("debug", `windivert: ${seeds.length} AI host addresses resolved at start`);
  try {
    capture = await startWinDivert({
      seeds,
      dllPath,
      proxyPort: bridge.address.port,
      allTraffic: opts.allTraffic,
      extraAiHosts: opts.extraAiHosts,
      useSpec: opts.useSpec,
      socketLayer: opts.socketLayer,
      log: opts.log,
      onError: opts.onError,
    });
  } catch (e) {
    await bridge.close();
    throw e;
  }
  const cap = capture;
  return {
    capture: cap,
    bridge,
    stats: () => ({ divert: cap.stats(), bridge: bridge.stats() }),
    async stop() {
      await cap.stop();
      await bridge.close();
    },
  };
}
