// The local certificate authority: create/load it, mint leaves for intercepted hosts, export it,
// and add it to / remove it from the OS trust store.
import { caExists, caFiles, createCaMaterial, readCa, readCaCert, writeCaFiles, type CaCertificate, type CaFiles } from "./authority.ts";
import { certOnlyPkcs12, pemToDer } from "./export.ts";
import { LeafMinter, type LeafCertificate } from "./leaf.ts";
import { installIntoOs, osTrust, trustedCertOf, uninstallFromOs, type TrustedCert } from "./trust-store.ts";

export { caFiles, type CaFiles } from "./authority.ts";
export { normalizeHost, type LeafCertificate } from "./leaf.ts";

export interface CertificateAuthority {
  files: CaFiles;
  /** The CA certificate, PEM, newline-terminated. */
  certPem: string;
  /** DNS name or IP literal (v4/v6) → a leaf with that SAN, chained to the CA. */
  leafFor(hostname: string): Promise<LeafCertificate>;
  /** minted: signatures made by this CA object; cached: hosts currently in the LRU. */
  stats(): { minted: number; cached: number };
}

/** Creates the CA unless one exists (or `force`). An existing CA is not validated here: loadCa does that. */
export async function initCa(dataDir: string, opts: { force?: boolean } = {}): Promise<{ created: boolean; files: CaFiles }> {
  const files = caFiles(dataDir);
  const exists = caExists(files);
  if (!opts.force) {
    if (exists.cert && exists.key) return { created: false, files };
    if (exists.cert || exists.key)
      throw new Error(`CA in ${files.dir} is incomplete (${exists.cert ? "key" : "certificate"} missing): run \`oisp ca init --force\``);
  }
  writeCaFiles(files, await createCaMaterial());
  return { created: true, files };
}

export async function loadCa(dataDir: string, opts: { maxCachedLeaves?: number } = {}): Promise<CertificateAuthority> {
  const loaded = await readCa(caFiles(dataDir));
  for (const w of loaded.warnings) process.stderr.write(`oisp: warning: ${w}\n`);
  const minter = new LeafMinter(loaded, { maxEntries: opts.maxCachedLeaves });
  return {
    files: loaded.files,
    certPem: loaded.certPem,
    leafFor: (hostname) => minter.leafFor(hostname),
    stats: () => minter.stats(),
  };
}

/**
 * The CA certificate as PEM, DER or PKCS#12. Never the key: the PKCS#12 holds the certificate only
 * (for importers that want .p12/.pfx), with a MAC keyed by `password` (empty if not given).
 */
export async function exportCa(dataDir: string, format: "pem" | "der" | "p12", opts: { password?: string } = {}): Promise<Uint8Array> {
  const { certPem } = readCaCert(caFiles(dataDir));
  switch (format) {
    case "pem":
      return new TextEncoder().encode(certPem);
    case "der":
      return pemToDer(certPem);
    case "p12":
      return certOnlyPkcs12(pemToDer(certPem), { password: opts.password });
    default:
      throw new Error(`unknown export format "${String(format)}" (pem, der, p12)`);
  }
}

async function trustedCert(dataDir: string): Promise<{ cert: CaCertificate; trusted: TrustedCert }> {
  const files = caFiles(dataDir);
  const { cert, certPem } = readCaCert(files);
  return { cert, trusted: await trustedCertOf(cert, certPem, files.certPath) };
}

export async function installCa(dataDir: string): Promise<{ ok: boolean; message: string }> {
  try {
    return await installIntoOs((await trustedCert(dataDir)).trusted);
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

export async function uninstallCa(dataDir: string): Promise<{ ok: boolean; message: string }> {
  let ca: TrustedCert | undefined;
  try {
    ca = (await trustedCert(dataDir)).trusted;
  } catch {
    ca = undefined; // the CA files may be gone; the OS copy can still be removed where it is named by path
  }
  try {
    return await uninstallFromOs(ca);
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

/** { exists, path, subject, fingerprint_sha256, not_after, trusted_by_os, store } (+ error when unreadable). */
export async function caTrustStatus(dataDir: string): Promise<Record<string, unknown>> {
  const files = caFiles(dataDir);
  if (!caExists(files).cert) return { exists: false, path: files.certPath, trusted_by_os: false };
  try {
    const { cert, trusted } = await trustedCert(dataDir);
    const { trusted: trustedByOs, store } = await osTrust(trusted);
    return {
      exists: true,
      path: files.certPath,
      subject: cert.subject,
      fingerprint_sha256: colonHex(await crypto.subtle.digest("SHA-256", cert.rawData)),
      not_after: cert.notAfter.toISOString(),
      trusted_by_os: trustedByOs,
      store,
    };
  } catch (err) {
    return { exists: true, path: files.certPath, error: (err as Error).message, trusted_by_os: "unknown" };
  }
}

function colonHex(buf: ArrayBuffer): string {
  return Buffer.from(buf).toString("hex").toUpperCase().match(/../g)!.join(":");
}
