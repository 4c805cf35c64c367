// Runs inside a fresh network namespace (started by tun-e2e.test.ts with `unshare --net`): a TUN device
// plays the network, the stand-in WinDivert library reads and writes it, and real TCP goes
// curl → (TUN) → WinDivert workers (reflection) → divert listener → proxy.handleTransparent (TLS interception) → local TLS
// upstream, and back; the tap goes to a real `oisp sensor` (started by the test outside the namespace,
// reachable through its unix socket path) as well as to an in-process record. Prints one JSON line.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ADDRESS_SIZE, LAYER_NETWORK, writeNetwork } from "../../ffi/windivert-address.ts";
import { processLookupForPlatform } from "../../src/capture/process/index.ts";
import { startProxy } from "../../src/capture/proxy/server.ts";
import type { ConnMeta, Direction, TapSink } from "../../src/tap/types.ts";
import { startWindowsRedirect, type WindowsRedirect } from "../../src/capture/windivert/index.ts";
import { formatIp, isParsed, parsePacket } from "../../src/capture/windivert/packet.ts";
import { IpcTapClient } from "../../src/ipc/client.ts";
import { defaultPipePath } from "../../src/ipc/endpoint.ts";
import { silentLogger } from "../../src/util/log.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { createTestCa, startTlsUpstream } from "../support/upstream.ts";
import { dnsResponse, udpPacket } from "./packets.ts";

const [stubLib, stubDir, sensorHome] = process.argv.slice(2) as [string, string, string];
const TUN = "oisp0";
const C = "10.66.0.2";
const AI = "203.0.113.10";
const OTHER = "203.0.113.20";
const C6 = "fd66::2";
const AI6 = "2001:db8:66::10";

function sh(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
}

class Tap implements TapSink {
  metas: ConnMeta[] = [];
  bytes = new Map<string, { c2s: string; s2c: string }>();
  closed = new Set<string>();
  open(m: ConnMeta) {
    this.metas.push(m);
    this.bytes.set(m.connId, { c2s: "", s2c: "" });
  }
  data(id: string, dir: Direction, b: Uint8Array) {
    const e = this.bytes.get(id);
    if (e) e[dir] += Buffer.from(b).toString("latin1");
  }
  close(id: string) {
    this.closed.add(id);
  }
}

async function run(cmd: string[]) {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, HTTPS_PROXY: "", https_proxy: "", ALL_PROXY: "" } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { out, err, code, pid: p.pid };
}

// The namespace's network: loopback, and the TUN as the way to 203.0.113.0/24 and 2001:db8:66::/64.
sh(["ip", "link", "set", "lo", "up"]);
sh(["ip", "tuntap", "add", "dev", TUN, "mode", "tun"]);
sh(["ip", "addr", "add", `${C}/24`, "dev", TUN]);
sh(["ip", "-6", "addr", "add", `${C6}/64`, "dev", TUN, "nodad"]);
sh(["ip", "link", "set", TUN, "up"]);
sh(["ip", "route", "add", "203.0.113.0/24", "dev", TUN]);
sh(["ip", "-6", "route", "add", "2001:db8:66::/64", "dev", TUN]);
for (const k of ["all", "default", TUN]) fs.writeFileSync(`/proc/sys/net/ipv4/conf/${k}/rp_filter`, "0");

const work = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-tun-"));
const upstream = await startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler() });
const ca = await createTestCa("OISP TUN Test CA");
const caFile = path.join(work, "ca.pem");
fs.writeFileSync(caFile, ca.certPem);
const recorded = new Tap();
const sensor = new IpcTapClient({ path: defaultPipePath(sensorHome), dataDir: sensorHome, spoolDir: path.join(work, "spool"), log: silentLogger });
const tap: TapSink = {
  open: (m) => (recorded.open(m), sensor.open(m)),
  data: (id, dir, b, ts) => (recorded.data(id, dir, b), sensor.data(id, dir, b, ts)),
  close: (id, ts, err) => (recorded.close(id), sensor.close(id, ts, err)),
};
const lookup = processLookupForPlatform();
const proxy = await startProxy({
  listen: { host: "127.0.0.1", port: 0 },
  tlsMitm: true,
  allTraffic: false,
  issuer: ca,
  isAiHost: (h) => h === "api.openai.com",
  upstreamCa: [upstream.caPem],
  resolve: new Map([["api.openai.com:443", `127.0.0.1:${upstream.port}`]]),
  tap,
  lookupProcess: lookup,
  log: silentLogger,
});
const redirect: WindowsRedirect = await startWindowsRedirect({
  divertPort: 8443, proxy, lookupProcess: lookup, allTraffic: false, dataDir: work, log: silentLogger,
  // The AI host's real address is only reachable through the TUN; the upstream stands in for it.
  resolve: new Map([["api.openai.com:443", `127.0.0.1:${upstream.port}`]]),
  dllPath: stubLib, extraAiHosts: ["api.openai.com"], useSpec: false, socketLayer: false,
});

// The machine "receives" DNS answers for api.openai.com (v4 and v6); the diverter sniffs them.
const rec = (pkt: Uint8Array) => {
  const a = new Uint8Array(ADDRESS_SIZE);
  writeNetwork(a, 0, { layer: LAYER_NETWORK, outbound: false, ipv6: pkt[0]! >> 4 === 6 });
  const len = Buffer.alloc(4);
  len.writeUInt32LE(pkt.length);
  return Buffer.concat([len, a, pkt]);
};
fs.appendFileSync(path.join(stubDir, "recv-0"), Buffer.concat([
  rec(udpPacket({ src: "10.66.0.1", dst: C, sport: 53, dport: 53000, payload: dnsResponse("api.openai.com", "A", [{ name: "api.openai.com", type: "A", value: AI, ttl: 60 }]) })),
  rec(udpPacket({ src: "fd66::1", dst: C6, sport: 53, dport: 53001, payload: dnsResponse("api.openai.com", "AAAA", [{ name: "api.openai.com", type: "AAAA", value: AI6, ttl: 60 }]) })),
]));
for (let i = 0; i < 200 && redirect.capture.stats().dnsLearned < 2; i++) {
  await Bun.sleep(10);
  if (i % 10 === 0) await Bun.sleep(0);
}

const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "through the TUN" }] });
const curlAi = (resolveTo: string) =>
  run(["curl", "-sS", "--max-time", "10", "--resolve", `api.openai.com:443:${resolveTo}`, "--cacert", caFile,
    "https://api.openai.com/v1/chat/completions", "-H", "content-type: application/json", "-H", "authorization: Bearer sk-test-tun", "-d", body]);
const v4 = await curlAi(AI);
const v6 = await curlAi(`[${AI6}]`);
const other = await run(["curl", "-sS", "--max-time", "2", "-k", `https://${OTHER}/`]);
await Bun.sleep(300);

// What went back out of the "machine": passed packets (Outbound=1) and injected ones (Outbound=0).
const sentFile = path.join(stubDir, "sent-0");
const sentToOther: { sport: number; dport: number; flags: number }[] = [];
const b = fs.existsSync(sentFile) ? fs.readFileSync(sentFile) : Buffer.alloc(0);
for (let o = 0; o + 4 + ADDRESS_SIZE <= b.length; ) {
  const len = b.readUInt32LE(o);
  const pkt = new Uint8Array(b.subarray(o + 4 + ADDRESS_SIZE, o + 4 + ADDRESS_SIZE + len));
  const p = parsePacket(pkt);
  if (isParsed(p) && formatIp(pkt, p.dstOff, p.addrLen) === OTHER) sentToOther.push({ sport: p.srcPort, dport: p.dstPort, flags: p.tcpFlags });
  o += 4 + ADDRESS_SIZE + len;
}
await Bun.sleep(200);
const stats = redirect.stats();
await redirect.stop();
await proxy.close();
await upstream.close();
await sensor.close();
const sensorStats = sensor.stats();
const tapRec = recorded;
const metas = tapRec.metas.map((m) => ({
  host: m.host, sni: m.sni, mode: m.mode, pid: m.process?.pid, exe: m.process?.exe, captureMethod: m.captureMethod,
  client: m.client, server: m.server,
  c2s: tapRec.bytes.get(m.connId)?.c2s.includes("through the TUN") ?? false,
  s2c: tapRec.bytes.get(m.connId)?.s2c.includes("HTTP/1.1 200") ?? false,
}));
console.log(JSON.stringify({ v4, v6, other: { code: other.code, err: other.err.trim() }, metas, sentToOther, stats, sensorStats }));
process.exit(0);
