// DNS answer sniffing: the diverter learns which IP addresses belong to AI hosts from the DNS responses
// the machine receives, so that only connections to those addresses are diverted. Sans-IO: parse one
// UDP payload, then feed a bounded cache that is told the time by its caller.

export interface DnsAnswer {
  /** The name the client asked for (the question), lower-case, no trailing dot. */
  query: string;
  /** Every owner name on the way from the question to this address (CNAME chain), lower-case. */
  names: string[];
  ip: Uint8Array;
  ttlSeconds: number;
}

const TYPE_A = 1;
const TYPE_CNAME = 5;
const TYPE_AAAA = 28;
const CLASS_IN = 1;
const MAX_RECORDS = 64;
const MAX_NAME_HOPS = 64;

/** Reads a possibly compressed name at `off`; returns the name and the offset just after it in place. */
function readName(msg: Uint8Array, off: number): { name: string; next: number } | undefined {
  const labels: string[] = [];
  let next = -1;
  let p = off;
  for (let hops = 0; hops < MAX_NAME_HOPS; hops++) {
    if (p >= msg.length) return undefined;
    const len = msg[p]!;
    if (len === 0) {
      if (next < 0) next = p + 1;
      return { name: labels.join(".").toLowerCase(), next };
    }
    if ((len & 0xc0) === 0xc0) {
      if (p + 1 >= msg.length) return undefined;
      if (next < 0) next = p + 2;
      p = ((len & 0x3f) << 8) | msg[p + 1]!;
      continue;
    }
    if ((len & 0xc0) !== 0 || p + 1 + len > msg.length) return undefined;
    let label = "";
    for (let i = 0; i < len; i++) label += String.fromCharCode(msg[p + 1 + i]!);
    labels.push(label);
    p += 1 + len;
  }
  return undefined; // pointer loop
}

/**
 * Parses the A and AAAA answers of a DNS response (UDP payload). Returns [] for queries, errors,
 * truncated or malformed messages: sniffing is best effort and never throws.
 */
export function parseDnsAnswers(msg: Uint8Array): DnsAnswer[] {
  if (msg.length < 12) return [];
  const flags = (msg[2]! << 8) | msg[3]!;
  const isResponse = (flags & 0x8000) !== 0;
  const rcode = flags & 0x000f;
  if (!isResponse || rcode !== 0) return [];
  const qd = (msg[4]! << 8) | msg[5]!;
  const an = (msg[6]! << 8) | msg[7]!;
  if (qd !== 1 || an === 0) return [];
  const q = readName(msg, 12);
  if (!q || q.next + 4 > msg.length) return [];
  let p = q.next + 4;
  const cnames = new Map<string, string>(); // alias -> canonical
  const addrs: { owner: string; ip: Uint8Array; ttl: number }[] = [];
  for (let i = 0; i < Math.min(an, MAX_RECORDS); i++) {
    const owner = readName(msg, p);
    if (!owner || owner.next + 10 > msg.length) break;
    p = owner.next;
    const type = (msg[p]! << 8) | msg[p + 1]!;
    const klass = (msg[p + 2]! << 8) | msg[p + 3]!;
    const ttl = ((msg[p + 4]! << 24) >>> 0) + (msg[p + 5]! << 16) + (msg[p + 6]! << 8) + msg[p + 7]!;
    const rdlen = (msg[p + 8]! << 8) | msg[p + 9]!;
    const rdata = p + 10;
    if (rdata + rdlen > msg.length) break;
    p = rdata + rdlen;
    if (klass !== CLASS_IN) continue;
    if (type === TYPE_A && rdlen === 4) addrs.push({ owner: owner.name, ip: msg.slice(rdata, rdata + 4), ttl });
    else if (type === TYPE_AAAA && rdlen === 16) addrs.push({ owner: owner.name, ip: msg.slice(rdata, rdata + 16), ttl });
    else if (type === TYPE_CNAME) {
      const target = readName(msg, rdata);
      if (target) cnames.set(owner.name, target.name);
    }
  }
  // Walk the CNAME chain from the question; only addresses reached from it are answers to it.
  const chain = [q.name];
  for (let cur = q.name; cnames.has(cur) && chain.length < MAX_RECORDS; ) {
    cur = cnames.get(cur)!;
    if (chain.includes(cur)) break;
    chain.push(cur);
  }
  return addrs
    .filter((a) => chain.includes(a.owner))
    .map((a) => ({ query: q.name, names: chain, ip: a.ip, ttlSeconds: a.ttl }));
}

export interface DnsCacheOptions {
  maxEntries?: number;
  /** TTLs are clamped into [minTtlMs, maxTtlMs]: apps keep using an address for a while after its TTL. */
  minTtlMs?: number;
  maxTtlMs?: number;
}

/** IP (text form) → hostname for AI hosts, bounded in size and time; oldest entry evicted when full. */
export class DnsCache {
  private readonly entries = new Map<string, { host: string; expires: number }>();
  private readonly max: number;
  private readonly minTtl: number;
  private readonly maxTtl: number;
  evicted = 0;

  constructor(opts: DnsCacheOptions = {}) {
    this.max = opts.maxEntries ?? 4096;
    this.minTtl = opts.minTtlMs ?? 5 * 60_000;
    this.maxTtl = opts.maxTtlMs ?? 6 * 3600_000;
  }

  learn(ip: string, host: string, ttlSeconds: number, now: number): void {
    const ttl = Math.min(this.maxTtl, Math.max(this.minTtl, ttlSeconds * 1000));
    this.entries.delete(ip); // re-insert so Map order stays oldest-first
    this.entries.set(ip, { host, expires: now + ttl });
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.evicted++;
    }
  }

  lookup(ip: string, now: number): string | undefined {
    const e = this.entries.get(ip);
    if (!e) return undefined;
    if (e.expires <= now) {
      this.entries.delete(ip);
      return undefined;
    }
    return e.host;
  }

  get size(): number {
    return this.entries.size;
  }
}
