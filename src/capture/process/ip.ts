// IP address forms shared by the Linux lookup's two ways of finding a socket (/proc/net tables, sock_diag).
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
