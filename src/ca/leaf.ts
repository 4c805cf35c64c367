// Leaf certificates for intercepted hosts: one shared key per process, one signature per new host,
// kept in a bounded LRU; concurrent requests for the same host share one promise.
import net from "node:net";
import { domainToASCII } from "node:url";
import { randomSerial, type CaCertificate } from "./authority.ts";
import { commonName, derToPem, EC_P256, exportKeyPair, extension, keyIdOf, signCertificate } from "./certificate.ts";
import { implicit, octets, oid, seq } from "./der.ts";

export interface LeafCertificate {
  /** Leaf PEM then CA PEM, newline-terminated. */
  cert: string;
  /** PEM (PKCS#8) of the shared leaf key. */
  key: string;
}

export interface LeafIssuer {
  cert: CaCertificate;
  certPem: string;
  key: CryptoKey;
}

const DAY_MS = 86_400_000;
const LEAF_VALIDITY_DAYS = 365;
/** Re-mint a cached leaf when it has less than this left (long-running processes). */
const RENEW_BEFORE_MS = 7 * DAY_MS;

interface SharedKey {
  keys: CryptoKeyPair;
  pem: string;
  /** SubjectPublicKeyInfo, DER. */
  spki: Uint8Array;
  keyId: Uint8Array;
}
let sharedKey: Promise<SharedKey> | undefined;

/** The one leaf key of this process, generated on first use (generating per host would cost far more than signing). */
export function sharedLeafKey(): Promise<SharedKey> {
  sharedKey ??= (async () => {
    const keys = (await crypto.subtle.generateKey(EC_P256, true, ["sign", "verify"])) as CryptoKeyPair;
    const { spki, keyPem } = await exportKeyPair(keys);
    return { keys, pem: keyPem, spki, keyId: await keyIdOf(spki) };
  })();
  sharedKey.catch(() => (sharedKey = undefined)); // let a later call retry
  return sharedKey;
}

export type HostName = { name: string; kind: "dns" | "ip" };

/**
 * Canonical form of a host for a certificate: lower-case DNS name (IDN → punycode, trailing dot dropped)
 * or an IP literal (brackets and zone id dropped, IPv6 compressed). Throws one clear line otherwise.
 */
export function normalizeHost(input: string): HostName {
  if (typeof input !== "string") throw new Error("leaf certificate: hostname must be a string");
  let host = input.trim();
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  const ipPart = host.split("%")[0]!; // fe80::1%eth0
  if (net.isIPv4(ipPart)) return { name: ipPart, kind: "ip" };
  if (net.isIPv6(ipPart)) return { name: new URL(`http://[${ipPart}]`).hostname.slice(1, -1), kind: "ip" };
  host = host.toLowerCase().replace(/\.$/, "");
  if (!host) throw new Error(`leaf certificate: empty hostname`);
  if (/[^\x21-\x7e]/.test(host)) {
    const ascii = domainToASCII(host);
    if (!ascii) throw new Error(`leaf certificate: invalid hostname ${JSON.stringify(input.slice(0, 80))}`);
    host = ascii;
  }
  const label = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;
  if (host.length > 253 || !host.split(".").every((l) => label.test(l)))
    throw new Error(`leaf certificate: invalid hostname ${JSON.stringify(input.slice(0, 80))}`);
  return { name: host, kind: "dns" };
}

interface CacheEntry {
  promise: Promise<LeafCertificate>;
  /** Set once minted, so a hit can tell whether the leaf is close to expiry. */
  notAfter?: number;
}

export interface LeafMinterOptions {
  maxEntries?: number;
  now?: () => Date;
}

export class LeafMinter {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly maxEntries: number;
  private readonly now: () => Date;
  private minted = 0;
  private authorityKeyId?: Promise<Uint8Array>;

  constructor(
    private readonly issuer: LeafIssuer,
    opts: LeafMinterOptions = {},
  ) {
    this.maxEntries = Math.max(1, opts.maxEntries ?? 1000);
    this.now = opts.now ?? (() => new Date());
  }

  leafFor(hostname: string): Promise<LeafCertificate> {
    let host: HostName;
    try {
      host = normalizeHost(hostname);
    } catch (err) {
      return Promise.reject(err);
    }
    const hit = this.cache.get(host.name);
    if (hit && (hit.notAfter === undefined || hit.notAfter - this.now().getTime() > RENEW_BEFORE_MS)) {
      this.cache.delete(host.name); // re-insert: most recently used goes last
      this.cache.set(host.name, hit);
      return hit.promise;
    }
    const entry: CacheEntry = {
      promise: this.mint(host).then(
        ({ leaf, notAfter }) => {
          entry.notAfter = notAfter;
          return leaf;
        },
        (err) => {
          if (this.cache.get(host.name) === entry) this.cache.delete(host.name); // a failure is not cached
          throw err;
        },
      ),
    };
    this.cache.delete(host.name);
    this.cache.set(host.name, entry);
    while (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    return entry.promise;
  }

  stats(): { minted: number; cached: number } {
    return { minted: this.minted, cached: this.cache.size };
  }

  private async mint(host: HostName): Promise<{ leaf: LeafCertificate; notAfter: number }> {
    const shared = await sharedLeafKey();
    // The AKI must equal the CA's SKI when it has one; otherwise it is derived from the CA key the same way.
    this.authorityKeyId ??= this.issuer.cert.subjectKeyId ? Promise.resolve(this.issuer.cert.subjectKeyId) : keyIdOf(this.issuer.cert.spki);
    const now = this.now().getTime();
    // Backdated a day for clients whose clock is behind; never outliving the CA.
    const notAfter = Math.min(now + LEAF_VALIDITY_DAYS * DAY_MS, this.issuer.cert.notAfter.getTime());
    const cert = await signCertificate({
      serial: Buffer.from(randomSerial(), "hex"),
      issuer: this.issuer.cert.subjectDer,
      subject: commonName(host.name),
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(notAfter),
      spki: shared.spki,
      extensions: leafExtensions(host, await this.authorityKeyId, shared.keyId),
      signingKey: this.issuer.key,
    });
    this.minted++;
    return { leaf: { cert: derToPem(cert, "CERTIFICATE") + this.issuer.certPem, key: shared.pem }, notAfter };
  }
}

/** A server-only end-entity certificate for one name (the extensions @peculiar/x509 used to write). */
function leafExtensions(host: HostName, authorityKeyId: Uint8Array, subjectKeyId: Uint8Array): Uint8Array[] {
  const ip = host.kind === "ip" ? ipBytes(host.name) : undefined;
  return [
    extension("2.5.29.19", true, seq()), // basicConstraints: not a CA
    extension("2.5.29.15", true, Uint8Array.of(0x03, 0x02, 0x07, 0x80)), // keyUsage: digitalSignature
    extension("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))), // extKeyUsage: serverAuth
    extension("2.5.29.17", false, seq(ip ? implicit(7, ip) : implicit(2, new TextEncoder().encode(host.name)))), // SAN: iPAddress or dNSName
    extension("2.5.29.35", false, seq(implicit(0, authorityKeyId))),
    extension("2.5.29.14", false, octets(subjectKeyId)),
  ];
}

/** An IP literal as normalizeHost gives it (dotted v4, compressed v6) in network order: 4 or 16 bytes. */
function ipBytes(ip: string): Uint8Array {
  if (net.isIPv4(ip)) return Uint8Array.from(ip.split(".").map(Number));
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const groups = (part: string | undefined) => (part ? part.split(":") : []);
  let parts = groups(head);
  let rest = groups(tail);
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
  const last = (tail === undefined ? parts : rest).at(-1);
  if (last?.includes(".")) {
    const v4 = ipBytes(last);
    const asGroups = [((v4[0]! << 8) | v4[1]!).toString(16), ((v4[2]! << 8) | v4[3]!).toString(16)];
    if (tail === undefined) parts = [...parts.slice(0, -1), ...asGroups];
    else rest = [...rest.slice(0, -1), ...asGroups];
  }
  const all = tail === undefined ? parts : [...parts, ...Array(8 - parts.length - rest.length).fill("0"), ...rest];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}
