// `oisp up --capture ebpf` and `oisp redirect --mode ebpf`: TLS plaintext read by uprobes at the TLS
// library (src/capture/ebpf/), no proxy, no CA, nothing to set in the application's shell. `up` feeds the
// sensor worker in the same process; `redirect` sends to a user's `oisp sensor` over IPC, so the bytes are
// decoded at the sensor's privilege, not root's.
import path from "node:path";
import type { EbpfCapture, EbpfStats } from "../capture/ebpf/tls-capture.ts";
import type { TapSink } from "../tap/types.ts";
import { UsageError } from "../util/args.ts";
import type { Logger } from "../util/log.ts";
import { VERSION } from "../version.ts";

export const ebpfFlagSpec = {
  capture: { type: "string" },
  pid: { type: "string", multiple: true },
} as const;

export const ebpfFlagsHelp = `  --capture proxy|ebpf    proxy (default): apps opt in with HTTPS_PROXY and trust the local CA;
                          ebpf (Linux, root): read TLS plaintext inside OpenSSL with eBPF uprobes, no proxy,
                          no CA, nothing to set in the app's shell (OpenSSL users: curl, Python, Node)
  --pid PID               ebpf: capture only this process and its descendants (repeatable; default: all)`;

export function parsePids(values: string[] | undefined): number[] | undefined {
  if (!values?.length) return undefined;
  return values.map((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--pid ${v}: expected a process id`);
    return n;
  });
}

/**
 * Starts eBPF capture into `tap`: the TLS probes, and beside them the process source (process.exec,
 * file.write, metadata-only connects of apps the probes cannot read). Loaded only in this mode, so proxy mode
 * never touches libbpf. The process source is an addition: when it cannot start, TLS capture goes on alone.
 */
export async function startEbpf(opts: { tap: TapSink; log: Logger; pids?: number[]; paused?: () => boolean; libDir: string; allTraffic?: boolean }): Promise<EbpfCapture> {
  // Root, BTF and uprobes first (one line naming what is missing), then libbpf (the system's, else the
  // binary's copy): both sources load their BPF objects through it.
  const { ebpfPreflight } = await import("../capture/ebpf/preflight.ts");
  ebpfPreflight();
  const { prepareLibbpf } = await import("../../ffi/libbpf.ts");
  await prepareLibbpf(opts.libDir);
  const { startEbpfCapture } = await import("../capture/ebpf/tls-capture.ts");
  const { procSide } = await import("../capture/ebpf/proc-wiring.ts");
  const side = procSide(opts);
  const tls = await startEbpfCapture({ ...opts, tap: side.tap });
  try {
    await side.start();
  } catch (err) {
    opts.log("warn", `ebpf: process.exec / file.write capture unavailable: ${(err as Error).message}`);
  }
  return {
    stats: () => {
      const proc = side.stats();
      return { ...tls.stats(), ...(proc && { proc }) };
    },
    rescan: () => tls.rescan(),
    stop: async () => {
      await tls.stop();
      await side.close();
    },
  };
}

export function ebpfBanner(stats: EbpfStats, pids?: number[]): string {
  const where = stats.attached.map((a) => a.path).join(", ") || "no TLS library yet (new ones are found as processes start)";
  const scope = pids ? `processes ${pids.join(", ")} and their descendants` : "every process";
  return `Capturing TLS plaintext with eBPF for ${scope}: no proxy, no CA, nothing to set in your shell.\nProbes on: ${where}.\nApps with their own TLS stack (Bun, Go, Rust, Electron) are not visible this way: use --capture proxy for them.\nPress Ctrl+C to stop.`;
}

/** The `ebpf` section of the status snapshot. */
export function ebpfStatus(stats: EbpfStats) {
  return {
    attached: stats.attached,
    failed: stats.failed,
    records: stats.records,
    records_per_sec: stats.recordsPerSec,
    ring_drops: stats.ringDrops,
    lost_bytes: stats.lostBytes,
    ssl_calls: stats.sslCalls,
    sessions: stats.streams.sessions,
    active_sessions: stats.streams.activeSessions,
    gaps: stats.streams.gaps,
    sessions_not_ai: stats.streams.ignored,
    ...(stats.proc && {
      processes: {
        watched: stats.proc.watched,
        execs: stats.proc.worker.execs,
        file_writes: stats.proc.worker.fileWrites,
        lost_chunks: stats.proc.worker.lostChunks,
        kernel: stats.proc.kernel,
      },
      // Apps whose TLS the probes cannot read (Bun, Go, rustls, Electron): seen only by their ClientHello.
      metadata_only: stats.proc.metadataOnly,
    }),
  };
}

/** `oisp redirect --mode ebpf`: capture into the IPC tap until stopped. */
export async function redirectEbpf(o: { dataDir: string; log: Logger; allTraffic: boolean; tap: TapSink & { stats(): object; close(): Promise<void> }; pipePath: string; pids?: number[] }): Promise<number> {
  const { watchPauseState } = await import("../config/pause.ts");
  const { startStatusFile, statusFilePath } = await import("../sensor/status-file.ts");
  const { listenForStop } = await import("./lifecycle.ts");
  const pause = watchPauseState(o.dataDir, { log: o.log });
  let capture: EbpfCapture;
  try {
    capture = await startEbpf({ tap: o.tap, log: o.log, pids: o.pids, paused: () => pause.paused(), libDir: path.join(o.dataDir, "lib"), allTraffic: o.allTraffic });
  } catch (err) {
    pause.stop();
    await o.tap.close();
    throw err;
  }
  o.log("info", `oisp redirect ${VERSION}: eBPF TLS capture, sensor at ${o.pipePath}`);
  console.log(ebpfBanner(capture.stats(), o.pids));
  // Listening before the status file exists: that file is what makes the dashboard offer "Stop capture".
  const stop = listenForStop(o.dataDir, o.log);
  const status = startStatusFile({
    file: statusFilePath(o.dataDir, "redirect"),
    dataDir: o.dataDir,
    roles: ["redirect", "ebpf"],
    log: o.log,
    sections: () => ({ ebpf: ebpfStatus(capture.stats()), tap: { path: o.pipePath, stats: o.tap.stats() }, capture: pause.state() }),
  });
  await stop.stopped;
  stop.cancel();
  try {
    await capture.stop();
    await o.tap.close();
  } finally {
    pause.stop();
    status.stop();
  }
  return 0;
}
