// Leaf certificates for intercepted hosts: one shared key per process, one signature per new host,
// kept in a bounded LRU; concurrent requests for the same host share one promise.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import net from "node:net";
import { domainToASCII } from "node:url";
import { EC_P256, ECDSA_SHA256, pemWithNewline, randomSerial } from "./authority.ts";

export interface LeafCertificate {
  /** Leaf PEM then CA PEM, newline-terminated. */
  cert: string;
  /** PEM (PKCS#8) of the shared leaf key. */
  key: string;
}

export interface LeafIssuer {
  cert: x509.X509Certificate;
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
  subjectKeyId: x509.SubjectKeyIdentifierExtension;
}
let sharedKey: Promise<SharedKey> | undefined;

/** The one leaf key of this process, generated on first use (generating per host would cost far more than signing). */
export function sharedLeafKey(): Promise<SharedKey> {
  sharedKey ??= (async () => {
    const keys = (await crypto.subtle.generateKey(EC_P256, true, ["sign", "verify"])) as CryptoKeyPair;
    const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
    return {
      keys,
      pem: pemWithNewline(x509.PemConverter.encode(pkcs8, "PRIVATE KEY")),
      subjectKeyId: await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    };
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
  private authorityKeyId?: Promise<x509.AuthorityKeyIdentifierExtension>;

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
    this.authorityKeyId ??= authorityKeyIdFor(this.issuer.cert);
    const now = this.now().getTime();
    // Backdated a day for clients whose clock is behind; never outliving the CA.
    const notAfter = Math.min(now + LEAF_VALIDITY_DAYS * DAY_MS, this.issuer.cert.notAfter.getTime());
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: [{ CN: [host.name] }],
      issuer: this.issuer.cert.subjectName,
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(notAfter),
      publicKey: shared.keys.publicKey,
      signingKey: this.issuer.key,
      signingAlgorithm: ECDSA_SHA256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: host.kind === "ip" ? "ip" : "dns", value: host.name }]),
        await this.authorityKeyId,
        shared.subjectKeyId,
      ],
    });
    this.minted++;
    return { leaf: { cert: pemWithNewline(cert.toString("pem")) + this.issuer.certPem, key: shared.pem }, notAfter };
  }
}

/** The AKI must equal the CA's SKI when it has one; otherwise derive it from the CA key. */
async function authorityKeyIdFor(ca: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = ca.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski) return new x509.AuthorityKeyIdentifierExtension(ski.keyId);
  return x509.AuthorityKeyIdentifierExtension.create(ca.publicKey);
}
