// Sans-IO parsing of the raw IP packets WinDivert hands over (no link-layer header): IPv4 or IPv6,
// then TCP or UDP. Offsets are returned rather than copies so the rewriter can edit the packet in place.
// Anything malformed or not understood yields a reason string; the caller then passes the packet on
// untouched (fail open), it never throws on packet bytes.

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

/** Text form of a 4- or 16-byte address: dotted quad, or RFC 5952 IPv6 (longest zero run compressed). */
export function formatIp(bytes: Uint8Array, off = 0, len: 4 | 16 = bytes.length === 4 ? 4 : 16): string {
  if (len === 4) return `${bytes[off]}.${bytes[off + 1]}.${bytes[off + 2]}.${bytes[off + 3]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[off + i]! << 8) | bytes[off + i + 1]!);
  // IPv4-mapped addresses are written the way Node reports them on dual-stack sockets.
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${bytes[off + 12]}.${bytes[off + 13]}.${bytes[off + 14]}.${bytes[off + 15]}`;
  }
  let bestStart = -1;
  let bestLen = 1; // a single zero word is not compressed (RFC 5952 4.2.2)
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Parses a textual IPv4 or IPv6 address into bytes; undefined when it is not one. */
export function parseIp(text: string): Uint8Array | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const b = v4.slice(1).map(Number);
    return b.every((x) => x <= 255) ? Uint8Array.from(b) : undefined;
  }
  if (!text.includes(":")) return undefined;
  let tail: number[] = [];
  let s = text;
  const dotted = /^(.*:)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(text);
  if (dotted) {
    const q = parseIp(dotted[2]!);
    if (!q) return undefined;
    tail = [(q[0]! << 8) | q[1]!, (q[2]! << 8) | q[3]!];
    s = dotted[1]!.endsWith("::") ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const part = (h: string): number[] | undefined => {
    if (h === "") return [];
    const out: number[] = [];
    for (const g of h.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = part(halves[0]!);
  const rest = halves.length === 2 ? part(halves[1]!) : [];
  if (!head || !rest) return undefined;
  const explicit = [...head, ...rest, ...tail];
  let words: number[];
  if (halves.length === 2) {
    if (explicit.length > 7) return undefined;
    words = [...head, ...new Array<number>(8 - explicit.length).fill(0), ...rest, ...tail];
  } else {
    if (explicit.length !== 8) return undefined;
    words = explicit;
  }
  const out = new Uint8Array(16);
  words.forEach((w, i) => { out[i * 2] = w >> 8; out[i * 2 + 1] = w & 0xff; });
  return out;
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
