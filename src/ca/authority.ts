// The CA itself: create it (ECDSA P-256, ~10 years), write it with private modes, load and check it.
// Certificates are written by certificate.ts and read with node:crypto and der.ts (no certificate library:
// @peculiar/x509 and its dependencies cost a running `oisp up` ~5 MB of memory).
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { commonName, derToPem, EC_P256, ECDSA_SHA256, exportKeyPair, extension, keyIdOf, pemToDerBlock, signCertificate } from "./certificate.ts";
import { childrenOf, contents, octets, oid, readElement, seq, TRUE, unsignedInt, whole, type Element } from "./der.ts";

export { EC_P256, ECDSA_SHA256 } from "./certificate.ts";

export interface CaFiles {
  dir: string;
  certPath: string;
  keyPath: string;
}

const DAY_MS = 86_400_000;
const CA_VALIDITY_DAYS = 3650;
const POSIX = process.platform !== "win32";

/**
 * Where the CA lives. Two layouts: <data dir>/ca/oisp-ca.pem + oisp-ca.key (this project's), and the Windows
 * seed's <data dir>/oisp-ca.crt + oisp-ca.key (%LOCALAPPDATA%\OISP\…). A CA already on disk in either is the
 * one used (the seed's first: that is the certificate its users already trust); a new CA is written in the
 * seed's layout on Windows and in ours elsewhere.
 */
export function caFiles(dataDir: string, platform: NodeJS.Platform = process.platform): CaFiles {
  const seed = { dir: dataDir, certPath: path.join(dataDir, "oisp-ca.crt"), keyPath: path.join(dataDir, "oisp-ca.key") };
  const dir = path.join(dataDir, "ca");
  const ours = { dir, certPath: path.join(dir, "oisp-ca.pem"), keyPath: path.join(dir, "oisp-ca.key") };
  if (present(seed.certPath)) return seed;
  if (present(ours.certPath) || present(ours.keyPath)) return ours;
  return platform === "win32" ? seed : ours;
}

/** A positive, non-zero 128-bit serial in hex (RFC 5280: at most 20 octets, positive). */
export function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return Buffer.from(bytes).toString("hex");
}

export function caSubject(): string {
  return `OISP Sensor Local CA (${userName()}@${os.hostname()})`;
}

/** Bun's os.userInfo() says "unknown" when $USER is unset (services, sudo -i): fall back to /etc/passwd. */
function userName(): string {
  const fromEnv = process.env.USER || process.env.USERNAME || process.env.LOGNAME;
  if (fromEnv) return fromEnv;
  try {
    const info = os.userInfo();
    if (info.username && info.username !== "unknown") return info.username;
    const entry = fs
      .readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .find((line) => line.split(":")[2] === String(info.uid));
    if (entry) return entry.split(":")[0]!;
  } catch {
    // no passwd database (Windows, minimal containers)
  }
  return "user";
}

/** Makes a new self-signed CA: PEM certificate and PKCS#8 PEM key. */
export async function createCaMaterial(now = new Date()): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await crypto.subtle.generateKey(EC_P256, true, ["sign", "verify"])) as CryptoKeyPair;
  const { spki, keyPem } = await exportKeyPair(keys);
  const name = commonName(caSubject());
  const cert = await signCertificate({
    serial: Buffer.from(randomSerial(), "hex"),
    issuer: name,
    subject: name,
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
    spki,
    extensions: [
      extension("2.5.29.19", true, seq(TRUE, unsignedInt(Uint8Array.of(0)))), // basicConstraints: CA, pathLen 0
      extension("2.5.29.15", true, Uint8Array.of(0x03, 0x02, 0x01, 0x06)), // keyUsage: keyCertSign, cRLSign
      extension("2.5.29.14", false, octets(await keyIdOf(spki))), // subjectKeyIdentifier
    ],
    signingKey: keys.privateKey,
  });
  return { certPem: derToPem(cert, "CERTIFICATE"), keyPem };
}

/** Writes key then certificate, each through a temp file and a rename, so a crash never leaves half a file. */
export function writeCaFiles(files: CaFiles, material: { certPem: string; keyPem: string }): void {
  fs.mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  if (POSIX) fs.chmodSync(files.dir, 0o700);
  writeAtomic(files.keyPath, material.keyPem, 0o600);
  writeAtomic(files.certPath, material.certPem, 0o644);
}

function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.rmSync(tmp, { force: true }); // a leftover could carry a wider mode than ours
  fs.writeFileSync(tmp, text, { mode, flag: "wx" });
  if (POSIX) fs.chmodSync(tmp, mode); // the umask may have narrowed or the FS widened it
  fs.renameSync(tmp, file);
}

/** Whether each file is there. Only ENOENT counts as absent: an unreadable file is present, and reading it says why. */
export function caExists(files: CaFiles): { cert: boolean; key: boolean } {
  return { cert: present(files.certPath), key: present(files.keyPath) };
}

function present(file: string): boolean {
  try {
    fs.statSync(file);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ENOENT";
  }
}

const initHint = "run `oisp ca init`";
const forceHint = "run `oisp ca init --force` to replace it";

/** Reads a file, turning fs errors into one clear line. */
function readText(file: string, what: string, files: CaFiles): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      if (what === "certificate" || !present(files.certPath)) throw new Error(`no CA in ${files.dir}: ${initHint}`);
      throw new Error(`CA in ${files.dir} is incomplete (${what} ${file} is missing): ${forceHint}`);
    }
    if (code === "EACCES" || code === "EPERM") {
      let owner = "";
      try {
        owner = ` (owned by uid ${fs.statSync(file).uid}; was it created with sudo?)`;
      } catch {
        // the directory itself is unreadable: the message below still names the file
      }
      throw new Error(`cannot read CA ${what} ${file}: permission denied${owner}`);
    }
    throw new Error(`cannot read CA ${what} ${file}: ${(err as Error).message}`);
  }
}

/** What the rest of the code needs of the CA certificate. */
export interface CaCertificate {
  /** The certificate, DER. */
  rawData: ArrayBuffer;
  /** "CN=…", relative names joined with ", ". */
  subject: string;
  /** The subject Name as the certificate encodes it: a leaf's issuer must be these bytes. */
  subjectDer: Uint8Array;
  notAfter: Date;
  /** The Subject Key Identifier's key id, if the certificate has the extension (a leaf's AKI must equal it). */
  subjectKeyId?: Uint8Array;
  /** SubjectPublicKeyInfo, DER. */
  spki: Uint8Array<ArrayBuffer>;
}

const SUBJECT_KEY_ID = oid("2.5.29.14");
const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** A certificate's fields: node:crypto checks the whole (it throws on a corrupt one), der.ts reads the parts. */
function parseCertificate(der: Uint8Array): { cert: CaCertificate; isCa: boolean } {
  const native = new X509Certificate(der);
  const [tbs] = childrenOf(der, readElement(der, 0));
  let fields = childrenOf(der, tbs!);
  if (fields[0]?.tag === 0xa0) fields = fields.slice(1); // [0] version; absent in v1
  // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, then [1] [2] [3] extensions
  const [, , , validity, subject, spki, ...optional] = fields;
  if (!validity || !subject || !spki) throw new Error("certificate is missing fields");
  const [, notAfter] = childrenOf(der, validity);
  let subjectKeyId: Uint8Array | undefined;
  const extensions = optional.find((e) => e.tag === 0xa3);
  for (const ext of extensions ? childrenOf(der, childrenOf(der, extensions)[0]!) : []) {
    const parts = childrenOf(der, ext);
    if (!sameBytes(whole(der, parts[0]!), SUBJECT_KEY_ID)) continue;
    const value = parts.at(-1)!; // OCTET STRING holding the KeyIdentifier OCTET STRING
    subjectKeyId = contents(der, readElement(der, value.start, value.end)).slice();
  }
  return {
    cert: {
      rawData: der.slice().buffer,
      subject: native.subject.split("\n").join(", "),
      subjectDer: whole(der, subject).slice(),
      notAfter: readTime(der, notAfter!),
      subjectKeyId,
      spki: whole(der, spki).slice(),
    },
    isCa: native.ca,
  };
}

/** UTCTime (YYMMDDHHMMSSZ, 19xx from 50) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
function readTime(der: Uint8Array, e: Element): Date {
  const text = new TextDecoder().decode(contents(der, e));
  const m = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m || (e.tag !== 0x17 && e.tag !== 0x18)) throw new Error(`unsupported certificate time ${JSON.stringify(text)}`);
  const year = m[1]!.length === 4 ? Number(m[1]) : Number(m[1]) + (Number(m[1]) >= 50 ? 1900 : 2000);
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

/** Parses and checks the CA certificate (not the key): used by export and status, which never need the key. */
export function readCaCert(files: CaFiles): { cert: CaCertificate; certPem: string } {
  const text = readText(files.certPath, "certificate", files);
  let parsed: ReturnType<typeof parseCertificate>;
  let der: Uint8Array;
  try {
    der = pemToDerBlock(text, "CERTIFICATE", "PEM certificate block");
    parsed = parseCertificate(der);
  } catch (err) {
    throw new Error(`CA certificate ${files.certPath} is corrupt (${oneLine(err)}): ${forceHint}`);
  }
  if (!parsed.isCa) throw new Error(`${files.certPath} is not a CA certificate: ${forceHint}`);
  return { cert: parsed.cert, certPem: derToPem(der, "CERTIFICATE") };
}

export interface LoadedCa {
  files: CaFiles;
  cert: CaCertificate;
  certPem: string;
  key: CryptoKey;
  /** Things fixed or worth telling the user (e.g. a key mode tightened). */
  warnings: string[];
}

/** Loads the CA, tightening file modes, and checks that the key matches the certificate and it has not expired. */
export async function readCa(files: CaFiles, now = new Date()): Promise<LoadedCa> {
  const exists = caExists(files);
  if (!exists.cert && !exists.key) throw new Error(`no CA in ${files.dir}: ${initHint}`);
  const warnings = POSIX ? tightenModes(files) : [];
  const { cert, certPem } = readCaCert(files);
  const keyText = readText(files.keyPath, "key", files);
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("pkcs8", pemToDerBlock(keyText, "PRIVATE KEY", "PKCS#8 PEM block"), EC_P256, false, ["sign"]);
  } catch (err) {
    throw new Error(`CA key ${files.keyPath} is corrupt (${oneLine(err)}): ${forceHint}`);
  }
  if (!(await keyMatches(cert, key)))
    throw new Error(`CA key ${files.keyPath} does not match certificate ${files.certPath}: ${forceHint}`);
  if (cert.notAfter.getTime() <= now.getTime())
    throw new Error(`CA certificate ${files.certPath} expired on ${cert.notAfter.toISOString()}: ${forceHint} (and reinstall it)`);
  return { files, cert, certPem, key, warnings };
}

async function keyMatches(cert: CaCertificate, key: CryptoKey): Promise<boolean> {
  const probe = crypto.getRandomValues(new Uint8Array(32));
  const signature = await crypto.subtle.sign(ECDSA_SHA256, key, probe);
  let pub: CryptoKey;
  try {
    pub = await crypto.subtle.importKey("spki", cert.spki, EC_P256, false, ["verify"]);
  } catch {
    return false; // not a P-256 certificate: our key cannot be its key
  }
  return crypto.subtle.verify(ECDSA_SHA256, pub, signature, probe);
}

/** The key must be readable by its owner only: fix a wider mode (and the directory's), or refuse if we cannot. */
function tightenModes(files: CaFiles): string[] {
  const warnings: string[] = [];
  const fix = (file: string, want: number, what: string) => {
    let mode: number;
    try {
      mode = fs.statSync(file).mode & 0o777;
    } catch {
      return; // missing or unreadable: readCaCert/readText report it
    }
    if ((mode & 0o077) === 0) return;
    try {
      fs.chmodSync(file, want);
    } catch (err) {
      throw new Error(`CA ${what} ${file} is accessible to other users (mode ${mode.toString(8)}) and cannot be fixed: ${oneLine(err)}`);
    }
    warnings.push(`CA ${what} ${file} was accessible to other users (mode ${mode.toString(8)}); changed to ${want.toString(8)}`);
  };
  fix(files.dir, 0o700, "directory");
  fix(files.keyPath, 0o600, "key");
  return warnings;
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
}
