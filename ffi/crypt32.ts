// The current user's Root certificate store through crypt32 (bun:ffi), so `oisp ca install|uninstall|status`
// need no external tool on Windows (certutil prints, localises its output, and under Wine is a stub that
// succeeds without doing anything). Loaded lazily, only on Windows.
//
// Windows asks the user to confirm adding a root to, or deleting one from, the current user's Root store
// (a security dialog raised inside CertAddEncodedCertificateToStore / CertDeleteCertificateFromStore);
// declining makes the call fail with ERROR_CANCELLED, reported as such. No administrator rights needed.
import { dlopen, ptr } from "bun:ffi";

const ENCODING = 0x0001_0001; // X509_ASN_ENCODING | PKCS_7_ASN_ENCODING
const CERT_STORE_PROV_SYSTEM_W = 10n;
const CERT_SYSTEM_STORE_CURRENT_USER = 1 << 16;
const CERT_STORE_ADD_REPLACE_EXISTING = 3;
const CERT_FIND_SHA1_HASH = 1 << 16; // CERT_COMPARE_SHA1_HASH << CERT_COMPARE_SHIFT
const CERT_STORE_CTRL_COMMIT = 3;
const ERROR_CANCELLED = 1223;
const HRESULT_CANCELLED = 0x800704c7;

export class Crypt32Error extends Error {
  constructor(
    readonly call: string,
    readonly code: number,
  ) {
    const why =
      code === ERROR_CANCELLED || code === HRESULT_CANCELLED
        ? "the Windows security prompt was declined"
        : code === 5
          ? "access denied"
          : `Windows error ${code} (0x${(code >>> 0).toString(16)})`;
    super(`${call} failed: ${why}`);
    this.name = "Crypt32Error";
  }
}

type Libs = ReturnType<typeof openLibs>;
let libs: Libs | undefined;

function openLibs() {
  const crypt32 = dlopen("crypt32.dll", {
    CertOpenStore: { args: ["u64", "u32", "u64", "u32", "ptr"], returns: "u64" },
    CertCloseStore: { args: ["u64", "u32"], returns: "i32" },
    CertControlStore: { args: ["u64", "u32", "u32", "ptr"], returns: "i32" },
    CertAddEncodedCertificateToStore: { args: ["u64", "u32", "ptr", "u32", "u32", "ptr"], returns: "i32" },
    CertFindCertificateInStore: { args: ["u64", "u32", "u32", "u32", "ptr", "u64"], returns: "u64" },
    CertDeleteCertificateFromStore: { args: ["u64"], returns: "i32" },
    CertFreeCertificateContext: { args: ["u64"], returns: "i32" },
  });
  const kernel32 = dlopen("kernel32.dll", { GetLastError: { args: [], returns: "u32" } });
  return { crypt32: crypt32.symbols, kernel32: kernel32.symbols };
}

function win(): Libs {
  if (process.platform !== "win32") throw new Error("crypt32 is only available on Windows");
  libs ??= openLibs();
  return libs;
}

const wide = (s: string) => Buffer.from(`${s}\0`, "utf16le");
const asBigint = (v: number | bigint) => BigInt(v);

/**
 * Opens the current user's "Root" system store, runs `fn`, commits, closes. The commit matters under Wine:
 * its system store (a collection) writes a deletion to the registry only when committed, not on close.
 * On Windows the store is written through and committing is a no-op.
 */
function withRootStore<T>(fn: (store: bigint, l: Libs) => T): T {
  const l = win();
  const store = asBigint(l.crypt32.CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0n, CERT_SYSTEM_STORE_CURRENT_USER, wide("Root")));
  if (store === 0n) throw new Crypt32Error("CertOpenStore(CurrentUser\\Root)", l.kernel32.GetLastError());
  try {
    const result = fn(store, l);
    l.crypt32.CertControlStore(store, 0, CERT_STORE_CTRL_COMMIT, null);
    return result;
  } finally {
    l.crypt32.CertCloseStore(store, 0);
  }
}

/**
 * CRYPT_HASH_BLOB { DWORD cbData; BYTE *pbData } on x64 (pointer at offset 8), with the hash bytes stored behind
 * it in the same buffer: the blob passed to the call keeps them alive. (A separate hash buffer referenced only
 * through the raw pointer could be collected during the call, and crypt32 would then compare garbage.)
 */
function hashBlob(sha1Hex: string): Uint8Array {
  const hash = sha1Bytes(sha1Hex);
  const blob = new Uint8Array(16 + hash.length);
  blob.set(hash, 16);
  const dv = new DataView(blob.buffer);
  dv.setUint32(0, hash.length, true);
  dv.setBigUint64(8, BigInt(ptr(blob, 16)), true);
  return blob;
}

function sha1Bytes(sha1Hex: string): Buffer {
  const hex = sha1Hex.replace(/[^0-9a-f]/gi, "");
  if (hex.length !== 40) throw new Error(`not a SHA-1 thumbprint: ${sha1Hex}`);
  return Buffer.from(hex, "hex");
}

/** Adds (or replaces) a DER certificate in CurrentUser\Root. */
export function addToCurrentUserRoot(der: Uint8Array): void {
  withRootStore((store, l) => {
    if (!l.crypt32.CertAddEncodedCertificateToStore(store, ENCODING, der, der.length, CERT_STORE_ADD_REPLACE_EXISTING, null)) {
      throw new Crypt32Error("CertAddEncodedCertificateToStore", l.kernel32.GetLastError());
    }
  });
}

/** Whether CurrentUser\Root holds the certificate with this SHA-1 thumbprint (hex). */
export function isInCurrentUserRoot(sha1Hex: string): boolean {
  const blob = hashBlob(sha1Hex);
  return withRootStore((store, l) => {
    const ctx = asBigint(l.crypt32.CertFindCertificateInStore(store, ENCODING, 0, CERT_FIND_SHA1_HASH, blob, 0n));
    if (ctx === 0n) return false;
    l.crypt32.CertFreeCertificateContext(ctx);
    return true;
  });
}

/** Deletes every copy of the certificate with this SHA-1 thumbprint from CurrentUser\Root; returns how many. */
export function removeFromCurrentUserRoot(sha1Hex: string): number {
  const blob = hashBlob(sha1Hex);
  return withRootStore((store, l) => {
    let removed = 0;
    for (let i = 0; i < 16; i++) {
      const ctx = asBigint(l.crypt32.CertFindCertificateInStore(store, ENCODING, 0, CERT_FIND_SHA1_HASH, blob, 0n));
      if (ctx === 0n) break;
      // Frees the context whether or not it succeeds.
      if (!l.crypt32.CertDeleteCertificateFromStore(ctx)) throw new Crypt32Error("CertDeleteCertificateFromStore", l.kernel32.GetLastError());
      removed++;
    }
    return removed;
  });
}
