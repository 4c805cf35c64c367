// Packet parsing, checksums and DNS sniffing of the WinDivert diverter, on real packet bytes.
import { describe, expect, test } from "bun:test";
import { finish, setIpv4HeaderChecksum, setTransportChecksum, sum16 } from "../../src/capture/windivert/checksum.ts";
import { DnsCache, parseDnsAnswers } from "../../src/capture/windivert/dns.ts";
import { formatIp, isParsed, parseIp, parsePacket } from "../../src/capture/windivert/packet.ts";
import { checksumsValid, dnsResponse, refChecksum, tcpPacket, udpPacket } from "../windows/packets.ts";

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((h) => parseInt(h, 16)));

describe("checksums", () => {
  test("IPv4 header checksum matches the textbook vector (0xb861)", () => {
    const h = hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7");
    setIpv4HeaderChecksum(h, 20);
    expect((h[10]! << 8) | h[11]!).toBe(0xb861);
  });

  test("TCP/UDP checksums agree with the reference implementation on IPv4 and IPv6, odd and even lengths", () => {
    for (const [src, dst] of [["10.0.0.2", "104.18.6.192"], ["2001:db8::2", "2606:4700::6812:6c0"]] as const) {
      for (const len of [0, 1, 2, 3, 517, 1400]) {
        const payload = Uint8Array.from({ length: len }, (_, i) => (i * 37 + len) & 0xff);
        const ref = tcpPacket({ src, dst, sport: 50000 + len, dport: 443, flags: 0x18, payload });
        const mine = tcpPacket({ src, dst, sport: 50000 + len, dport: 443, flags: 0x18, payload, noChecksum: true });
        const p = parsePacket(mine);
        if (!isParsed(p)) throw new Error(p.error);
        if (p.version === 4) setIpv4HeaderChecksum(mine, p.l4);
        setTransportChecksum(mine, p.version, p.l4, p.end, 6);
        expect(mine).toEqual(ref);
        expect(checksumsValid(mine)).toBe(true);
        const u = udpPacket({ src, dst, sport: 53, dport: 50000, payload });
        const pu = parsePacket(u);
        if (!isParsed(pu)) throw new Error(pu.error);
        const before = u.slice();
        setTransportChecksum(u, pu.version, pu.l4, pu.end, 17);
        expect(u).toEqual(before);
      }
    }
  });

  test("a flipped bit is detected", () => {
    const p = tcpPacket({ src: "10.0.0.2", dst: "10.0.0.3", sport: 1, dport: 2, flags: 2 });
    p[p.length - 1]! ^= 0x10;
    expect(checksumsValid(p)).toBe(false);
    expect(finish(sum16(p, 0, 20))).toBe(0); // IPv4 header untouched still verifies
  });

  test("reference checksum is not trivially zero", () => {
    expect(refChecksum([Uint8Array.of(0x12, 0x34)])).toBe(0xedcb);
  });
});

describe("parsePacket", () => {
  test("IPv4 TCP SYN with options", () => {
    const pkt = tcpPacket({ src: "192.168.1.5", dst: "162.159.140.245", sport: 51000, dport: 443, flags: 0x02 });
    const p = parsePacket(pkt);
    if (!isParsed(p)) throw new Error(p.error);
    expect(p).toMatchObject({ version: 4, protocol: 6, l4: 20, srcPort: 51000, dstPort: 443, tcpFlags: 2, payloadLen: 0 });
    expect(p.payload).toBe(44);
    expect(formatIp(pkt, p.srcOff, p.addrLen)).toBe("192.168.1.5");
    expect(formatIp(pkt, p.dstOff, p.addrLen)).toBe("162.159.140.245");
  });

  test("IPv6 TCP data with a hop-by-hop extension header", () => {
    const base = tcpPacket({ src: "2001:db8::5", dst: "2606:4700::1", sport: 51001, dport: 443, flags: 0x18, payload: hex("16030100") });
    // Insert an 8-byte hop-by-hop header (next header TCP, PadN option) after the fixed header.
    const pkt = new Uint8Array(base.length + 8);
    pkt.set(base.subarray(0, 40));
    pkt.set([6, 0, 1, 4, 0, 0, 0, 0], 40);
    pkt.set(base.subarray(40), 48);
    pkt[6] = 0;
    new DataView(pkt.buffer).setUint16(4, base.length - 40 + 8);
    const p = parsePacket(pkt);
    if (!isParsed(p)) throw new Error(p.error);
    expect(p).toMatchObject({ version: 6, l4: 48, srcPort: 51001, dstPort: 443, payloadLen: 4 });
    expect(formatIp(pkt, p.dstOff, p.addrLen)).toBe("2606:4700::1");
  });

  test("malformed input gives a reason, never a throw", () => {
    const good = tcpPacket({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 443, flags: 2 });
    for (let n = 0; n < good.length; n++) {
      const r = parsePacket(good.subarray(0, n));
      expect("error" in r).toBe(true);
    }
    expect(parsePacket(hex("45000014000020004006000001020304050607 08"))).toEqual({ error: "IPv4 fragment" });
    expect(parsePacket(Uint8Array.of(0x50, 0, 0, 0))).toEqual({ error: "IP version 5" });
    const udp = udpPacket({ src: "10.0.0.1", dst: "10.0.0.2", sport: 53, dport: 9, payload: new Uint8Array(3) });
    new DataView(udp.buffer).setUint16(24, 200); // UDP length beyond the datagram
    expect(parsePacket(udp)).toEqual({ error: "bad UDP length" });
  });

  test("IPv6 formatting follows RFC 5952 and round-trips through parseIp, checked against URL", () => {
    for (const a of ["2001:db8::1", "::1", "::", "fe80::1:0:0:1", "2001:db8:0:1:1:1:1:1", "1:0:0:2:0:0:0:3", "::ffff:10.1.2.3", "2606:4700:4700::1111"]) {
      const b = parseIp(a)!;
      const text = formatIp(b);
      expect(text).toBe(new URL(`http://[${a}]/`).hostname.slice(1, -1).replace(/^::ffff:([0-9a-f]+):([0-9a-f]+)$/, (_, h, l) => {
        const x = parseInt(h, 16), y = parseInt(l, 16);
        return `::ffff:${x >> 8}.${x & 255}.${y >> 8}.${y & 255}`;
      }));
      expect(parseIp(text)).toEqual(b);
    }
    expect(parseIp("1.2.3.256")).toBeUndefined();
    expect(parseIp("1::2::3")).toBeUndefined();
  });
});

describe("DNS sniffing", () => {
  test("A answers through a CNAME chain are attributed to the question name", () => {
    const msg = dnsResponse("api.openai.com", "A", [
      { name: "api.openai.com", type: "CNAME", value: "api.openai.com.cdn.cloudflare.net", ttl: 300 },
      { name: "api.openai.com.cdn.cloudflare.net", type: "A", value: "162.159.140.245", ttl: 60 },
      { name: "api.openai.com.cdn.cloudflare.net", type: "A", value: "172.66.0.243", ttl: 60 },
      { name: "unrelated.example", type: "A", value: "9.9.9.9", ttl: 60 },
    ]);
    const answers = parseDnsAnswers(msg);
    expect(answers.map((a) => [a.query, formatIp(a.ip), a.ttlSeconds])).toEqual([
      ["api.openai.com", "162.159.140.245", 60],
      ["api.openai.com", "172.66.0.243", 60],
    ]);
    expect(answers[0]!.names).toEqual(["api.openai.com", "api.openai.com.cdn.cloudflare.net"]);
  });

  test("AAAA answers; NXDOMAIN, queries and garbage give nothing; every truncation is safe", () => {
    const msg = dnsResponse("api.anthropic.com", "AAAA", [{ name: "api.anthropic.com", type: "AAAA", value: "2607:6bc0::10", ttl: 30 }]);
    expect(parseDnsAnswers(msg).map((a) => formatIp(a.ip))).toEqual(["2607:6bc0::10"]);
    expect(parseDnsAnswers(dnsResponse("x.example", "A", [], 3))).toEqual([]);
    const query = msg.slice();
    query[2] = 0x01;
    expect(parseDnsAnswers(query)).toEqual([]);
    for (let n = 0; n < msg.length; n++) expect(() => parseDnsAnswers(msg.subarray(0, n))).not.toThrow();
    const loop = msg.slice();
    loop[12] = 0xc0; // question name points at itself
    loop[13] = 12;
    expect(parseDnsAnswers(loop)).toEqual([]);
  });

  test("cache clamps TTLs, expires and stays bounded", () => {
    const c = new DnsCache({ maxEntries: 3, minTtlMs: 1000, maxTtlMs: 10_000 });
    c.learn("1.1.1.1", "a", 0, 0);
    c.learn("2.2.2.2", "b", 999_999, 0);
    expect(c.lookup("1.1.1.1", 999)).toBe("a");
    expect(c.lookup("1.1.1.1", 1000)).toBeUndefined();
    expect(c.lookup("2.2.2.2", 9_999)).toBe("b");
    expect(c.lookup("2.2.2.2", 10_000)).toBeUndefined();
    for (let i = 0; i < 10; i++) c.learn(`10.0.0.${i}`, `h${i}`, 60, 0);
    expect(c.size).toBe(3);
    expect(c.lookup("10.0.0.9", 1)).toBe("h9");
    expect(c.lookup("10.0.0.0", 1)).toBeUndefined();
  });
});
