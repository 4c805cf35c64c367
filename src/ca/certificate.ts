// X.509 v3 certificates as this CA writes them (its own and its leaves): ECDSA P-256 with SHA-256, built in
// DER (der.ts) and signed with WebCrypto. Also the PEM and key-identifier helpers both need.
import { bits, childrenOf, ecdsaSignatureDer, explicit, octets, oid, readElement, seq, set, time, TRUE, unsignedInt, utf8 } from "./der.ts";

export const EC_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
export const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" } as const;

const SIGNED_WITH_ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));

/** Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }. */
export const extension = (id: string, critical: boolean, value: Uint8Array) => seq(oid(id), ...(critical ? [TRUE] : []), octets(value));

/** A Name holding one common name. */
export const commonName = (cn: string) => seq(set(seq(oid("2.5.4.3"), utf8(cn))));

export interface CertificateFields {
  /** Serial number, big-endian magnitude (positive, at most 20 bytes). */
  serial: Uint8Array;
  /** Issuer Name, DER (the subject bytes of the issuer's certificate). */
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo, DER. */
  spki: Uint8Array;
  extensions: Uint8Array[];
  /** The issuer's ECDSA P-256 private key. */
  signingKey: CryptoKey;
}

/** The signed certificate, DER. */
export async function signCertificate(f: CertificateFields): Promise<Uint8Array<ArrayBuffer>> {
  const tbs = seq(
    explicit(0, unsignedInt(Uint8Array.of(2))), // v3
    unsignedInt(f.serial),
    SIGNED_WITH_ECDSA_SHA256,
    f.issuer,
    seq(time(f.notBefore), time(f.notAfter)),
    f.subject,
    f.spki,
    explicit(3, seq(...f.extensions)),
  );
  const signature = new Uint8Array(await crypto.subtle.sign(ECDSA_SHA256, f.signingKey, tbs));
  return seq(tbs, SIGNED_WITH_ECDSA_SHA256, bits(ecdsaSignatureDer(signature)));
}

/** DER as PEM: base64 in lines of 64, newline-terminated. */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** The body of the first PEM block of `label`, decoded; throws "no `what`" if there is none. */
export function pemToDerBlock(text: string, label: string, what: string): Uint8Array<ArrayBuffer> {
  const m = new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`).exec(text);
  if (!m) throw new Error(`no ${what}`);
  return new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64"));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the public key's bits, from a SubjectPublicKeyInfo (DER). */
export async function keyIdOf(spki: Uint8Array): Promise<Uint8Array> {
  const [, key] = childrenOf(spki, readElement(spki, 0));
  if (key?.tag !== 0x03) throw new Error("SubjectPublicKeyInfo without a BIT STRING");
  return new Uint8Array(await crypto.subtle.digest("SHA-1", spki.slice(key.start + 1, key.end)));
}

/** A key pair's public half as SubjectPublicKeyInfo and its private half as PKCS#8 PEM. */
export async function exportKeyPair(keys: CryptoKeyPair): Promise<{ spki: Uint8Array<ArrayBuffer>; keyPem: string }> {
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { spki, keyPem: derToPem(pkcs8, "PRIVATE KEY") };
}
