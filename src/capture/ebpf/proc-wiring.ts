// Runs the process source (proc-capture.ts) beside the TLS probes (tls-capture.ts): a tap in front of the
// sensor's tap notes which connections the TLS probes read (so a ClientHello of the same connection is not
// reported again as metadata only) and watches every process the probes saw call an AI host.
import { matchEndpoint } from "../../spec/endpoints.ts";
import type { HostActivity } from "../../tap/activity.ts";
import type { ConnMeta, Direction, TapSink } from "../../tap/types.ts";
import type { Logger } from "../../util/log.ts";
import { ProcCapture, type ProcCaptureStats } from "./proc-capture.ts";

const MAX_SEEN = 16_384;

export interface ProcSide {
  /** The tap to give the TLS capture. */
  tap: TapSink;
  /** Loads and attaches the process source (after the TLS capture: it finds libbpf first). */
  start(): Promise<void>;
  /** Undefined until started (or when it could not start). */
  stats(): ProcCaptureStats | undefined;
  close(): Promise<void>;
}

export function procSide(opts: { tap: TapSink; log: Logger; pids?: number[] }): ProcSide {
  /** "pid:localPort" of connections the TLS probes opened, and the pids that had any (both bounded). */
  const seen = new Set<string>();
  const seenPids = new Set<number>();
  let proc: ProcCapture | undefined;
  const tap: TapSink = {
    open(meta: ConnMeta) {
      if (meta.captureMethod === "ebpf_uprobe" && meta.process) {
        remember(seen, `${meta.process.pid}:${meta.client.port}`);
        remember(seenPids, meta.process.pid);
        if (matchEndpoint(meta.host, meta.port ?? meta.server.port)) proc?.watch(meta.process.pid);
      }
      opts.tap.open(meta);
    },
    data(connId: string, dir: Direction, bytes: Uint8Array, ts: number) {
      opts.tap.data(connId, dir, bytes, ts);
    },
    close(connId: string, ts: number, error?: string) {
      opts.tap.close(connId, ts, error);
    },
    activity(items: HostActivity[]) {
      opts.tap.activity?.(items);
    },
  };
  // A tap without activity cannot carry process.exec / file.write: watch nothing then (no such records in
  // the kernel); metadata-only connects still go. (Both of ours have it: the up worker's and the IPC link's.)
  const watchProcesses = typeof opts.tap.activity === "function";
  if (!watchProcesses) opts.log("info", "ebpf: this capture's sink takes no process.exec / file.write: not recording them");
  return {
    tap,
    async start() {
      proc = await ProcCapture.start({
        tap: opts.tap,
        log: opts.log,
        watchProcesses,
        scopeRoots: opts.pids,
        // This connection was read by the TLS probes, or any of this process's: its TLS is visible to them, so a
        // connection whose first bytes come later than the hold (a pre-opened pool) is not reported as invisible.
        plaintextSeen: (pid, local) => seen.has(`${pid}:${local.port}`) || seenPids.has(pid),
      });
    },
    stats: () => proc?.stats(),
    close: async () => {
      await proc?.close();
    },
  };
}

function remember<T>(set: Set<T>, v: T): void {
  set.delete(v);
  set.add(v);
  if (set.size > MAX_SEEN) set.delete(set.values().next().value!);
}
