// The local CA with real crypto in temp OISP dirs: files and modes, reload, leaves that node:tls and
// openssl accept, the leaf cache, clear errors, and the export formats parsed back by other tools.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { afterAll, describe, expect, test } from "bun:test";
import forge from "node-forge";
import fs from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { caFiles, caTrustStatus, exportCa, initCa, loadCa, normalizeHost, type CertificateAuthority } from "../../src/ca/index.ts";
import { createCaMaterial, readCa, writeCaFiles } from "../../src/ca/authority.ts";
import { LeafMinter } from "../../src/ca/leaf.ts";
import { osTrustCommands, trustedCertOf } from "../../src/ca/trust-store.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function tempHome(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-ca-"));
  dirs.push(d);
  return d;
}
async function freshCa(): Promise<{ home: string; ca: CertificateAuthority }> {
  const home = tempHome();
  await initCa(home);
  return { home, ca: await loadCa(home) };
}
const mode = (p: string) => fs.statSync(p).mode & 0o777;
const firstCert = (chain: string) => new x509.X509Certificate(chain.slice(0, chain.indexOf("-----END CERTIFICATE-----") + 25));

function openssl(args: string[], stdin?: Uint8Array) {
  const r = Bun.spawnSync(["openssl", ...args], { stdin: stdin ?? "ignore", stdout: "pipe", stderr: "pipe", timeout: 20_000 });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}
function writeTemp(name: string, content: string | Uint8Array): string {
  const file = path.join(tempHome(), name);
  fs.writeFileSync(file, content);
  return file;
}

/** Serves `leaf` on 127.0.0.1 (or ::1) and connects with `ca` as the only trust anchor. */
async function handshake(
  leaf: { cert: string; key: string },
  opts: { ca: string; servername?: string; host?: string },
): Promise<{ authorized: boolean; error?: string }> {
  const host = opts.host ?? "127.0.0.1";
  const server = tls.createServer({ cert: leaf.cert, key: leaf.key }, (s) => s.end());
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ authorized: false, error: "timeout" }), 5000);
      const socket = tls.connect({ host, port, ca: opts.ca, servername: opts.servername }, () => {
        clearTimeout(timer);
        resolve({ authorized: socket.authorized });
        socket.destroy();
      });
      socket.on("error", (err) => {
        clearTimeout(timer);
        resolve({ authorized: false, error: err.message });
      });
    });
  } finally {
    server.close();
  }
}

describe("create and load", () => {
  test("initCa writes an ECDSA P-256 CA with private modes", async () => {
    const home = tempHome();
    const { created, files } = await initCa(home);
    expect(created).toBe(true);
    expect(files).toEqual(caFiles(home));
    expect(files.certPath).toBe(path.join(home, "ca", "oisp-ca.pem"));
    expect(files.keyPath).toBe(path.join(home, "ca", "oisp-ca.key"));
    expect(mode(files.dir)).toBe(0o700);
    expect(mode(files.keyPath)).toBe(0o600);

    const pem = fs.readFileSync(files.certPath, "utf8");
    expect(pem.endsWith("-----END CERTIFICATE-----\n")).toBe(true);
    const cert = new x509.X509Certificate(pem);
    expect(cert.subject).toMatch(/^CN=OISP Sensor Local CA \(.+@.+\)$/);
    expect(cert.subject).toBe(cert.issuer);
    expect(cert.publicKey.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
    const years = (cert.notAfter.getTime() - Date.now()) / (365.25 * 86_400_000);
    expect(years).toBeGreaterThan(9.9);
    expect(years).toBeLessThan(10.1);
    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.ca).toBe(true);
    expect(bc.critical).toBe(true);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(await cert.verify({ publicKey: cert.publicKey, signatureOnly: true })).toBe(true);

    const text = openssl(["x509", "-in", files.certPath, "-noout", "-text"]).out;
    expect(text).toContain("CA:TRUE");
    expect(text).toContain("Certificate Sign, CRL Sign");
    expect(text).toContain("prime256v1");
  });

  test("serials are random; reload gives the same CA; --force replaces it", async () => {
    const home = tempHome();
    await initCa(home);
    const a = await loadCa(home);
    const again = await initCa(home);
    expect(again.created).toBe(false);
    const b = await loadCa(home);
    expect(b.certPem).toBe(a.certPem);

    const other = await freshCa();
    expect(new x509.X509Certificate(other.ca.certPem).serialNumber).not.toBe(new x509.X509Certificate(a.certPem).serialNumber);

    const forced = await initCa(home, { force: true });
    expect(forced.created).toBe(true);
    const c = await loadCa(home);
    expect(c.certPem).not.toBe(a.certPem);
    expect(mode(c.files.keyPath)).toBe(0o600);
    // A leaf from the old CA no longer verifies against the new one.
    const oldLeaf = await a.leafFor("example.com");
    expect((await handshake(oldLeaf, { ca: c.certPem, servername: "example.com" })).authorized).toBe(false);
  });

  test("loose modes on the key and directory are tightened on load", async () => {
    const home = tempHome();
    const { files } = await initCa(home);
    fs.chmodSync(files.keyPath, 0o644);
    fs.chmodSync(files.dir, 0o755);
    await loadCa(home);
    expect(mode(files.keyPath)).toBe(0o600);
    expect(mode(files.dir)).toBe(0o700);
  });
});

describe("clear errors", () => {
  test("missing CA", async () => {
    const home = tempHome();
    const dir = caFiles(home).dir;
    await expect(loadCa(home)).rejects.toThrow(`no CA in ${dir}: run \`oisp ca init\``);
    await expect(exportCa(home, "pem")).rejects.toThrow(`no CA in ${dir}`);
    expect(await caTrustStatus(home)).toEqual({ exists: false, path: caFiles(home).certPath, trusted_by_os: false });
  });

  test("corrupt certificate, corrupt key, missing key, mismatched key", async () => {
    const { home } = await freshCa();
    const files = caFiles(home);
    const certPem = fs.readFileSync(files.certPath, "utf8");
    const keyPem = fs.readFileSync(files.keyPath, "utf8");

    fs.writeFileSync(files.certPath, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    await expect(loadCa(home)).rejects.toThrow(/^CA certificate .*oisp-ca\.pem is corrupt \(.*\): run `oisp ca init --force`/);
    fs.writeFileSync(files.certPath, "garbage");
    await expect(loadCa(home)).rejects.toThrow(/is corrupt \(no PEM certificate block\)/);
    const status = await caTrustStatus(home);
    expect(status.exists).toBe(true);
    expect(String(status.error)).toContain("is corrupt");
    fs.writeFileSync(files.certPath, certPem);

    fs.writeFileSync(files.keyPath, keyPem.replace(/\n[A-Za-z0-9+/]{10}/, "\nAAAAAAAAAA"));
    await expect(loadCa(home)).rejects.toThrow(/^CA key .*oisp-ca\.key (is corrupt|does not match)/);

    const stranger = await freshCa();
    fs.copyFileSync(caFiles(stranger.home).keyPath, files.keyPath);
    await expect(loadCa(home)).rejects.toThrow(`CA key ${files.keyPath} does not match certificate ${files.certPath}`);

    fs.rmSync(files.keyPath);
    await expect(loadCa(home)).rejects.toThrow(`CA in ${files.dir} is incomplete (key ${files.keyPath} is missing)`);
    await expect(initCa(home)).rejects.toThrow("incomplete (key missing): run `oisp ca init --force`");
    expect((await initCa(home, { force: true })).created).toBe(true);
    await loadCa(home);
  });

  test("unreadable files name the file and the cause (run as another user)", async () => {
    const setpriv = Bun.which("setpriv");
    if (process.getuid?.() !== 0 || !setpriv) return; // needs root to switch users
    const { home } = await freshCa();
    fs.chmodSync(home, 0o755);
    const script = `import { loadCa } from ${JSON.stringify(path.resolve(import.meta.dir, "../../src/ca/index.ts"))};
      loadCa(${JSON.stringify(home)}).then(() => console.log("loaded"), (e) => console.log("ERR " + e.message));`;
    const file = path.join(home, "probe.ts");
    fs.writeFileSync(file, script, { mode: 0o644 });
    const r = Bun.spawnSync([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, file], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, HOME: "/tmp", BUN_INSTALL_CACHE_DIR: "/tmp/oisp-ca-nobody-cache" },
      timeout: 20_000,
    });
    const out = r.stdout.toString() + r.stderr.toString();
    if (/EACCES|permission denied/i.test(out) && !out.includes("ERR")) return; // bun itself unreachable to nobody here
    expect(out).toContain(`ERR cannot read CA certificate ${caFiles(home).certPath}: permission denied`);
  });
});

describe("leaf certificates", () => {
  test("a DNS leaf is accepted by node:tls and openssl, and rejected for another name or CA", async () => {
    const { ca } = await freshCa();
    const leaf = await ca.leafFor("API.Example.TEST.");
    expect(leaf.cert.endsWith(ca.certPem)).toBe(true);
    expect(leaf.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);

    expect(await handshake(leaf, { ca: ca.certPem, servername: "api.example.test" })).toEqual({ authorized: true });
    expect((await handshake(leaf, { ca: ca.certPem, servername: "other.example.test" })).authorized).toBe(false);
    const stranger = await freshCa();
    expect((await handshake(leaf, { ca: stranger.ca.certPem, servername: "api.example.test" })).authorized).toBe(false);

    const cert = firstCert(leaf.cert);
    expect(cert.subject).toBe("CN=api.example.test");
    expect(cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON()).toEqual([{ type: "dns", value: "api.example.test" }]);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    expect(cert.getExtension(x509.BasicConstraintsExtension)!.ca).toBe(false);
    const backdated = (Date.now() - cert.notBefore.getTime()) / 86_400_000;
    expect(backdated).toBeGreaterThan(0.99);
    expect(backdated).toBeLessThan(1.01);
    const days = (cert.notAfter.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThan(366);

    const caFile = writeTemp("ca.pem", ca.certPem);
    const leafFile = writeTemp("leaf.pem", leaf.cert);
    const ok = openssl(["verify", "-CAfile", caFile, "-purpose", "sslserver", "-verify_hostname", "api.example.test", leafFile]);
    expect(ok.out).toContain(": OK");
    expect(ok.code).toBe(0);
    const wrongHost = openssl(["verify", "-CAfile", caFile, "-purpose", "sslserver", "-verify_hostname", "evil.test", leafFile]);
    expect(wrongHost.code).not.toBe(0);
  });

  test("IP literals get an IP SAN that node:tls accepts (v4 and v6)", async () => {
    const { ca } = await freshCa();
    const v4 = await ca.leafFor("127.0.0.1");
    expect(firstCert(v4.cert).getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON()).toEqual([{ type: "ip", value: "127.0.0.1" }]);
    expect(await handshake(v4, { ca: ca.certPem })).toEqual({ authorized: true });
    const v4File = writeTemp("v4.pem", v4.cert);
    expect(openssl(["verify", "-CAfile", writeTemp("ca.pem", ca.certPem), "-verify_ip", "127.0.0.1", v4File]).code).toBe(0);
    // The DNS leaf for localhost is not valid for the IP.
    expect((await handshake(await ca.leafFor("localhost"), { ca: ca.certPem })).authorized).toBe(false);

    const v6 = await ca.leafFor("[0:0:0:0:0:0:0:1]");
    expect(await ca.leafFor("::1")).toBe(v6);
    expect(firstCert(v6.cert).getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON()).toEqual([{ type: "ip", value: "::1" }]);
    const v6ok = await handshake(v6, { ca: ca.certPem, host: "::1" }).catch((e: Error) => ({ authorized: false, error: e.message }));
    if (v6ok.error?.includes("EADDRNOTAVAIL") || v6ok.error?.includes("EAFNOSUPPORT")) return; // no IPv6 loopback here
    expect(v6ok).toEqual({ authorized: true });
  });

  test("cache: a hit returns the same PEM and mints once; names are canonical; the LRU is bounded", async () => {
    const home = tempHome();
    await initCa(home);
    const ca = await loadCa(home, { maxCachedLeaves: 3 });
    const a = await ca.leafFor("a.example");
    expect(await ca.leafFor("A.EXAMPLE.")).toBe(a);
    expect(ca.stats()).toEqual({ minted: 1, cached: 1 });
    await ca.leafFor("b.example");
    await ca.leafFor("c.example");
    await ca.leafFor("a.example"); // a becomes most recent; b is now the oldest
    await ca.leafFor("d.example");
    expect(ca.stats()).toEqual({ minted: 4, cached: 3 });
    expect(await ca.leafFor("a.example")).toBe(a);
    expect(ca.stats().minted).toBe(4);
    await ca.leafFor("b.example"); // evicted: minted again
    expect(ca.stats()).toEqual({ minted: 5, cached: 3 });
  });

  test("leaves never outlive the CA and are re-minted when close to expiry", async () => {
    const { home } = await freshCa();
    const issuer = await readCa(caFiles(home));
    let now = new Date();
    const minter = new LeafMinter(issuer, { now: () => now });
    const first = await minter.leafFor("renew.example");
    now = new Date(now.getTime() + 300 * 86_400_000);
    expect(await minter.leafFor("renew.example")).toBe(first); // 65 days left: still served
    now = new Date(now.getTime() + 60 * 86_400_000);
    const second = await minter.leafFor("renew.example"); // 5 days left: replaced
    expect(second).not.toBe(first);
    expect(minter.stats()).toEqual({ minted: 2, cached: 1 });
    expect(firstCert(second.cert).notAfter.getTime()).toBeGreaterThan(firstCert(first.cert).notAfter.getTime());

    now = new Date(issuer.cert.notAfter.getTime() - 30 * 86_400_000);
    const late = firstCert((await minter.leafFor("late.example")).cert);
    expect(late.notAfter.getTime()).toBe(issuer.cert.notAfter.getTime());
  });

  // The 5 s bound is the test's own timeout (it also covers freshCa), not a wall-clock assertion.
  test("50 hosts requested concurrently, each twice: 50 signatures, one shared key, right SANs", async () => {
    const { ca } = await freshCa();
    const hosts = Array.from({ length: 50 }, (_, i) => `h${i}.example.net`);
    const leaves = await Promise.all([...hosts, ...hosts].map((h) => ca.leafFor(h)));
    expect(ca.stats()).toEqual({ minted: 50, cached: 50 });
    expect(new Set(leaves.map((l) => l.key)).size).toBe(1);
    expect(new Set(leaves.map((l) => l.cert)).size).toBe(50);
    hosts.forEach((h, i) => {
      expect(leaves[i]).toBe(leaves[i + 50]!);
      expect(firstCert(leaves[i]!.cert).getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON()).toEqual([{ type: "dns", value: h }]);
    });
  }, 5000);

  test("invalid host names are rejected clearly, without caching", async () => {
    const { ca } = await freshCa();
    for (const bad of ["", "   ", "a..b", "-x.example", "x-.example", "*.example.com", "a b.example", "x".repeat(64) + ".com", "a.".repeat(130) + "com", "exa/mple.com"])
      await expect(ca.leafFor(bad)).rejects.toThrow(/^leaf certificate: (empty|invalid) hostname/);
    expect(ca.stats()).toEqual({ minted: 0, cached: 0 });
    expect(normalizeHost("Bücher.example")).toEqual({ name: "xn--bcher-kva.example", kind: "dns" });
    expect(normalizeHost("fe80::1%eth0")).toEqual({ name: "fe80::1", kind: "ip" });
    expect(normalizeHost("_acme.example")).toEqual({ name: "_acme.example", kind: "dns" });
  });
});

describe("export and status", () => {
  test("pem, der and p12 parse back; p12 holds the certificate only", async () => {
    const { home, ca } = await freshCa();
    const pem = new TextDecoder().decode(await exportCa(home, "pem"));
    expect(pem).toBe(ca.certPem);
    expect(pem).not.toContain("PRIVATE KEY");

    const der = await exportCa(home, "der");
    const fromOpenssl = Bun.spawnSync(["openssl", "x509", "-in", caFiles(home).certPath, "-outform", "DER"]).stdout;
    expect(Buffer.from(der).equals(Buffer.from(fromOpenssl))).toBe(true);
    expect(new x509.X509Certificate(new Uint8Array(der)).toString("pem") + "\n").toBe(ca.certPem);

    const p12 = await exportCa(home, "p12", { password: "s3cret" });
    const parsed = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.binary.raw.encode(p12)), "s3cret");
    const certBags = parsed.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!]!;
    expect(certBags).toHaveLength(1);
    // forge cannot read ECDSA keys, so it hands back the certificate's ASN.1: it must be our DER, byte for byte.
    const bagDer = forge.asn1.toDer(certBags[0]!.asn1!).getBytes();
    expect(Buffer.from(bagDer, "binary").equals(Buffer.from(der))).toBe(true);
    expect(parsed.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag! })[forge.pki.oids.pkcs8ShroudedKeyBag!] ?? []).toHaveLength(0);
    expect(parsed.getBags({ bagType: forge.pki.oids.keyBag! })[forge.pki.oids.keyBag!] ?? []).toHaveLength(0);
    expect(() => forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.binary.raw.encode(p12)), "wrong")).toThrow(/MAC/i);

    const p12File = writeTemp("ca.p12", p12);
    const info = openssl(["pkcs12", "-in", p12File, "-info", "-nokeys", "-passin", "pass:s3cret"]);
    expect(info.code).toBe(0);
    expect(info.out).toContain("Certificate bag");
    expect(info.out).not.toMatch(/Shrouded Keybag|PRIVATE KEY/);
    expect(pemBody(info.out)).toContain(pemBody(ca.certPem));
    expect(openssl(["pkcs12", "-in", p12File, "-info", "-nokeys", "-passin", "pass:wrong"]).code).not.toBe(0);

    const noPassword = writeTemp("nopw.p12", await exportCa(home, "p12"));
    expect(openssl(["pkcs12", "-in", noPassword, "-nokeys", "-passin", "pass:"]).code).toBe(0);
  });

  test("caTrustStatus reports subject, fingerprint and expiry as openssl sees them", async () => {
    const { home, ca } = await freshCa();
    const status = await caTrustStatus(home);
    const fp = openssl(["x509", "-in", caFiles(home).certPath, "-noout", "-fingerprint", "-sha256"]).out.split("=")[1]!.trim();
    expect(status).toMatchObject({
      exists: true,
      path: caFiles(home).certPath,
      subject: new x509.X509Certificate(ca.certPem).subject,
      fingerprint_sha256: fp,
      not_after: new x509.X509Certificate(ca.certPem).notAfter.toISOString(),
    });
    expect([true, false, "unknown"]).toContain(status.trusted_by_os as boolean | string);
    expect(typeof status.store).toBe("string");
  });

  test("macOS and Windows plans name the certificate by its SHA-1 thumbprint", async () => {
    const { home, ca } = await freshCa();
    const sha1 = openssl(["x509", "-in", caFiles(home).certPath, "-noout", "-fingerprint", "-sha1"]).out.split("=")[1]!.trim().replaceAll(":", "");
    const info = await trustedCertOf(new x509.X509Certificate(ca.certPem), ca.certPem, caFiles(home).certPath);
    expect(info.sha1).toBe(sha1);
    const win = osTrustCommands("win32", info, false)!;
    expect(win.install).toEqual([["certutil", "-user", "-addstore", "Root", info.certPath]]);
    expect(win.uninstall).toEqual([["certutil", "-user", "-delstore", "Root", sha1]]);
    const mac = osTrustCommands("darwin", info, false)!;
    expect(mac.install[0]).toContain("add-trusted-cert");
    expect(mac.uninstall[1]).toEqual(["security", "delete-certificate", "-Z", sha1, expect.stringContaining("login.keychain")]);
  });
});

function pemBody(text: string): string {
  const m = text.match(/-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/);
  return (m?.[1] ?? "").replace(/\s+/g, "");
}

describe("the Windows seed's CA layout (%LOCALAPPDATA%\\OISP\\oisp-ca.crt / oisp-ca.key)", () => {
  test("a new CA on Windows is written as the seed wrote it; elsewhere in <data dir>/ca", async () => {
    const home = tempHome();
    const files = caFiles(home, "win32");
    expect(files).toEqual({ dir: home, certPath: path.join(home, "oisp-ca.crt"), keyPath: path.join(home, "oisp-ca.key") });
    writeCaFiles(files, await createCaMaterial());
    expect((await readCa(caFiles(home, "win32"))).certPem).toContain("BEGIN CERTIFICATE");
    expect(caFiles(tempHome(), "linux").certPath).toEndWith(path.join("ca", "oisp-ca.pem"));
  });

  test("a seed CA already on disk is the one loaded, on any OS, so its users' trust carries over", async () => {
    const home = tempHome();
    const material = await createCaMaterial();
    fs.writeFileSync(path.join(home, "oisp-ca.crt"), material.certPem);
    fs.writeFileSync(path.join(home, "oisp-ca.key"), material.keyPem, { mode: 0o600 });
    fs.chmodSync(home, 0o700);
    const ca = await loadCa(home);
    expect(ca.files.certPath).toBe(path.join(home, "oisp-ca.crt"));
    expect(ca.certPem).toBe(material.certPem);
    expect((await initCa(home)).created).toBe(false);
  });

  test("the current layout keeps being read on Windows (no new CA behind the user's back)", async () => {
    const home = tempHome();
    await initCa(home); // <data dir>/ca/oisp-ca.pem on this OS
    expect(caFiles(home, "win32").certPath).toBe(path.join(home, "ca", "oisp-ca.pem"));
  });
});

describe("no certificate library at run time", () => {
  test("a CA written by @peculiar/x509 (before this CA wrote its own DER) loads, and its leaves verify", async () => {
    const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: "01a2b3",
      name: [{ CN: ["OISP Sensor Local CA (old@host)"] }],
      notBefore: new Date(Date.now() - 86_400_000),
      notAfter: new Date(Date.now() + 3650 * 86_400_000),
      keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const home = tempHome();
    const certPem = cert.toString("pem") + "\n";
    writeCaFiles(caFiles(home), { certPem, keyPem: x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY") + "\n" });
    const ca = await loadCa(home);
    expect(ca.certPem).toBe(certPem);
    const leaf = await ca.leafFor("api.example.test");
    const aki = firstCert(leaf.cert).getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId;
    expect(aki).toBe(cert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    expect(firstCert(leaf.cert).issuer).toBe("CN=OISP Sensor Local CA (old@host)");
    const ok = openssl(["verify", "-CAfile", writeTemp("ca.pem", certPem), "-purpose", "sslserver", "-verify_hostname", "api.example.test", writeTemp("leaf.pem", leaf.cert)]);
    expect(ok.out).toContain(": OK");
    expect(await handshake(leaf, { ca: certPem, servername: "api.example.test" })).toEqual({ authorized: true });
  });

  test("creating, loading the CA and minting leaves load no certificate library (it cost `oisp up` ~5 MB)", () => {
    const ca = path.join(import.meta.dir, "../../src/ca/index.ts");
    const script = `
      const { initCa, loadCa } = await import(${JSON.stringify(ca)});
      const home = require("node:fs").mkdtempSync(require("node:path").join(require("node:os").tmpdir(), "oisp-ca-lib-"));
      await initCa(home);
      const authority = await loadCa(home);
      await authority.leafFor("a.example");
      await authority.leafFor("127.0.0.1");
      require("node:fs").rmSync(home, { recursive: true });
      console.log(JSON.stringify(Object.keys(require.cache).filter((k) => /node_modules/.test(k))));`;
    const r = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    expect(JSON.parse(r.stdout.toString())).toEqual([]);
  });
});
