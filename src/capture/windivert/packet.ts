// Sans-IO parsing of the raw IP packets WinDivert hands over (no link-layer header): IPv4 or IPv6,
// then TCP or UDP. Offsets are returned rather than copies so the rewriter can edit the packet in place.
// Anything malformed or not understood yields a reason string; the caller then passes the packet on
// untouched (fail open), it never throws on packet bytes.

// The address forms moved to capture/process/ip.ts (process lookup needs them and may not import
// windivert); re-exported here for the packet code and its tests.
export { formatIp, parseIp } from "../process/ip.ts";

export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

export interface ParsedPacket {
  version: 4 | 6;
  /** Bytes of IP header including IPv6 extension headers: the transport header starts here. */
  l4: number;
  /** End of the IP datagram (total length), which may be shorter than the buffer. */
  end: number;
  protocol: number;
  /** Offsets of the source and destination addresses (4 or 16 bytes each). */
  srcOff: number;
  dstOff: number;
  addrLen: 4 | 16;
  srcPort: number;
  dstPort: number;
  /** TCP only (0 for UDP): flags byte, sequence number. */
  tcpFlags: number;
  /** Offset and length of the transport payload. */
  payload: number;
  payloadLen: number;
}

export type ParseResult = ParsedPacket | { error: string };

// IPv6 extension headers that may sit between the fixed header and TCP/UDP.
const HOP_BY_HOP = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const DEST_OPTS = 60;
const MAX_EXT_HEADERS = 8;

export function parsePacket(pkt: Uint8Array): ParseResult {
  if (pkt.length < 1) return { error: "empty packet" };
  const version = pkt[0]! >> 4;
  let l4: number;
  let end: number;
  let protocol: number;
  let srcOff: number;
  let dstOff: number;
  let addrLen: 4 | 16;
  if (version === 4) {
    if (pkt.length < 20) return { error: "truncated IPv4 header" };
    const ihl = (pkt[0]! & 0x0f) * 4;
    end = (pkt[2]! << 8) | pkt[3]!;
    if (ihl < 20 || end < ihl || end > pkt.length) return { error: "bad IPv4 lengths" };
    const fragment = ((pkt[6]! & 0x3f) << 8) | pkt[7]!; // MF flag + offset
    if (fragment !== 0) return { error: "IPv4 fragment" };
    l4 = ihl;
    protocol = pkt[9]!;
    srcOff = 12;
    dstOff = 16;
    addrLen = 4;
  } else if (version === 6) {
    if (pkt.length < 40) return { error: "truncated IPv6 header" };
    end = 40 + ((pkt[4]! << 8) | pkt[5]!);
    if (end > pkt.length) return { error: "bad IPv6 payload length" };
    protocol = pkt[6]!;
    l4 = 40;
    for (let n = 0; protocol === HOP_BY_HOP || protocol === ROUTING || protocol === DEST_OPTS || protocol === FRAGMENT; n++) {
      if (protocol === FRAGMENT) return { error: "IPv6 fragment" };
      if (n >= MAX_EXT_HEADERS || l4 + 8 > end) return { error: "bad IPv6 extension headers" };
      protocol = pkt[l4]!;
      l4 += (pkt[l4 + 1]! + 1) * 8;
    }
    srcOff = 8;
    dstOff = 24;
    addrLen = 16;
  } else {
    return { error: `IP version ${version}` };
  }
  if (protocol === PROTO_TCP) {
    if (l4 + 20 > end) return { error: "truncated TCP header" };
    const thl = (pkt[l4 + 12]! >> 4) * 4;
    if (thl < 20 || l4 + thl > end) return { error: "bad TCP header length" };
    return {
      version, l4, end, protocol, srcOff, dstOff, addrLen,
      srcPort: (pkt[l4]! << 8) | pkt[l4 + 1]!,
      dstPort: (pkt[l4 + 2]! << 8) | pkt[l4 + 3]!,
      tcpFlags: pkt[l4 + 13]!,
      payload: l4 + thl,
      payloadLen: end - l4 - thl,
    };
  }
  if (protocol === PROTO_UDP) {
    if (l4 + 8 > end) return { error: "truncated UDP header" };
    const ulen = (pkt[l4 + 4]! << 8) | pkt[l4 + 5]!;
    if (ulen < 8 || l4 + ulen > end) return { error: "bad UDP length" };
    return {
      version, l4, end, protocol, srcOff, dstOff, addrLen,
      srcPort: (pkt[l4]! << 8) | pkt[l4 + 1]!,
      dstPort: (pkt[l4 + 2]! << 8) | pkt[l4 + 3]!,
      tcpFlags: 0,
      payload: l4 + 8,
      payloadLen: ulen - 8,
    };
  }
  return { error: `protocol ${protocol}` };
}

export function isParsed(r: ParseResult): r is ParsedPacket {
  return !("error" in r);
}

export function isLoopback(bytes: Uint8Array, off: number, len: 4 | 16): boolean {
  if (len === 4) return bytes[off] === 127;
  for (let i = 0; i < 15; i++) if (bytes[off + i] !== 0) return false;
  return bytes[off + 15] === 1;
}

export function writePort(pkt: Uint8Array, off: number, port: number): void {
  pkt[off] = port >> 8;
  pkt[off + 1] = port & 0xff;
}
