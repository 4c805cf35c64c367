// The CA certificate in the formats trust stores import: PEM, DER, PKCS#12. Never the key.
import type forgeTypes from "node-forge";

export type ExportFormat = "pem" | "der" | "p12";

export function pemToDer(pem: string): Uint8Array {
  const body = pem.match(/-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/);
  if (!body) throw new Error("no PEM certificate block");
  return new Uint8Array(Buffer.from(body[1]!.replace(/\s+/g, ""), "base64"));
}

/**
 * A PKCS#12 holding only the certificate (a certBag, no key), with a SHA-1 HMAC over the content keyed by
 * the password (empty by default), as Windows' and Firefox's importers expect.
 *
 * Built from node-forge's ASN.1 and PKCS#12 key derivation rather than `pkcs12.toPkcs12Asn1`, because forge
 * can only re-encode RSA certificates: our ECDSA certificate is embedded byte for byte instead.
 */
export function certOnlyPkcs12(der: Uint8Array, opts: { password?: string; friendlyName?: string } = {}): Uint8Array {
  // node-forge is only for this export: loaded on use, not in every running sensor (~12 MB).
  const forge = require("node-forge") as typeof forgeTypes;
  const { asn1, pki } = forge;
  const U = asn1.Class.UNIVERSAL;
  const T = asn1.Type;
  const seq = (items: forgeTypes.asn1.Asn1[]) => asn1.create(U, T.SEQUENCE, true, items);
  const set = (items: forgeTypes.asn1.Asn1[]) => asn1.create(U, T.SET, true, items);
  const oid = (o: string) => asn1.create(U, T.OID, false, asn1.oidToDer(o).getBytes());
  const octets = (bytes: string) => asn1.create(U, T.OCTETSTRING, false, bytes);
  const explicit0 = (inner: forgeTypes.asn1.Asn1) => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [inner]);
  const integer = (n: number) => asn1.create(U, T.INTEGER, false, asn1.integerToDer(n).getBytes());

  const derBytes = forge.util.binary.raw.encode(der);
  const certBag = seq([
    oid(pki.oids.certBag!),
    explicit0(seq([oid(pki.oids.x509Certificate!), explicit0(octets(derBytes))])),
    set([seq([oid(pki.oids.friendlyName!), set([asn1.create(U, T.BMPSTRING, false, opts.friendlyName ?? "OISP Sensor Local CA")])])]),
  ]);
  // AuthenticatedSafe: one unencrypted ContentInfo (a certificate is public; the MAC guards integrity).
  const safeContents = asn1.toDer(seq([certBag])).getBytes();
  const authSafe = asn1.toDer(seq([seq([oid(pki.oids.data!), explicit0(octets(safeContents))])])).getBytes();

  const salt = forge.random.getBytesSync(8);
  const iterations = 2048;
  const macKey = forge.pkcs12.generateKey(opts.password ?? "", new forge.util.ByteStringBuffer(salt), 3, iterations, 20);
  const hmac = forge.hmac.create();
  hmac.start("sha1", macKey);
  hmac.update(authSafe);
  const macData = seq([
    seq([seq([oid(pki.oids.sha1!), asn1.create(U, T.NULL, false, "")]), octets(hmac.digest().getBytes())]),
    octets(salt),
    integer(iterations),
  ]);
  const pfx = seq([integer(3), seq([oid(pki.oids.data!), explicit0(octets(authSafe))]), macData]);
  return forge.util.binary.raw.decode(asn1.toDer(pfx).getBytes());
}
