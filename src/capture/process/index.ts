// Process attribution per platform: which process owns the client end of a proxied connection.
import type { Endpoint, ProcessInfo } from "../../tap/types.ts";
import { createThreadedLinuxLookup } from "./threaded.ts";
import { createWindowsProcessLookup } from "./windows.ts";

/**
 * `client` is the connecting socket's address as the proxy sees it, `proxy` the address it connected to.
 * Resolves undefined when the owner cannot be found (another namespace, a process gone, no permission);
 * never rejects on purpose, but callers still guard it.
 */
export type ProcessLookup = (client: Endpoint, proxy: Endpoint) => Promise<ProcessInfo | undefined>;

export const noProcessLookup: ProcessLookup = async () => undefined;

/** On Linux the /proc scan runs in a Worker (threaded.ts), off the thread that relays the traffic. */
export function processLookupForPlatform(platform: NodeJS.Platform = process.platform): ProcessLookup {
  if (platform === "linux") return createThreadedLinuxLookup();
  if (platform === "win32") return createWindowsProcessLookup();
  return noProcessLookup;
}
