// A small program compiled like oisp (worker as an extra entry point) that runs the WinDivert capture
// against the stand-in library next to it and reports, as one JSON line, what came out. Used by
// test/windows/wine.test.ts to run the real bun:ffi bindings and worker inside a Windows exe under Wine
// (and as a Linux binary, to check the compiled-worker path without Wine).
// Usage: wd-smoke <stub-library-path>   (WINDIVERT_STUB_DIR must be set in the environment)
import fs from "node:fs";
import path from "node:path";
import { ADDRESS_SIZE, LAYER_NETWORK, readNetwork, writeNetwork } from "../../ffi/windivert-address.ts";
import { formatIp, isParsed, parsePacket } from "../../src/capture/windivert/packet.ts";
import { startWinDivert } from "../../src/capture/windivert/redirector.ts";
import { dnsResponse, tcpPacket, udpPacket } from "./packets.ts";

const lib = process.argv[2];
const dir = process.env.WINDIVERT_STUB_DIR;
if (!lib || !dir) {
  console.error("usage: WINDIVERT_STUB_DIR=... wd-smoke <stub library>");
  process.exit(2);
}

function record(outbound: boolean, packet: Uint8Array): Buffer {
  const addr = new Uint8Array(ADDRESS_SIZE);
  writeNetwork(addr, 0, { layer: LAYER_NETWORK, outbound, ifIdx: 5 });
  const len = Buffer.alloc(4);
  len.writeUInt32LE(packet.length);
  return Buffer.concat([len, addr, packet]);
}

const t0 = performance.now();
const errors: string[] = [];
let cap: Awaited<ReturnType<typeof startWinDivert>>;
try {
  cap = await startWinDivert({
    dllPath: path.resolve(lib), proxyPort: 8443, allTraffic: false, extraAiHosts: ["api.openai.com"], useSpec: false,
    socketLayer: true, selfPid: 4242, log: () => {}, onError: (m) => errors.push(m),
  });
} catch (e) {
  console.log(JSON.stringify({ platform: process.platform, startError: (e as Error).message }));
  process.exit(0);
}
fs.appendFileSync(path.join(dir, `recv-${LAYER_NETWORK}`), Buffer.concat([
  record(false, udpPacket({ src: "10.0.0.1", dst: "10.0.0.5", sport: 53, dport: 40000, payload: dnsResponse("api.openai.com", "A", [{ name: "api.openai.com", type: "A", value: "162.159.140.245", ttl: 60 }]) })),
  record(true, tcpPacket({ src: "10.0.0.5", dst: "162.159.140.245", sport: 50123, dport: 443, flags: 0x02 })),
]));
const sentFile = path.join(dir, `sent-${LAYER_NETWORK}`);
const deadline = Date.now() + 20_000; // generous: CI machines under load, a cold wineserver
let sent: { src: string; sport: number; dst: string; dport: number; outbound: boolean }[] = [];
while (Date.now() < deadline) {
  if (fs.existsSync(sentFile)) {
    const b = fs.readFileSync(sentFile);
    const out: typeof sent = [];
    for (let o = 0; o + 84 <= b.length; ) {
      const len = b.readUInt32LE(o);
      const addr = new Uint8Array(b.subarray(o + 4, o + 84));
      const pkt = new Uint8Array(b.subarray(o + 84, o + 84 + len));
      const p = parsePacket(pkt);
      if (isParsed(p)) out.push({ src: formatIp(pkt, p.srcOff, p.addrLen), sport: p.srcPort, dst: formatIp(pkt, p.dstOff, p.addrLen), dport: p.dstPort, outbound: readNetwork(addr).outbound });
      o += 84 + len;
    }
    sent = out;
    if (sent.length >= 2) break;
  }
  await Bun.sleep(20);
}
const original = await cap.originalDestination({ ip: "162.159.140.245", port: 50123 }, 2000);
await cap.stop();
console.log(JSON.stringify({ platform: process.platform, sent, original, errors, ms: Math.round(performance.now() - t0) }));
process.exit(0);
