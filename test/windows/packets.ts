// Builders of real IPv4/IPv6 TCP/UDP packet bytes for the WinDivert tests, with checksums computed by an
// implementation written separately from src/capture/windivert/checksum.ts (32-bit accumulation over a
// DataView, folded with modular arithmetic) so the two can check each other.
import { parseIp } from "../../src/capture/windivert/packet.ts";

export interface TcpSpec {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  flags: number;
  seq?: number;
  ack?: number;
  payload?: Uint8Array;
  /** Leave checksums zero (as offloading NICs hand them over). */
  noChecksum?: boolean;
}

function ip(text: string): Uint8Array {
  const b = parseIp(text);
  if (!b) throw new Error(`bad address ${text}`);
  return b;
}

/** Independent one's-complement checksum: 16-bit words via DataView, reduced modulo 0xffff. */
export function refChecksum(parts: Uint8Array[]): number {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length + (p.length % 2), 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length + (p.length % 2); // each part is padded on its own, as the pseudo-header parts are even
  }
  const dv = new DataView(all.buffer);
  let total = 0;
  for (let i = 0; i < all.length; i += 2) total += dv.getUint16(i);
  let folded = total % 0xffff;
  if (folded === 0 && total !== 0) folded = 0xffff;
  return 0xffff - folded;
}

function pseudo(src: Uint8Array, dst: Uint8Array, proto: number, len: number): Uint8Array {
  if (src.length === 4) {
    const ph = new Uint8Array(12);
    ph.set(src, 0);
    ph.set(dst, 4);
    ph[9] = proto;
    new DataView(ph.buffer).setUint16(10, len);
    return ph;
  }
  const ph = new Uint8Array(40);
  ph.set(src, 0);
  ph.set(dst, 16);
  new DataView(ph.buffer).setUint32(32, len);
  ph[39] = proto;
  return ph;
}

function ipWrap(src: Uint8Array, dst: Uint8Array, proto: number, l4: Uint8Array, noChecksum: boolean, id = 0x1234): Uint8Array {
  if (src.length === 4) {
    const pkt = new Uint8Array(20 + l4.length);
    const dv = new DataView(pkt.buffer);
    pkt[0] = 0x45;
    dv.setUint16(2, pkt.length);
    dv.setUint16(4, id);
    pkt[6] = 0x40; // DF
    pkt[8] = 64;
    pkt[9] = proto;
    pkt.set(src, 12);
    pkt.set(dst, 16);
    if (!noChecksum) dv.setUint16(10, refChecksum([pkt.subarray(0, 20)]));
    pkt.set(l4, 20);
    return pkt;
  }
  const pkt = new Uint8Array(40 + l4.length);
  const dv = new DataView(pkt.buffer);
  dv.setUint32(0, 0x60000000 | 0x12345); // version 6, flow label
  dv.setUint16(4, l4.length);
  pkt[6] = proto;
  pkt[7] = 64;
  pkt.set(src, 8);
  pkt.set(dst, 24);
  pkt.set(l4, 40);
  return pkt;
}

export function tcpPacket(s: TcpSpec): Uint8Array {
  const src = ip(s.src);
  const dst = ip(s.dst);
  const payload = s.payload ?? new Uint8Array(0);
  const opts = s.flags & 0x02 ? Uint8Array.from([2, 4, 0x05, 0xb4]) : new Uint8Array(0); // MSS on SYNs
  const tcp = new Uint8Array(20 + opts.length + payload.length);
  const dv = new DataView(tcp.buffer);
  dv.setUint16(0, s.sport);
  dv.setUint16(2, s.dport);
  dv.setUint32(4, s.seq ?? 1000);
  dv.setUint32(8, s.ack ?? 0);
  tcp[12] = ((20 + opts.length) / 4) << 4;
  tcp[13] = s.flags;
  dv.setUint16(14, 65535);
  tcp.set(opts, 20);
  tcp.set(payload, 20 + opts.length);
  if (!s.noChecksum) dv.setUint16(16, refChecksum([pseudo(src, dst, 6, tcp.length), tcp]));
  return ipWrap(src, dst, 6, tcp, !!s.noChecksum);
}

export function udpPacket(s: { src: string; dst: string; sport: number; dport: number; payload: Uint8Array }): Uint8Array {
  const src = ip(s.src);
  const dst = ip(s.dst);
  const udp = new Uint8Array(8 + s.payload.length);
  const dv = new DataView(udp.buffer);
  dv.setUint16(0, s.sport);
  dv.setUint16(2, s.dport);
  dv.setUint16(4, udp.length);
  udp.set(s.payload, 8);
  let c = refChecksum([pseudo(src, dst, 17, udp.length), udp]);
  if (c === 0) c = 0xffff;
  dv.setUint16(6, c);
  return ipWrap(src, dst, 17, udp, false);
}

/** True when the IPv4 header (if any) and the TCP/UDP checksum of `pkt` verify, by the reference sum. */
export function checksumsValid(pkt: Uint8Array): boolean {
  const v6 = pkt[0]! >> 4 === 6;
  const hl = v6 ? 40 : (pkt[0]! & 0xf) * 4;
  if (!v6 && refChecksum([pkt.subarray(0, hl)]) !== 0) return false;
  const proto = v6 ? pkt[6]! : pkt[9]!;
  const src = v6 ? pkt.subarray(8, 24) : pkt.subarray(12, 16);
  const dst = v6 ? pkt.subarray(24, 40) : pkt.subarray(16, 20);
  const l4 = pkt.subarray(hl);
  return refChecksum([pseudo(src, dst, proto, l4.length), l4]) === 0;
}

export interface DnsRecord {
  name: string;
  type: "A" | "AAAA" | "CNAME";
  value: string;
  ttl: number;
}

function encodeName(name: string): number[] {
  const out: number[] = [];
  for (const label of name.split(".")) {
    out.push(label.length, ...[...label].map((c) => c.charCodeAt(0)));
  }
  out.push(0);
  return out;
}

/** A DNS response: one question, the given answers; names after the question use compression pointers. */
export function dnsResponse(question: string, qtype: "A" | "AAAA", answers: DnsRecord[], rcode = 0): Uint8Array {
  const b: number[] = [0xab, 0xcd, 0x81, 0x80 | rcode, 0, 1, 0, answers.length, 0, 0, 0, 0];
  b.push(...encodeName(question), 0, qtype === "A" ? 1 : 28, 0, 1);
  for (const a of answers) {
    if (a.name === question) b.push(0xc0, 12); // pointer to the question name
    else b.push(...encodeName(a.name));
    const type = a.type === "A" ? 1 : a.type === "AAAA" ? 28 : 5;
    const rdata = a.type === "CNAME" ? encodeName(a.value) : [...ip(a.value)];
    b.push(0, type, 0, 1, (a.ttl >>> 24) & 0xff, (a.ttl >>> 16) & 0xff, (a.ttl >>> 8) & 0xff, a.ttl & 0xff);
    b.push(rdata.length >> 8, rdata.length & 0xff, ...rdata);
  }
  return Uint8Array.from(b);
}
