// Real install into and removal from this Linux system's trust store (Debian's update-ca-certificates),
// run only as root where the tool exists; the CA is always removed again afterwards.
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { caTrustStatus, initCa, installCa, loadCa, uninstallCa } from "../../src/ca/index.ts";
import { installIntoOs, linuxStore, trustedCertOf, uninstallFromOs } from "../../src/ca/trust-store.ts";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

const home = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-ca-trust-"));
const store = process.platform === "linux" ? linuxStore() : undefined;
const canInstall = process.getuid?.() === 0 && store?.update[0] === "update-ca-certificates";

afterAll(async () => {
  if (canInstall) await uninstallCa(home);
  fs.rmSync(home, { recursive: true, force: true });
});

function verifyWithSystemBundle(leafPem: string): boolean {
  const file = path.join(home, "leaf.pem");
  fs.writeFileSync(file, leafPem);
  const r = Bun.spawnSync(["openssl", "verify", "-CAfile", store!.bundles[0]!, "-verify_hostname", "api.example.test", file], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
  return r.exitCode === 0;
}

describe("system trust store", () => {
  test("without a CA, install says so", async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-ca-none-"));
    try {
      const r = await installCa(empty);
      expect(r.ok).toBe(false);
      expect(r.message).toContain("no CA in");
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  test.skipIf(!store)("without root, install and uninstall explain the commands to run", async () => {
    await initCa(home);
    const ca = await loadCa(home);
    const cert = await trustedCertOf(new x509.X509Certificate(ca.certPem), ca.certPem, ca.files.certPath);
    const r = await installIntoOs(cert, { platform: "linux", isRoot: false });
    expect(r.ok).toBe(false);
    expect(r.message).toContain("needs root");
    expect(r.message).toContain(`sudo cp '${ca.files.certPath}' ${store!.anchor}`);
    expect(fs.existsSync(store!.anchor)).toBe(false);
    // Nothing installed: uninstall has nothing to do, root or not.
    expect(await uninstallFromOs(cert, { platform: "linux", isRoot: false })).toEqual({ ok: true, message: "the CA is not in the system trust store" });
  });

  test.skipIf(!canInstall)(
    "install makes openssl trust our leaves through the system bundle; uninstall undoes it",
    async () => {
      await initCa(home);
      const ca = await loadCa(home);
      const leaf = await ca.leafFor("api.example.test");
      expect(verifyWithSystemBundle(leaf.cert)).toBe(false);
      expect((await caTrustStatus(home)).trusted_by_os).toBe(false);

      const installed = await installCa(home);
      expect(installed).toEqual({ ok: true, message: expect.stringContaining(store!.anchor) });
      expect(fs.readFileSync(store!.anchor, "utf8")).toBe(ca.certPem);
      expect(await caTrustStatus(home)).toMatchObject({ exists: true, trusted_by_os: true });
      expect(verifyWithSystemBundle(leaf.cert)).toBe(true);
      expect((await installCa(home)).ok).toBe(true); // again: still fine

      const removed = await uninstallCa(home);
      expect(removed.ok).toBe(true);
      expect(fs.existsSync(store!.anchor)).toBe(false);
      expect(fs.existsSync("/etc/ssl/certs/oisp-ca.pem")).toBe(false);
      expect((await caTrustStatus(home)).trusted_by_os).toBe(false);
      expect(verifyWithSystemBundle(leaf.cert)).toBe(false);
      expect(await uninstallCa(home)).toEqual({ ok: true, message: "the CA is not in the system trust store" });
    },
    60_000,
  );
});
