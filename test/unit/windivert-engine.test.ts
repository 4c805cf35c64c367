// The divert decision and the reflection rewrite, on real IPv4/IPv6 TCP packets: which connections are
// diverted, the bytes after rewriting (addresses, ports, checksums), the reply path, FIN/RST/idle expiry,
// self-exclusion and pre-existing connections.
import { describe, expect, test } from "bun:test";
import { DivertEngine, type EngineOptions, type Verdict } from "../../src/capture/windivert/engine.ts";
import { formatIp, isParsed, parsePacket } from "../../src/capture/windivert/packet.ts";
import { checksumsValid, dnsResponse, tcpPacket, udpPacket } from "../windows/packets.ts";

const SYN = 0x02, ACK = 0x10, PSH = 0x08, FIN = 0x01, RST = 0x04;
const P = 8443;
const OUT = { outbound: true, loopback: false };
const IN = { outbound: false, loopback: false };
const LO = { outbound: true, loopback: true };

function engine(extra: Partial<EngineOptions> = {}) {
  const events: string[] = [];
  const e = new DivertEngine({
    proxyPort: P, allTraffic: false, selfPid: 4242,
    isAiHost: (h) => h === "api.openai.com" || h.endsWith(".anthropic.com"),
    onDiverted: (c) => events.push(`divert ${c.key} ${c.host ?? "-"} pid=${c.pid ?? "-"}`),
    onClosed: (c) => events.push(`close ${c.key}`),
    ...extra,
  });
  return { e, events };
}

function view(pkt: Uint8Array) {
  const p = parsePacket(pkt);
  if (!isParsed(p)) throw new Error(p.error);
  return { src: formatIp(pkt, p.srcOff, p.addrLen), dst: formatIp(pkt, p.dstOff, p.addrLen), sport: p.srcPort, dport: p.dstPort, flags: p.tcpFlags, payloadLen: p.payloadLen };
}

function learn(e: DivertEngine, name: string, ip: string, t = 0) {
  const v6 = ip.includes(":");
  const dns = udpPacket({ src: v6 ? "2001:db8::53" : "10.0.0.53", dst: v6 ? "2001:db8::5" : "10.0.0.5", sport: 53, dport: 55555, payload: dnsResponse(name, v6 ? "AAAA" : "A", [{ name, type: v6 ? "AAAA" : "A", value: ip, ttl: 60 }]) });
  const before = dns.slice();
  expect(e.handle(dns, IN, t).kind).toBe("pass");
  expect(dns).toEqual(before); // DNS answers are sniffed, never altered
}

const rewritten = (v: Verdict) => {
  if (v.kind !== "rewritten") throw new Error(`expected rewritten, got ${v.kind}: ${"reason" in v ? v.reason : ""}`);
  return v;
};

describe.each([
  ["IPv4", "10.0.0.5", "162.159.140.245", "10.0.0.99"],
  ["IPv6", "2001:db8::5", "2606:4700::6812:6c0", "2001:db8::99"],
] as const)("%s reflection", (_name, C, S, OTHER) => {
  test("a learned AI address is diverted: SYN, SYN-ACK, data, FIN both ways, linger, expiry", () => {
    const { e, events } = engine();
    learn(e, "api.openai.com", S);
    const payload = new TextEncoder().encode("\x16\x03\x01 hello");

    // client → server SYN becomes S:cp → C:P, re-injected inbound.
    const syn = tcpPacket({ src: C, dst: S, sport: 50123, dport: 443, flags: SYN, seq: 7 });
    const v1 = rewritten(e.handle(syn, OUT, 1));
    expect(v1.outbound).toBe(false);
    expect(view(syn)).toMatchObject({ src: S, dst: C, sport: 50123, dport: P, flags: SYN });
    expect(checksumsValid(syn)).toBe(true);
    expect(events).toEqual([`divert ${S}|50123 api.openai.com pid=-`]);

    // The rewritten SYN is byte-for-byte what a real S:50123 → C:8443 SYN would be (same seq, options...).
    expect(syn).toEqual(tcpPacket({ src: S, dst: C, sport: 50123, dport: P, flags: SYN, seq: 7 }));

    // proxy → client SYN-ACK C:P → S:cp becomes S:443 → C:cp.
    const synack = tcpPacket({ src: C, dst: S, sport: P, dport: 50123, flags: SYN | ACK, seq: 99, ack: 8 });
    rewritten(e.handle(synack, OUT, 2));
    expect(view(synack)).toMatchObject({ src: S, dst: C, sport: 443, dport: 50123 });
    expect(checksumsValid(synack)).toBe(true);
    expect(e.table.get(`${S}|50123`)!.state).toBe("open");

    const data = tcpPacket({ src: C, dst: S, sport: 50123, dport: 443, flags: ACK | PSH, payload });
    rewritten(e.handle(data, OUT, 3));
    expect(view(data)).toMatchObject({ src: S, dst: C, sport: 50123, dport: P, payloadLen: payload.length });
    expect(checksumsValid(data)).toBe(true);

    rewritten(e.handle(tcpPacket({ src: C, dst: S, sport: 50123, dport: 443, flags: FIN | ACK }), OUT, 4));
    rewritten(e.handle(tcpPacket({ src: C, dst: S, sport: P, dport: 50123, flags: FIN | ACK }), OUT, 5));
    expect(e.table.get(`${S}|50123`)!.state).toBe("closing");
    // The last ACK inside the linger is still rewritten.
    rewritten(e.handle(tcpPacket({ src: C, dst: S, sport: 50123, dport: 443, flags: ACK }), OUT, 6));
    e.expire(5 + 9_999);
    expect(e.table.size).toBe(1);
    e.expire(5 + 10_000);
    expect(e.table.size).toBe(0);
    expect(events.at(-1)).toBe(`close ${S}|50123`);
    // After expiry the same 4-tuple is no longer touched.
    const late = tcpPacket({ src: C, dst: S, sport: 50123, dport: 443, flags: ACK });
    expect(e.handle(late, OUT, 20_000).kind).toBe("pass");
  });

  test("other addresses, other ports, and connections that existed before start pass untouched", () => {
    const { e, events } = engine();
    learn(e, "api.openai.com", S);
    const cases = [
      tcpPacket({ src: C, dst: OTHER, sport: 50200, dport: 443, flags: SYN }), // not an AI address
      tcpPacket({ src: C, dst: S, sport: 50201, dport: 80, flags: SYN }), // AI address, port not diverted
      tcpPacket({ src: C, dst: S, sport: 50202, dport: 443, flags: ACK | PSH, payload: Uint8Array.of(1) }), // mid-flow: pre-existing
      tcpPacket({ src: C, dst: S, sport: 50203, dport: 443, flags: FIN | ACK }),
      tcpPacket({ src: C, dst: S, sport: P, dport: 50204, flags: ACK }), // proxy packet of an explicit client
    ];
    for (const pkt of cases) {
      const before = pkt.slice();
      expect(e.handle(pkt, OUT, 1).kind).toBe("pass");
      expect(pkt).toEqual(before);
    }
    // Inbound packets from the real network are never rewritten; to the proxy port they are dropped.
    expect(e.handle(tcpPacket({ src: S, dst: C, sport: 443, dport: 50202, flags: ACK }), IN, 1).kind).toBe("pass");
    expect(e.handle(tcpPacket({ src: OTHER, dst: C, sport: 40000, dport: P, flags: SYN }), IN, 1).kind).toBe("drop");
    expect(events).toEqual([]);
  });

  test("--all-traffic diverts any TLS-port SYN; the proxy's own upstream connections never", () => {
    const owners = new Map<number, number>([[50300, 4242], [50301, 777]]);
    const { e, events } = engine({ allTraffic: true, ownerPid: (f) => owners.get(f.clientPort) });
    const own = tcpPacket({ src: C, dst: OTHER, sport: 50300, dport: 443, flags: SYN });
    expect(e.handle(own, OUT, 1)).toEqual({ kind: "pass", reason: "the proxy's own connection" });
    // ...nor the later packets of it.
    expect(e.handle(tcpPacket({ src: C, dst: OTHER, sport: 50300, dport: 443, flags: ACK }), OUT, 2).kind).toBe("pass");
    const app = tcpPacket({ src: C, dst: OTHER, sport: 50301, dport: 443, flags: SYN });
    rewritten(e.handle(app, OUT, 3));
    expect(events).toEqual([`divert ${OTHER}|50301 - pid=777`]);
    expect(e.stats.selfExcluded).toBe(1);
  });

  test("RST ends a connection after a short linger; a SYN timeout expires unanswered ones", () => {
    const { e } = engine({ limits: { closeLingerMs: 1000, synTimeoutMs: 5000 } });
    learn(e, "api.openai.com", S);
    rewritten(e.handle(tcpPacket({ src: C, dst: S, sport: 50400, dport: 443, flags: SYN }), OUT, 0));
    rewritten(e.handle(tcpPacket({ src: C, dst: S, sport: 50401, dport: 443, flags: SYN }), OUT, 0));
    rewritten(e.handle(tcpPacket({ src: C, dst: S, sport: P, dport: 50400, flags: RST | ACK }), OUT, 10));
    e.expire(1009);
    expect(e.table.size).toBe(2);
    e.expire(1010);
    expect(e.table.get(`${S}|50400`)).toBeUndefined();
    expect(e.table.get(`${S}|50401`)).toBeDefined();
    e.expire(5000);
    expect(e.table.size).toBe(0);
  });
});

describe("engine edges", () => {
  test("local providers on loopback are diverted and re-injected outbound", () => {
    const { e, events } = engine();
    const syn = tcpPacket({ src: "127.0.0.1", dst: "127.0.0.1", sport: 60000, dport: 11434, flags: SYN });
    const v = rewritten(e.handle(syn, LO, 0));
    expect(v.outbound).toBe(true);
    expect(view(syn)).toMatchObject({ src: "127.0.0.1", dst: "127.0.0.1", sport: 60000, dport: P });
    const reply = tcpPacket({ src: "127.0.0.1", dst: "127.0.0.1", sport: P, dport: 60000, flags: SYN | ACK });
    rewritten(e.handle(reply, LO, 1));
    expect(view(reply)).toMatchObject({ sport: 11434, dport: 60000 });
    expect(checksumsValid(reply)).toBe(true);
    // LM Studio over IPv6 loopback too; but 11434 on a non-loopback address is not a local provider.
    rewritten(e.handle(tcpPacket({ src: "::1", dst: "::1", sport: 60001, dport: 1234, flags: SYN }), LO, 0));
    expect(e.handle(tcpPacket({ src: "10.0.0.5", dst: "10.0.0.7", sport: 60002, dport: 11434, flags: SYN }), OUT, 0).kind).toBe("pass");
    expect(events).toEqual(["divert 127.0.0.1|60000 - pid=-", "divert ::1|60001 - pid=-"]);
  });

  test("only AI names are learned; QUIC to AI addresses is dropped so clients fall back to TCP", () => {
    const { e } = engine();
    learn(e, "www.example.com", "93.184.216.34");
    learn(e, "api.anthropic.com", "160.79.104.10");
    expect(e.dns.lookup("93.184.216.34", 1)).toBeUndefined();
    expect(e.dns.lookup("160.79.104.10", 1)).toBe("api.anthropic.com");
    const quic = udpPacket({ src: "10.0.0.5", dst: "160.79.104.10", sport: 50000, dport: 443, payload: new Uint8Array(20) });
    expect(e.handle(quic, OUT, 1).kind).toBe("drop");
    const other = udpPacket({ src: "10.0.0.5", dst: "93.184.216.34", sport: 50000, dport: 443, payload: new Uint8Array(20) });
    expect(e.handle(other, OUT, 1).kind).toBe("pass");
  });

  test("a full table leaves new connections alone; a SYN retransmission keeps its entry", () => {
    const { e } = engine({ allTraffic: true, limits: { maxEntries: 2 } });
    rewritten(e.handle(tcpPacket({ src: "10.0.0.5", dst: "1.1.1.1", sport: 1, dport: 443, flags: SYN }), OUT, 0));
    rewritten(e.handle(tcpPacket({ src: "10.0.0.5", dst: "1.1.1.1", sport: 1, dport: 443, flags: SYN }), OUT, 1));
    rewritten(e.handle(tcpPacket({ src: "10.0.0.5", dst: "1.1.1.1", sport: 2, dport: 443, flags: SYN }), OUT, 0));
    const third = tcpPacket({ src: "10.0.0.5", dst: "1.1.1.1", sport: 3, dport: 443, flags: SYN });
    expect(e.handle(third, OUT, 0)).toEqual({ kind: "pass", reason: "connection table full" });
    expect(e.stats).toMatchObject({ diverted: 2, tableFull: 1 });
  });

  test("a client port reused after RST: the old entry is announced closed before the new one opens", () => {
    const { e, events } = engine({ limits: { closeLingerMs: 60_000 } });
    learn(e, "api.openai.com", "162.159.140.245");
    const S = "162.159.140.245";
    rewritten(e.handle(tcpPacket({ src: "10.0.0.5", dst: S, sport: 50600, dport: 443, flags: SYN }), OUT, 0));
    rewritten(e.handle(tcpPacket({ src: "10.0.0.5", dst: S, sport: 50600, dport: 443, flags: RST }), OUT, 1));
    rewritten(e.handle(tcpPacket({ src: "10.0.0.5", dst: S, sport: 50600, dport: 443, flags: SYN, seq: 99 }), OUT, 2));
    // Reused again, once the address is no longer known as an AI address: left alone, old entry closed.
    expect(e.handle(tcpPacket({ src: "10.0.0.5", dst: S, sport: 50600, dport: 443, flags: SYN, seq: 7 }), OUT, 10 * 3600_000).kind).toBe("pass");
    expect(events).toEqual([
      `divert ${S}|50600 api.openai.com pid=-`,
      `close ${S}|50600`,
      `divert ${S}|50600 api.openai.com pid=-`,
      `close ${S}|50600`,
    ]);
    expect(e.table.size).toBe(0);
  });

  test("malformed packets pass untouched and are counted", () => {
    const { e } = engine({ allTraffic: true });
    const bad = Uint8Array.of(0x45, 0, 0, 99, 1, 2, 3);
    expect(e.handle(bad, OUT, 0).kind).toBe("pass");
    expect(e.stats.malformed).toBe(1);
  });
});
