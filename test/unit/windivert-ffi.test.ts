// The real bun:ffi WinDivert bindings against the stand-in library built with gcc: address layout as the
// C compiler sees it, batched RecvEx/SendEx, Shutdown unblocking, error codes, and the helpers'
// checksums cross-checked with the TypeScript ones.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { dlopen } from "bun:ffi";
import {
  ADDRESS_SIZE, EVENT_SOCKET_CONNECT, LAYER_NETWORK, LAYER_SOCKET, readNetwork, readSocket, writeNetwork, writeSocket,
} from "../../ffi/windivert-address.ts";
import { loadWinDivert, PARAM_QUEUE_LENGTH, WinDivertError, type WinDivert } from "../../ffi/windivert.ts";
import { parseIp } from "../../src/capture/windivert/packet.ts";
import { buildStub, setNativeEnv, StubDir } from "../support/windivert-stub/stub.ts";
import { checksumsValid, tcpPacket, udpPacket } from "../windows/packets.ts";

let lib: WinDivert;
let libPath: string;
let stub: StubDir;

beforeAll(() => {
  libPath = buildStub("so");
  stub = new StubDir();
  stub.activate();
  lib = loadWinDivert(libPath);
});
afterAll(() => stub.remove());

function describeAddress(addr: Uint8Array): string {
  const d = dlopen(libPath, { WinDivertStubDescribeAddress: { args: ["ptr", "ptr", "u32"], returns: "i32" } });
  const out = new Uint8Array(512);
  const n = d.symbols.WinDivertStubDescribeAddress(addr, out, out.length);
  d.close();
  return new TextDecoder().decode(out.subarray(0, n));
}

describe("WINDIVERT_ADDRESS layout", () => {
  test("network fields written with DataView read back identically through the C struct's bitfields", () => {
    const a = new Uint8Array(ADDRESS_SIZE);
    writeNetwork(a, 0, { timestamp: 123456789012n, layer: LAYER_NETWORK, event: 0, outbound: true, loopback: false, impostor: true, ipv6: true, tcpChecksum: true, ifIdx: 17, subIfIdx: 3 });
    expect(describeAddress(a)).toStartWith("ts=123456789012 layer=0 event=0 sniffed=0 outbound=1 loopback=0 impostor=1 ipv6=1 ipc=0 tcpc=1 udpc=0 if=17 sub=3");
    expect(readNetwork(a)).toMatchObject({ timestamp: 123456789012n, outbound: true, impostor: true, ipv6: true, tcpChecksum: true, ifIdx: 17, subIfIdx: 3, sniffed: false });
    for (const bit of ["sniffed", "outbound", "loopback", "impostor", "ipv6", "ipChecksum", "tcpChecksum", "udpChecksum"] as const) {
      const b = new Uint8Array(ADDRESS_SIZE);
      writeNetwork(b, 0, { [bit]: true });
      const names = ["sniffed", "outbound", "loopback", "impostor", "ipv6", "ipc", "tcpc", "udpc"];
      const text = describeAddress(b);
      const ones = names.filter((n) => text.includes(` ${n}=1`));
      expect(ones).toEqual([names[["sniffed", "outbound", "loopback", "impostor", "ipv6", "ipChecksum", "tcpChecksum", "udpChecksum"].indexOf(bit)]!]);
    }
  });

  test("socket-layer data (PID, ports, reversed IPv6 words, mapped IPv4)", () => {
    const a = new Uint8Array(ADDRESS_SIZE * 2);
    const s = { layer: LAYER_SOCKET, event: EVENT_SOCKET_CONNECT, endpointId: 99n, parentEndpointId: 1n, processId: 4321, localAddr: parseIp("10.0.0.5")!, remoteAddr: parseIp("162.159.140.245")!, localPort: 50123, remotePort: 443, protocol: 6 };
    writeSocket(a, 1, s);
    expect(describeAddress(a.subarray(ADDRESS_SIZE))).toContain("layer=3 event=4");
    expect(describeAddress(a.subarray(ADDRESS_SIZE))).toContain("pid=4321 lport=50123 rport=443 proto=6 ep=99");
    expect(readSocket(a, 1)).toMatchObject(s);
    // LocalAddr[0] is the IPv4 address in host order, LocalAddr[1] is 0xffff (IPv4-mapped).
    const dv = new DataView(a.buffer, ADDRESS_SIZE);
    expect(dv.getUint32(36, true)).toBe(0x0a000005);
    expect(dv.getUint32(40, true)).toBe(0xffff);
    const v6 = { ...s, localAddr: parseIp("2001:db8::5")!, remoteAddr: parseIp("2606:4700::1")! };
    writeSocket(a, 0, v6);
    expect(readSocket(a, 0)).toMatchObject(v6);
    expect(new DataView(a.buffer).getUint32(36 + 12, true)).toBe(0x20010db8); // word 3 = first 32 bits
  });
});

describe("bindings over the stand-in library", () => {
  test("batched recv returns concatenated packets with their addresses; send records them", () => {
    stub.prepare(LAYER_NETWORK);
    const h = lib.open("outbound and tcp.DstPort == 443", LAYER_NETWORK, 0, 0n);
    lib.setParam(h, PARAM_QUEUE_LENGTH, 16384);
    const pkts = [
      tcpPacket({ src: "10.0.0.5", dst: "1.2.3.4", sport: 1000, dport: 443, flags: 2 }),
      tcpPacket({ src: "2001:db8::5", dst: "2606:4700::1", sport: 1001, dport: 443, flags: 2, payload: new Uint8Array(33) }),
      udpPacket({ src: "10.0.0.53", dst: "10.0.0.5", sport: 53, dport: 999, payload: new Uint8Array(5) }),
    ];
    stub.capture(LAYER_NETWORK, pkts.map((packet, i) => {
      const addr = new Uint8Array(ADDRESS_SIZE);
      writeNetwork(addr, 0, { outbound: i < 2, ipv6: i === 1, ifIdx: 7 + i });
      return { addr, packet };
    }));
    const buf = new Uint8Array(65536);
    const addrs = new Uint8Array(ADDRESS_SIZE * 2);
    const r1 = lib.recv(h, buf, addrs)!;
    expect(r1.count).toBe(2); // limited by the address buffer
    expect(buf.subarray(0, r1.bytes)).toEqual(new Uint8Array(Buffer.concat([pkts[0]!, pkts[1]!])));
    expect(readNetwork(addrs, 1)).toMatchObject({ ipv6: true, ifIdx: 8, outbound: true });
    const r2 = lib.recv(h, buf, addrs)!;
    expect(r2.count).toBe(1);
    expect(readNetwork(addrs, 0)).toMatchObject({ outbound: false, ifIdx: 9 });

    const out = Buffer.concat([pkts[1]!, pkts[0]!]);
    const outAddrs = new Uint8Array(ADDRESS_SIZE * 2);
    writeNetwork(outAddrs, 0, { ifIdx: 1 });
    writeNetwork(outAddrs, 1, { ifIdx: 2 });
    lib.send(h, out, out.length, outAddrs, 2);
    const sent = stub.sent(LAYER_NETWORK);
    expect(sent.map((s) => s.packet)).toEqual([pkts[1]!, pkts[0]!]);
    expect(sent.map((s) => readNetwork(s.addr).ifIdx)).toEqual([1, 2]);
    lib.close(h);
    expect(stub.calls()).toEqual([
      "open layer=0 priority=0 flags=0 filter=outbound and tcp.DstPort == 443",
      "param 0 16384",
      "close layer=0",
    ]);
  });

  test("shutdown from another thread ends a blocked recv with 'no data'", async () => {
    const h = lib.open("true", 1, 0, 0n); // NETWORK_FORWARD: nothing queued for it in the stub dir
    // The blocking recv runs in a worker; the main thread shuts the handle down.
    const worker = new Worker(URL.createObjectURL(new Blob([`
      import { loadWinDivert } from ${JSON.stringify(require.resolve("../../ffi/windivert.ts"))};
      self.onmessage = (e) => {
        const lib = loadWinDivert(e.data.path);
        postMessage("receiving");
        const r = lib.recv(BigInt(e.data.h), new Uint8Array(2048), new Uint8Array(80));
        postMessage(r === undefined ? "drained" : "got " + r.count);
      };
    `], { type: "application/typescript" })));
    const messages: string[] = [];
    const receiving = Promise.withResolvers<void>();
    const done = new Promise<void>((resolve) => {
      worker.onmessage = (e) => {
        messages.push(e.data);
        if (messages.length === 1) receiving.resolve();
        if (messages.length === 2) resolve();
      };
    });
    worker.postMessage({ path: libPath, h: h.toString() });
    // Wait for the Worker (a fixed 100 ms was too short for its start on a loaded machine), then give its recv
    // time to block; a shutdown that came first would end it the same way (WinDivert's recv after shutdown).
    await receiving.promise;
    await Bun.sleep(100);
    expect(messages).toEqual(["receiving"]);
    lib.shutdown(h);
    await done;
    expect(messages).toEqual(["receiving", "drained"]);
    worker.terminate();
    lib.close(h);
  });

  test("open failure carries the Win32 code and an actionable message", () => {
    setNativeEnv("WINDIVERT_STUB_OPEN_ERROR", "5");
    try {
      lib.open("true", LAYER_NETWORK, 0, 0n);
      throw new Error("open should fail");
    } catch (e) {
      expect(e).toBeInstanceOf(WinDivertError);
      expect((e as WinDivertError).code).toBe(5);
      expect((e as Error).message).toContain("run oisp redirect as Administrator");
    } finally {
      setNativeEnv("WINDIVERT_STUB_OPEN_ERROR", undefined);
    }
  });

  test("helper checksums (C) agree with the TypeScript rewrite's; ParsePacket offsets", () => {
    const p = tcpPacket({ src: "2001:db8::5", dst: "2606:4700::1", sport: 1, dport: 443, flags: 0x18, payload: new Uint8Array([1, 2, 3]) });
    const broken = p.slice();
    broken[40 + 16] = 0;
    broken[40 + 17] = 0;
    const addr = new Uint8Array(ADDRESS_SIZE);
    lib.calcChecksums(broken, addr);
    expect(Array.from(broken)).toEqual(Array.from(p));
    expect(readNetwork(addr)).toMatchObject({ tcpChecksum: true, ipChecksum: false });
    const v4 = tcpPacket({ src: "10.0.0.5", dst: "1.2.3.4", sport: 9, dport: 443, flags: 2, noChecksum: true });
    lib.calcChecksums(v4);
    expect(checksumsValid(v4)).toBe(true);
    const two = Buffer.concat([p, v4]);
    expect(lib.parsePacket(two)).toEqual({ protocol: 6, ipv4HeaderAt: undefined, ipv6HeaderAt: 0, tcpHeaderAt: 40, udpHeaderAt: undefined, dataAt: 60, dataLen: 3, nextAt: p.length });
  });
});
