// Internet checksums (RFC 1071) for the packets the diverter rewrites: the IPv4 header checksum and the
// TCP/UDP checksum over the IPv4 or IPv6 pseudo-header. Full recomputation, not incremental: packets are
// small, the code stays obviously correct, and the tests check it against an independent implementation.

/** One's-complement sum of `bytes[start, end)` as 16-bit big-endian words, added to `initial`; not folded. */
export function sum16(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8; // odd length: pad with a zero byte
  return sum;
}

/** Folds carries and complements: the value to store in a checksum field. */
export function finish(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** Recomputes and stores the IPv4 header checksum (header starts at offset 0). */
export function setIpv4HeaderChecksum(pkt: Uint8Array, headerLen: number): void {
  pkt[10] = 0;
  pkt[11] = 0;
  const c = finish(sum16(pkt, 0, headerLen));
  pkt[10] = c >> 8;
  pkt[11] = c & 0xff;
}

/**
 * Recomputes and stores the TCP (protocol 6) or UDP (17) checksum of a packet whose transport header
 * starts at `l4` and runs to `end`. `version` picks the pseudo-header. A UDP checksum that computes to
 * zero is sent as 0xffff (RFC 768).
 */
export function setTransportChecksum(pkt: Uint8Array, version: 4 | 6, l4: number, end: number, protocol: number): void {
  const field = protocol === 6 ? l4 + 16 : l4 + 6;
  pkt[field] = 0;
  pkt[field + 1] = 0;
  const len = end - l4;
  let sum = version === 4 ? sum16(pkt, 12, 20) : sum16(pkt, 8, 40); // source + destination addresses
  sum += protocol + (len & 0xffff) + Math.floor(len / 0x10000);
  sum = sum16(pkt, l4, end, sum);
  let c = finish(sum);
  if (c === 0 && protocol === 17) c = 0xffff;
  pkt[field] = c >> 8;
  pkt[field + 1] = c & 0xff;
}

/** True when the checksum over a region including its stored checksum verifies (sums to 0xffff). */
export function verifies(sum: number): boolean {
  return finish(sum) === 0;
}
