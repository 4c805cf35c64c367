// Adding the CA to, and removing it from, the OS trust store. External tools run through Bun.spawn;
// a missing tool, missing rights or a failing command is reported as { ok: false, message }, never thrown.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export interface TrustResult {
  ok: boolean;
  message: string;
}

/** What the trust-store code needs to know about the CA. */
export interface TrustedCert {
  certPath: string;
  certPem: string;
  /** Upper-case hex SHA-1 of the DER: how macOS and Windows name a certificate. */
  sha1: string;
}

export async function trustedCertOf(cert: { rawData: ArrayBuffer }, certPem: string, certPath: string): Promise<TrustedCert> {
  const sha1 = Buffer.from(await crypto.subtle.digest("SHA-1", cert.rawData)).toString("hex").toUpperCase();
  return { certPath, certPem, sha1 };
}

export interface TrustEnv {
  platform: NodeJS.Platform;
  isRoot: boolean;
}

export function currentTrustEnv(): TrustEnv {
  return { platform: process.platform, isRoot: typeof process.getuid === "function" && process.getuid() === 0 };
}

const CLIENT_NOTE = "Firefox and Node.js keep their own stores: for Node set NODE_EXTRA_CA_CERTS";

// ---------- running tools ----------

type RunResult = { code: number; output: string } | { missing: string };

function which(cmd: string): string | null {
  // /usr/sbin is often missing from a normal user's PATH but holds update-ca-certificates.
  return Bun.which(cmd, { PATH: `${process.env.PATH ?? ""}${path.delimiter}/usr/local/sbin:/usr/sbin:/sbin` });
}

async function run(argv: string[], timeoutMs = 120_000): Promise<RunResult> {
  const exe = which(argv[0]!);
  if (!exe) return { missing: argv[0]! };
  try {
    const proc = Bun.spawn([exe, ...argv.slice(1)], { stdout: "pipe", stderr: "pipe", stdin: "ignore", timeout: timeoutMs });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, output: `${out}\n${err}`.trim() };
  } catch (err) {
    return { missing: `${argv[0]} (${(err as Error).message})` };
  }
}

function describeFailure(argv: string[], r: RunResult): string {
  if ("missing" in r) return `${argv[0]} is not available on this system`;
  const last = r.output.split("\n").filter(Boolean).slice(-2).join(" / ");
  return `\`${argv.join(" ")}\` failed (exit ${r.code})${last ? `: ${last.slice(0, 300)}` : ""}`;
}

// ---------- Linux ----------

interface LinuxStore {
  anchor: string;
  update: string[];
  bundles: string[];
}

/** Debian/Ubuntu (update-ca-certificates) or Fedora/RHEL/Arch (update-ca-trust, p11-kit anchors). */
export function linuxStore(): LinuxStore | undefined {
  if (which("update-ca-certificates"))
    return {
      anchor: "/usr/local/share/ca-certificates/oisp-ca.crt",
      update: ["update-ca-certificates"],
      bundles: ["/etc/ssl/certs/ca-certificates.crt"],
    };
  if (which("update-ca-trust")) {
    const dirs = ["/etc/pki/ca-trust/source/anchors", "/etc/ca-certificates/trust-source/anchors"];
    return {
      anchor: path.join(dirs.find((d) => fs.existsSync(d)) ?? dirs[0]!, "oisp-ca.pem"),
      update: ["update-ca-trust", "extract"],
      bundles: ["/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"],
    };
  }
  return undefined;
}

function pemBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, "");
}

/** true/false when a system bundle exists to look in, "unknown" otherwise. */
function inLinuxBundle(store: LinuxStore, certPem: string): boolean | "unknown" {
  const bundle = store.bundles.find((b) => fs.existsSync(b));
  if (!bundle) return "unknown";
  try {
    return pemBody(fs.readFileSync(bundle, "utf8")).includes(pemBody(certPem));
  } catch {
    return "unknown";
  }
}

async function linuxInstall(ca: TrustedCert, env: TrustEnv): Promise<TrustResult> {
  const store = linuxStore();
  if (!store)
    return { ok: false, message: `no update-ca-certificates or update-ca-trust found: add ${ca.certPath} to this system's trust store by hand` };
  const manual = `sudo cp '${ca.certPath}' ${store.anchor} && sudo ${store.update.join(" ")}`;
  if (!env.isRoot) return { ok: false, message: `installing into the system trust store needs root: run  ${manual}` };
  try {
    fs.mkdirSync(path.dirname(store.anchor), { recursive: true, mode: 0o755 });
    fs.writeFileSync(store.anchor, ca.certPem, { mode: 0o644 });
  } catch (err) {
    return { ok: false, message: `cannot write ${store.anchor}: ${(err as Error).message}` };
  }
  const r = await run(store.update);
  if ("missing" in r || r.code !== 0) return { ok: false, message: describeFailure(store.update, r) };
  if (inLinuxBundle(store, ca.certPem) === false)
    return { ok: false, message: `ran ${store.update.join(" ")} but the CA is not in ${store.bundles[0]}` };
  return { ok: true, message: `installed the CA as ${store.anchor} (system trust store). ${CLIENT_NOTE}=${ca.certPath}` };
}

async function linuxUninstall(ca: TrustedCert | undefined, env: TrustEnv): Promise<TrustResult> {
  const store = linuxStore();
  if (!store) return { ok: false, message: "no update-ca-certificates or update-ca-trust found: nothing oisp could have installed" };
  const present = fs.existsSync(store.anchor);
  if (!present && (!ca || inLinuxBundle(store, ca.certPem) !== true)) return { ok: true, message: "the CA is not in the system trust store" };
  if (!env.isRoot) return { ok: false, message: `removing it from the system trust store needs root: run  sudo rm ${store.anchor} && sudo ${store.update.join(" ")}` };
  try {
    fs.rmSync(store.anchor, { force: true });
  } catch (err) {
    return { ok: false, message: `cannot remove ${store.anchor}: ${(err as Error).message}` };
  }
  const update = store.update[0] === "update-ca-certificates" ? [...store.update, "--fresh"] : store.update;
  const r = await run(update);
  if ("missing" in r || r.code !== 0) return { ok: false, message: describeFailure(update, r) };
  if (ca && inLinuxBundle(store, ca.certPem) === true) return { ok: false, message: `removed ${store.anchor} but the CA is still in the system bundle` };
  return { ok: true, message: `removed the CA from the system trust store (${store.anchor})` };
}

// ---------- macOS and Windows: command plans (on Windows only the manual fallback: crypt32 does the work) ----------

export interface TrustCommands {
  store: string;
  install: string[][];
  uninstall: string[][];
  /** Exit code 0 means trusted. */
  check: string[];
}

export function osTrustCommands(platform: NodeJS.Platform, ca: TrustedCert, isRoot: boolean): TrustCommands | undefined {
  if (platform === "darwin") {
    const keychain = isRoot ? "/Library/Keychains/System.keychain" : path.join(os.homedir(), "Library/Keychains/login.keychain-db");
    return {
      store: `macOS keychain ${keychain}`,
      install: [["security", "add-trusted-cert", ...(isRoot ? ["-d"] : []), "-r", "trustRoot", "-k", keychain, ca.certPath]],
      uninstall: [
        ["security", "remove-trusted-cert", ...(isRoot ? ["-d"] : []), ca.certPath],
        ["security", "delete-certificate", "-Z", ca.sha1, keychain],
      ],
      check: ["security", "verify-cert", "-c", ca.certPath, "-L"],
    };
  }
  if (platform === "win32") {
    return {
      store: "Windows current user Root store",
      install: [["certutil", "-user", "-addstore", "Root", ca.certPath]],
      uninstall: [["certutil", "-user", "-delstore", "Root", ca.sha1]],
      check: ["certutil", "-user", "-verifystore", "Root", ca.sha1],
    };
  }
  return undefined;
}

// ---------- Windows: crypt32 through bun:ffi (no certutil: nothing to parse, and Wine's is a no-op stub) ----------

const WINDOWS_STORE = "Windows current user Root store";

async function windowsInstall(ca: TrustedCert): Promise<TrustResult> {
  try {
    const crypt32 = await import("../../ffi/crypt32.ts");
    crypt32.addToCurrentUserRoot(Buffer.from(pemBody(ca.certPem), "base64"));
    if (!crypt32.isInCurrentUserRoot(ca.sha1)) return { ok: false, message: `added the CA, but the ${WINDOWS_STORE} does not list it` };
  } catch (err) {
    return { ok: false, message: `${(err as Error).message}: add it by hand with  ${osTrustCommands("win32", ca, false)!.install[0]!.join(" ")}` };
  }
  return { ok: true, message: `installed the CA into the ${WINDOWS_STORE}. ${CLIENT_NOTE}=${ca.certPath}` };
}

async function windowsUninstall(ca: TrustedCert): Promise<TrustResult> {
  try {
    const crypt32 = await import("../../ffi/crypt32.ts");
    const removed = crypt32.removeFromCurrentUserRoot(ca.sha1);
    if (removed === 0) return { ok: true, message: `the CA is not in the ${WINDOWS_STORE}` };
  } catch (err) {
    return { ok: false, message: `${(err as Error).message}: remove it by hand with  ${osTrustCommands("win32", ca, false)!.uninstall[0]!.join(" ")}` };
  }
  return { ok: true, message: `removed the CA from the ${WINDOWS_STORE}` };
}

async function windowsTrust(ca: TrustedCert): Promise<{ trusted: boolean | "unknown"; store: string }> {
  try {
    return { trusted: (await import("../../ffi/crypt32.ts")).isInCurrentUserRoot(ca.sha1), store: WINDOWS_STORE };
  } catch {
    return { trusted: "unknown", store: WINDOWS_STORE };
  }
}

async function runAll(cmds: string[][], tolerateFailureOf = new Set<number>()): Promise<TrustResult | undefined> {
  for (const [i, argv] of cmds.entries()) {
    const r = await run(argv);
    if ("missing" in r || (r.code !== 0 && !tolerateFailureOf.has(i))) return { ok: false, message: describeFailure(argv, r) };
  }
  return undefined;
}

// ---------- entry points ----------

export async function installIntoOs(ca: TrustedCert, env = currentTrustEnv()): Promise<TrustResult> {
  if (env.platform === "linux") return linuxInstall(ca, env);
  if (env.platform === "win32") return windowsInstall(ca);
  const plan = osTrustCommands(env.platform, ca, env.isRoot);
  if (!plan) return { ok: false, message: `installing into the trust store is not supported on ${env.platform}: import ${ca.certPath} by hand` };
  const failed = await runAll(plan.install);
  if (failed) return failed;
  return { ok: true, message: `installed the CA into the ${plan.store}. ${CLIENT_NOTE}=${ca.certPath}` };
}

/** `ca` is undefined when the CA files are gone; Linux can still remove its copy by name. */
export async function uninstallFromOs(ca: TrustedCert | undefined, env = currentTrustEnv()): Promise<TrustResult> {
  if (env.platform === "linux") return linuxUninstall(ca, env);
  if (!ca) return { ok: false, message: "no CA certificate to identify in the trust store" };
  if (env.platform === "win32") return windowsUninstall(ca);
  const plan = osTrustCommands(env.platform, ca, env.isRoot);
  if (!plan) return { ok: false, message: `the trust store of ${env.platform} is not managed by oisp` };
  // macOS: removing the trust setting may fail when there is none; deleting the certificate decides.
  const failed = await runAll(plan.uninstall, new Set(env.platform === "darwin" ? [0] : []));
  if (failed) return failed;
  return { ok: true, message: `removed the CA from the ${plan.store}` };
}

export async function osTrust(ca: TrustedCert, env = currentTrustEnv()): Promise<{ trusted: boolean | "unknown"; store: string }> {
  if (env.platform === "linux") {
    const store = linuxStore();
    if (!store) return { trusted: "unknown", store: "no update-ca-certificates or update-ca-trust found" };
    return { trusted: inLinuxBundle(store, ca.certPem), store: `${store.anchor} (${store.update.join(" ")})` };
  }
  if (env.platform === "win32") return windowsTrust(ca);
  const plan = osTrustCommands(env.platform, ca, env.isRoot);
  if (!plan) return { trusted: "unknown", store: `not managed on ${env.platform}` };
  const r = await run(plan.check, 30_000);
  return { trusted: "missing" in r ? "unknown" : r.code === 0, store: plan.store };
}
