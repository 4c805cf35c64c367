// Shared set-up for the IPC integration tests: the real server and client in a temp data dir, a sink
// that writes down what it receives, and cleanup after each test (registered by ipcHarness()).
import { afterEach } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { HostActivity } from "../../src/tap/activity.ts";
import type { ConnMeta, Direction, TapSink } from "../../src/tap/types.ts";
import { IpcTapClient, type IpcTapClientOptions } from "../../src/ipc/client.ts";
import { defaultPipePath } from "../../src/ipc/endpoint.ts";
import { startIpcServer, type IpcServer, type IpcServerOptions } from "../../src/ipc/server.ts";
import type { LogLevel } from "../../src/util/log.ts";

/** A TapSink that writes down what it receives, one readable line per call. */
export class RecordingSink implements TapSink {
  lines: string[] = [];
  open(meta: ConnMeta): void {
    this.lines.push(`open ${meta.connId} ${meta.host}`);
  }
  data(connId: string, dir: Direction, bytes: Uint8Array): void {
    this.lines.push(`data ${connId} ${dir} ${new TextDecoder().decode(bytes)}`);
  }
  close(connId: string, _ts: number, error?: string): void {
    this.lines.push(`close ${connId}${error ? ` ${error}` : ""}`);
  }
  activity(items: HostActivity[]): void {
    for (const a of items) this.lines.push(`activity ${a.kind} ${a.pid} ${a.kind === "exec" ? a.argv.join(" ") : a.path}`);
  }
}

export function meta(connId: string): ConnMeta {
  return {
    connId,
    startedAt: 1,
    client: { ip: "127.0.0.1", port: 1 },
    server: { ip: "127.0.0.1", port: 443 },
    host: "api.openai.com",
    mode: "mitm",
    captureMethod: "mitm_proxy",
  };
}

export interface Logs {
  lines: string[];
  log: (level: LogLevel, msg: string) => void;
}
export function logs(): Logs {
  const lines: string[] = [];
  return { lines, log: (level, msg) => lines.push(`${level}: ${msg}`) };
}

/** Call at the top of a test file: everything made through the returned functions is closed after each test. */
export function ipcHarness(prefix: string) {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  return {
    cleanup,
    tempDataDir(): string {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
      cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
      return dir;
    },
    async sensor(dataDir: string, extra: Partial<IpcServerOptions> = {}): Promise<{ server: IpcServer; sink: RecordingSink; logs: Logs }> {
      const sink = new RecordingSink();
      const l = logs();
      const server = await startIpcServer({ path: defaultPipePath(dataDir), dataDir, sink, log: l.log, ...extra });
      cleanup.push(() => server.close());
      return { server, sink, logs: l };
    },
    client(dataDir: string, extra: Partial<IpcTapClientOptions> = {}): { tap: IpcTapClient; logs: Logs } {
      const l = logs();
      const tap = new IpcTapClient({
        path: defaultPipePath(dataDir),
        dataDir,
        spoolDir: path.join(dataDir, "spool"),
        log: l.log,
        reconnectMinMs: 10,
        reconnectMaxMs: 50,
        ...extra,
      });
      cleanup.push(() => tap.close());
      return { tap, logs: l };
    },
  };
}
