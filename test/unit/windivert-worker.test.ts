// The WinDivert capture end to end through the real bun:ffi bindings and the real packet workers, with
// the stand-in library (built with gcc) playing the driver: packets "captured" on the NETWORK and
// SOCKET layers go in, the re-injected packets come out, and the proxy-facing directory answers.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ADDRESS_SIZE, EVENT_SOCKET_CONNECT, LAYER_NETWORK, LAYER_SOCKET, readNetwork, writeNetwork, writeSocket } from "../../ffi/windivert-address.ts";
import { formatIp, isParsed, parseIp, parsePacket } from "../../src/capture/windivert/packet.ts";
import { clearOwner, newOwnerTable, ownerOf, recordOwner } from "../../src/capture/windivert/protocol.ts";
import { startWinDivert } from "../../src/capture/windivert/redirector.ts";
import { silentLogger } from "../../src/util/log.ts";
import { buildStub, setNativeEnv, StubDir } from "../support/windivert-stub/stub.ts";
import { checksumsValid, dnsResponse, tcpPacket, udpPacket } from "../windows/packets.ts";

const C = "10.0.0.5";
const S = "162.159.140.245";
const P = 8443;
let dll: string;
let stub: StubDir;

beforeAll(() => {
  dll = buildStub("so");
});
afterAll(() => stub?.remove());

function netAddr(outbound: boolean, ifIdx = 12): Uint8Array {
  const a = new Uint8Array(ADDRESS_SIZE);
  writeNetwork(a, 0, { layer: LAYER_NETWORK, outbound, ifIdx, subIfIdx: 0 });
  return a;
}

function connectEvent(pid: number, localPort: number, remote: string, remotePort: number): Uint8Array {
  const a = new Uint8Array(ADDRESS_SIZE);
  writeSocket(a, 0, {
    layer: LAYER_SOCKET, event: EVENT_SOCKET_CONNECT, sniffed: true, outbound: true, endpointId: BigInt(localPort), parentEndpointId: 0n,
    processId: pid, localAddr: parseIp(C)!, remoteAddr: parseIp(remote)!, localPort, remotePort, protocol: 6,
  });
  return a;
}

async function until<T>(f: () => T | undefined, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

test("DNS-learned AI connection is reflected to the proxy, others and the proxy's own pass, PIDs attributed, shutdown stops", async () => {
  stub = new StubDir();
  stub.activate();
  stub.prepare(LAYER_NETWORK);
  stub.prepare(LAYER_SOCKET);
  const errors: string[] = [];
  const cap = await startWinDivert({
    dllPath: dll, proxyPort: P, allTraffic: false, extraAiHosts: ["api.openai.com"], useSpec: false, selfPid: 4242,
    log: silentLogger, onError: (m) => errors.push(m),
  });

  stub.capture(LAYER_SOCKET, [
    { addr: connectEvent(999, 50123, S, 443), packet: new Uint8Array(0) },
    { addr: connectEvent(4242, 50500, S, 443), packet: new Uint8Array(0) },
  ]);
  const dns = udpPacket({ src: "10.0.0.1", dst: C, sport: 53, dport: 41000, payload: dnsResponse("api.openai.com", "A", [{ name: "api.openai.com", type: "A", value: S, ttl: 60 }]) });
  const syn = tcpPacket({ src: C, dst: S, sport: 50123, dport: 443, flags: 0x02, seq: 1 });
  const own = tcpPacket({ src: C, dst: S, sport: 50500, dport: 443, flags: 0x02, seq: 2 }); // the proxy's upstream
  const other = tcpPacket({ src: C, dst: "93.184.216.34", sport: 50124, dport: 443, flags: 0x02, seq: 3 });
  const synack = tcpPacket({ src: C, dst: S, sport: P, dport: 50123, flags: 0x12, seq: 9, ack: 2 });
  // QUIC to the AI address: dropped, in the middle of a batch (the batch is compacted around it).
  const quic = udpPacket({ src: C, dst: S, sport: 50999, dport: 443, payload: new Uint8Array(30) });
  stub.capture(LAYER_NETWORK, [
    { addr: netAddr(false, 1), packet: dns },
    { addr: netAddr(true, 2), packet: syn },
    { addr: netAddr(true, 3), packet: quic },
    { addr: netAddr(true, 4), packet: own },
    { addr: netAddr(true, 5), packet: other },
    { addr: netAddr(true, 6), packet: synack },
  ]);

  const sent = await until(() => { const s = stub.sent(LAYER_NETWORK); return s.length >= 5 ? s : undefined; }, "5 re-injected packets");
  await Bun.sleep(50);
  expect(stub.sent(LAYER_NETWORK)).toHaveLength(5);
  // Each packet kept its own address through the compaction (interface indexes 1, 2, 4, 5, 6).
  expect(sent.map((s) => readNetwork(s.addr).ifIdx)).toEqual([1, 2, 4, 5, 6]);
  expect(sent[0]!.packet).toEqual(dns);
  expect(sent[2]!.packet).toEqual(own);
  expect(sent[3]!.packet).toEqual(other);
  expect(readNetwork(sent[2]!.addr).outbound).toBe(true);

  const view = (b: Uint8Array) => {
    const p = parsePacket(b);
    if (!isParsed(p)) throw new Error(p.error);
    return [formatIp(b, p.srcOff, p.addrLen), p.srcPort, formatIp(b, p.dstOff, p.addrLen), p.dstPort];
  };
  expect(view(sent[1]!.packet)).toEqual([S, 50123, C, P]);
  expect(readNetwork(sent[1]!.addr)).toMatchObject({ outbound: false, ifIdx: 2, ipChecksum: true, tcpChecksum: true });
  expect(checksumsValid(sent[1]!.packet)).toBe(true);
  expect(view(sent[4]!.packet)).toEqual([S, 443, C, 50123]);
  expect(checksumsValid(sent[4]!.packet)).toBe(true);

  // What the proxy's transparent listener asks on accept: its peer is S:cp (dual-stack form accepted).
  expect(await cap.originalDestination({ ip: `::ffff:${S}`, port: 50123 })).toEqual({
    server: { ip: S, port: 443 }, client: { ip: C, port: 50123 }, host: "api.openai.com", pid: 999,
  });
  expect(await cap.originalDestination({ ip: S, port: 50500 }, 50)).toBeUndefined();

  const t0 = performance.now();
  await cap.stop();
  expect(performance.now() - t0).toBeLessThan(2000);
  const calls = stub.calls();
  expect(calls.filter((c) => c.startsWith("open"))).toEqual([
    "open layer=3 priority=0 flags=5 filter=tcp and (event == CONNECT or event == CLOSE)",
    expect.stringMatching(/^open layer=0 priority=0 flags=0 filter=\(udp and udp.SrcPort == 53/),
  ]);
  expect(calls).toContain("param 0 16384");
  expect(calls).toContain("param 2 33554432");
  expect(calls.filter((c) => c.startsWith("shutdown")).sort()).toEqual(["shutdown layer=0 how=3", "shutdown layer=3 how=3"]);
  expect(calls.filter((c) => c.startsWith("close")).sort()).toEqual(["close layer=0", "close layer=3"]);
  expect(errors).toEqual([]);
  expect(cap.stats()).toMatchObject({ diverted: 1, quicBlocked: 1, dnsLearned: 1, selfExcluded: 1, badBatches: 0, sendErrors: 0 });
}, 15_000);

test("addresses resolved at start are diverted without any DNS packet", async () => {
  const dir = new StubDir();
  dir.activate();
  dir.prepare(LAYER_NETWORK);
  const cap = await startWinDivert({
    dllPath: dll, proxyPort: P, allTraffic: false, useSpec: false, socketLayer: false, selfPid: 4242, log: silentLogger,
    seeds: [{ host: "api.anthropic.com", ip: "2607:6bc0:0::10" }],
  });
  try {
    const syn = tcpPacket({ src: "2001:db8::5", dst: "2607:6bc0::10", sport: 50777, dport: 443, flags: 0x02 });
    dir.capture(LAYER_NETWORK, [{ addr: netAddr(true), packet: syn }]);
    const d = await cap.originalDestination({ ip: "2607:6bc0::10", port: 50777 }, 3000);
    expect(d).toMatchObject({ host: "api.anthropic.com", server: { ip: "2607:6bc0::10", port: 443 } });
  } finally {
    await cap.stop();
    dir.remove();
  }
}, 10_000);

test("only the main thread shuts down and closes the handles, after the workers' loops end", async () => {
  // A worker closing its own handle while stop() shuts it down handed WinDivertShutdown a closed handle; the
  // stub's calls say which OS thread made them.
  const dir = new StubDir();
  dir.activate();
  dir.prepare(LAYER_NETWORK);
  dir.prepare(LAYER_SOCKET);
  setNativeEnv("WINDIVERT_STUB_LOG_THREAD", "1");
  try {
    const cap = await startWinDivert({
      dllPath: dll, proxyPort: P, allTraffic: false, useSpec: false, socketLayer: true, selfPid: 4242, log: silentLogger, seeds: [],
    });
    await cap.stop();
    const threadsOf = (verb: string) => dir.calls().filter((c) => c.startsWith(`${verb} `)).map((c) => /thread=(\d+)$/.exec(c)![1]);
    const [opened, shut, closed] = [threadsOf("open"), threadsOf("shutdown"), threadsOf("close")];
    expect([opened.length, shut.length, closed.length]).toEqual([2, 2, 2]);
    expect(new Set([...shut, ...closed]).size).toBe(1); // one thread: the main one
    expect(opened).not.toContain(closed[0]); // not the workers, which opened them
    const calls = dir.calls().map((c) => c.replace(/ thread=\d+$/, ""));
    for (const layer of [0, 3]) expect(calls.indexOf(`close layer=${layer}`)).toBeGreaterThan(calls.indexOf(`shutdown layer=${layer} how=3`));
  } finally {
    setNativeEnv("WINDIVERT_STUB_LOG_THREAD", "");
    dir.remove();
  }
}, 10_000);

test("owner table: a CONNECT recorded by another thread wakes the waiting reader; CLOSE clears only its own entry", async () => {
  const sab = newOwnerTable();
  const t = new Int32Array(sab);
  // Atomics.wait is not allowed on the main thread: the waiting reader runs in a worker, as in production.
  const reader = new Worker(URL.createObjectURL(new Blob([`
    import { ownerOf } from ${JSON.stringify(require.resolve("../../src/capture/windivert/protocol.ts"))};
    self.onmessage = (e) => {
      const t0 = performance.now();
      const pid = ownerOf(new Int32Array(e.data.sab), 50123, "1.2.3.4", 443, e.data.wait);
      postMessage({ pid, ms: performance.now() - t0 });
    };
  `], { type: "application/typescript" })));
  const ask = (wait: number) => new Promise<{ pid?: number; ms: number }>((r) => { reader.onmessage = (e) => r(e.data); reader.postMessage({ sab, wait }); });
  const timedOut = await ask(30);
  expect(timedOut.pid).toBeUndefined();
  expect(timedOut.ms).toBeGreaterThanOrEqual(25);
  const pending = ask(2000);
  await Bun.sleep(20);
  recordOwner(t, 50123, "1.2.3.4", 443, 777);
  const woke = await pending;
  expect(woke.pid).toBe(777);
  expect(woke.ms).toBeLessThan(1000);
  // Same port, other remote: not this connection's owner (port reuse).
  expect(ownerOf(t, 50123, "5.6.7.8", 443, 0)).toBeUndefined();
  clearOwner(t, 50123, "5.6.7.8", 443); // someone else's close: no effect
  expect(ownerOf(t, 50123, "1.2.3.4", 443, 0)).toBe(777);
  clearOwner(t, 50123, "1.2.3.4", 443);
  expect(ownerOf(t, 50123, "1.2.3.4", 443, 0)).toBeUndefined();
  reader.terminate();
});

test("open failure (not elevated) rejects with the actionable message and leaves nothing running", async () => {
  const dir = new StubDir();
  dir.activate();
  setNativeEnv("WINDIVERT_STUB_OPEN_ERROR", "5");
  try {
    await expect(startWinDivert({ dllPath: dll, proxyPort: P, allTraffic: true, useSpec: false, log: silentLogger })).rejects.toThrow(
      /run oisp redirect as Administrator/,
    );
  } finally {
    setNativeEnv("WINDIVERT_STUB_OPEN_ERROR", undefined);
    dir.remove();
  }
}, 10_000);
