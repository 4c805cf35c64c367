// IP address forms: canonical text for the Linux lookup's two ways of finding a socket (/proc/net tables,
// sock_diag); text <-> bytes for the Windows lookup and the WinDivert packet code.
import net from "node:net";

/** Canonical form for comparing addresses: dotted quad for IPv4 and IPv4-mapped IPv6, else 32 hex digits. */
export function canonicalIp(ip: string): string | undefined {
  const bare = ip.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  if (net.isIPv4(bare)) return bare;
  if (!net.isIPv6(bare)) return undefined;
  let text = bare.toLowerCase();
  // An embedded dotted quad becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split(".").map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8) return undefined;
  const hex = groups.map((g) => g.padStart(4, "0")).join("");
  if (hex.startsWith("00000000000000000000ffff")) {
    const n = hex.slice(24);
    return [0, 2, 4, 6].map((i) => parseInt(n.slice(i, i + 2), 16)).join(".");
  }
  return hex;
}

/** Network-order bytes of a canonicalIp() result: 4 for a dotted quad, 16 for 32 hex digits. */
export function canonicalIpBytes(canonical: string): Uint8Array {
  if (canonical.includes(".")) return Uint8Array.from(canonical.split(".").map(Number));
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(canonical.slice(i * 2, i * 2 + 2), 16);
  return out;
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
