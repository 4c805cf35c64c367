// The packet loop, in a Worker because WinDivertRecvEx blocks its thread. One worker per handle:
//   network  NETWORK layer: receive a batch, let the engine pass/drop/rewrite each packet, send the
//            batch back; the main thread stops it with WinDivertShutdown (recv then reports no data).
//   socket   SOCKET layer, sniffed and receive-only: records which PID connects from which port into
//            a SharedArrayBuffer the network worker reads (self-exclusion and process attribution).
// Fail open: any error ends the loop and is reported, and the main thread closes the handle (the driver then
// stops diverting); a packet the engine cannot handle is re-injected unchanged.
import {
  ADDRESS_SIZE, EVENT_SOCKET_CLOSE, EVENT_SOCKET_CONNECT, LAYER_NETWORK, LAYER_SOCKET, readFlags, readSocket, writeFlags,
} from "../../../ffi/windivert-address.ts";
import {
  BATCH_MAX, FLAG_RECV_ONLY, FLAG_SNIFF, loadWinDivert, MTU_MAX, PARAM_QUEUE_LENGTH, PARAM_QUEUE_SIZE, PARAM_QUEUE_TIME,
  WinDivertError, type DivertHandle, type WinDivert,
} from "../../../ffi/windivert.ts";
import { isAiHost as specIsAiHost } from "../../spec/endpoints.ts";
import { DivertEngine } from "./engine.ts";
import { networkFilter, SOCKET_FILTER } from "./filter.ts";
import { formatIp, parseIp } from "./packet.ts";
import { clearOwner, ownerOf, recordOwner, type DivertedInfo, type WorkerInit, type WorkerMessage } from "./protocol.ts";
import type { DivertedConn } from "./table.ts";

declare const self: Worker;
const post = (m: WorkerMessage) => self.postMessage(m);

/** Owner wait when the socket worker runs: its CONNECT event normally precedes the SYN by microseconds. */
const OWNER_WAIT_MS = 25;

function ipLength(buf: Uint8Array, off: number, avail: number): number {
  if (avail < 20) return 0;
  const v = buf[off]! >> 4;
  if (v === 4) return (buf[off + 2]! << 8) | buf[off + 3]!;
  if (v === 6 && avail >= 40) return 40 + ((buf[off + 4]! << 8) | buf[off + 5]!);
  return 0;
}

/** The engine's text form of an address (resolvers may write IPv6 differently). */
function normalizeIp(ip: string): string {
  const b = parseIp(ip);
  return b ? formatIp(b) : ip;
}

const info = (c: DivertedConn): DivertedInfo => ({
  key: c.key, clientIp: c.clientIp, clientPort: c.clientPort, serverIp: c.serverIp, serverPort: c.serverPort, host: c.host, pid: c.pid,
});

/** Loads the Windows TCP-table fallback lazily (only on Windows). */
async function tableOwner(): Promise<((ip: string, port: number, rip: string, rport: number) => number | undefined) | undefined> {
  if (process.platform !== "win32") return undefined;
  const { getTcpTable, AF_INET, AF_INET6 } = await import("../../../ffi/win32.ts");
  const { findOwner } = await import("../process/windows.ts");
  return (ip, port, rip, rport) => {
    try {
      return findOwner(getTcpTable(ip.includes(":") ? AF_INET6 : AF_INET), { ip, port }, { ip: rip, port: rport })?.pid;
    } catch {
      return undefined;
    }
  };
}

async function runNetwork(init: WorkerInit, lib: WinDivert, h: DivertHandle): Promise<void> {
  const owners = new Int32Array(init.owners);
  const fromTable = await tableOwner();
  const extra = new Set(init.extraAiHosts.map((x) => x.toLowerCase()));
  let events: ({ open: DivertedInfo } | { close: string })[] = [];
  const engine = new DivertEngine({
    proxyPort: init.proxyPort,
    allTraffic: init.allTraffic,
    isAiHost: (host) => extra.has(host) || (init.useSpec && specIsAiHost(host)),
    selfPid: init.selfPid,
    excludedPids: new Set(init.excludedPids),
    tlsPorts: init.tlsPorts,
    localPorts: init.localPorts,
    limits: init.limits,
    ownerPid: (f) =>
      ownerOf(owners, f.clientPort, f.serverIp, f.serverPort, init.socketLayer ? OWNER_WAIT_MS : 0) ??
      fromTable?.(f.clientIp, f.clientPort, f.serverIp, f.serverPort),
    onDiverted: (c) => events.push({ open: info(c) }),
    onClosed: (c) => events.push({ close: c.key }),
  });
  const SEED_TTL_S = 30 * 60;
  for (const s of init.seeds) engine.dns.learn(normalizeIp(s.ip), s.host, SEED_TTL_S, Date.now());
  const packets = new Uint8Array(BATCH_MAX * 2048 > MTU_MAX ? BATCH_MAX * 2048 : MTU_MAX);
  const addrs = new Uint8Array(BATCH_MAX * ADDRESS_SIZE);
  let batches = 0;
  let sendErrors = 0;
  let badBatches = 0;
  let lastExpire = Date.now();
  for (;;) {
    const got = lib.recv(h, packets, addrs);
    if (!got) break; // shut down and drained
    batches++;
    const now = Date.now();
    // Compact in place: output never overtakes input.
    let inOff = 0;
    let outOff = 0;
    let outCount = 0;
    for (let i = 0; i < got.count; i++) {
      const len = ipLength(packets, inOff, got.bytes - inOff);
      if (len === 0 || inOff + len > got.bytes) {
        badBatches++; // cannot find packet boundaries: the rest of this batch is lost (counted)
        break;
      }
      const pkt = packets.subarray(inOff, inOff + len);
      const flags = readFlags(addrs, i);
      let verdict: ReturnType<DivertEngine["handle"]>;
      try {
        verdict = engine.handle(pkt, { outbound: flags.outbound, loopback: flags.loopback }, now);
      } catch (e) {
        verdict = { kind: "pass", reason: `engine error: ${(e as Error).message}` };
      }
      if (verdict.kind !== "drop") {
        if (outOff !== inOff) packets.copyWithin(outOff, inOff, inOff + len);
        if (outCount !== i) addrs.copyWithin(outCount * ADDRESS_SIZE, i * ADDRESS_SIZE, (i + 1) * ADDRESS_SIZE);
        if (verdict.kind === "rewritten") {
          writeFlags(addrs, outCount, { outbound: verdict.outbound, ipChecksum: true, tcpChecksum: true });
        }
        outOff += len;
        outCount++;
      }
      inOff += len;
    }
    try {
      lib.send(h, packets, outOff, addrs, outCount);
    } catch (e) {
      sendErrors++;
      if (sendErrors <= 5) post({ type: "log", level: "warn", msg: `WinDivertSendEx: ${(e as Error).message}` });
    }
    if (now - lastExpire >= 1000) {
      lastExpire = now;
      engine.expire(now);
      post({ type: "stats", stats: { ...engine.stats, batches, sendErrors, badBatches } });
    }
    if (events.length > 0) {
      post({ type: "conns", events });
      events = [];
    }
  }
  post({ type: "stats", stats: { ...engine.stats, batches, sendErrors, badBatches } });
}

function runSocket(lib: WinDivert, h: DivertHandle, init: WorkerInit): void {
  const owners = new Int32Array(init.owners);
  const none = new Uint8Array(1);
  const addrs = new Uint8Array(BATCH_MAX * ADDRESS_SIZE);
  for (;;) {
    const got = lib.recv(h, none, addrs);
    if (!got) break;
    for (let i = 0; i < got.count; i++) {
      const s = readSocket(addrs, i);
      const remote = formatIp(s.remoteAddr);
      if (s.event === EVENT_SOCKET_CONNECT) recordOwner(owners, s.localPort, remote, s.remotePort, s.processId);
      else if (s.event === EVENT_SOCKET_CLOSE) clearOwner(owners, s.localPort, remote, s.remotePort);
    }
  }
}

async function main(init: WorkerInit): Promise<void> {
  let lib: WinDivert;
  let h: DivertHandle | undefined;
  try {
    lib = loadWinDivert(init.dllPath);
    if (init.role === "network") {
      h = lib.open(networkFilter(init), LAYER_NETWORK, init.priority, 0n);
      lib.setParam(h, PARAM_QUEUE_LENGTH, init.queueLength);
      lib.setParam(h, PARAM_QUEUE_SIZE, init.queueSize);
      lib.setParam(h, PARAM_QUEUE_TIME, init.queueTimeMs);
    } else {
      h = lib.open(SOCKET_FILTER, LAYER_SOCKET, init.priority, FLAG_SNIFF | FLAG_RECV_ONLY);
    }
    post({ type: "ready", role: init.role, handle: h.toString() });
    // From here the main thread owns the handle: it shuts it down and, once "stopped" says this loop no longer
    // uses it, closes it. Closing it here could race the main thread's WinDivertShutdown on a closed handle.
    const ready = h;
    h = undefined;
    if (init.role === "network") await runNetwork(init, lib, ready);
    else runSocket(lib, ready, init);
  } catch (e) {
    const code = e instanceof WinDivertError ? e.code : undefined;
    post({ type: "error", role: init.role, message: (e as Error).message, code });
  } finally {
    // Opened but never announced (a failed setParam): nobody else knows this handle.
    if (h !== undefined) {
      try {
        lib!.close(h);
      } catch {
        // already gone: nothing more to release
      }
    }
    post({ type: "stopped", role: init.role });
  }
}

self.onmessage = (e: MessageEvent<WorkerInit>) => {
  if (e.data?.type === "init") void main(e.data);
};
