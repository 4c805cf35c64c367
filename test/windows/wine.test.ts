// The Windows executables under Wine (Debian's wine64; CI installs it): the cross-compiled oisp.exe runs
// (--version, ca init), and a small exe compiled the same way runs the real WinDivert bun:ffi bindings
// and packet workers against the stand-in WinDivert.dll built with mingw — Win64 calling convention,
// kernel32!GetLastError, WinDivertShutdown from the main thread, the compiled worker entry point.
// Not the real driver: nothing here has touched a Windows kernel.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { skipWine, stopWine, wineBuild, wineMissing, wineRun, winPath, type WineBuild } from "./wine-env.ts";

if (skipWine) {
  test.skip(`Windows exe under Wine: SKIPPED (OISP_SKIP_WINE=1), ${wineMissing} is not installed`, () => {});
} else {
  describe("Windows executables under Wine", () => {
    let w: WineBuild;
    let dir = "";
    const wine = (exe: string, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000) => wineRun(exe, args, env, timeoutMs);

    beforeAll(async () => {
      w = await wineBuild();
      dir = w.dir;
      w.compile("wd-smoke", ["test/windows/wd-smoke.ts", "src/capture/windivert/worker.ts"]);
      w.compile("priority-smoke", ["test/windows/priority-smoke.ts", "test/windows/priority-worker.ts"]);
    }, 300_000);

    afterAll(() => stopWine());

    test("oisp.exe --version and ca init", async () => {
      const v = await wine(path.join(dir, "oisp.exe"), ["--version"]);
      expect(v.code).toBe(0);
      expect(v.out).toMatch(/^oisp \d+\.\d+\.\d+ \(.*win32-x64\)/);
      const home = path.join(dir, "home");
      fs.mkdirSync(home);
      const ca = await wine(path.join(dir, "oisp.exe"), ["ca", "init"], { OISP_HOME: winPath(home) });
      expect(ca.code).toBe(0);
      expect(fs.readFileSync(path.join(home, "oisp-ca.crt"), "utf8")).toStartWith("-----BEGIN CERTIFICATE-----");
    }, 90_000);

    test("ca install / status / uninstall round-trip through crypt32 (CurrentUser\\Root), checked in the registry with reg.exe", async () => {
      const home = path.join(dir, "home-trust");
      fs.mkdirSync(home);
      const env = { OISP_HOME: winPath(home) };
      const oisp = (args: string[]) => wine(w.oisp, args, env);
      expect((await oisp(["ca", "init"])).code).toBe(0);
      const der = new x509.X509Certificate(fs.readFileSync(path.join(home, "oisp-ca.crt"), "utf8")).rawData;
      const sha1 = createHash("sha1").update(Buffer.from(der)).digest("hex").toUpperCase();
      // Independent of our code: the registry key crypt32 keeps CurrentUser\Root certificates under.
      const inRegistry = async () =>
        (await wine("reg", ["query", `HKCU\\Software\\Microsoft\\SystemCertificates\\Root\\Certificates\\${sha1}`])).code === 0;
      const trusted = async () => JSON.parse((await oisp(["ca", "status"])).out).trusted_by_os;

      expect(await inRegistry()).toBe(false);
      const install = await oisp(["ca", "install"]);
      expect(install).toMatchObject({ code: 0 });
      expect(install.out).toStartWith("installed the CA into the Windows current user Root store");
      expect(await trusted()).toBe(true);
      expect(await inRegistry()).toBe(true);
      const uninstall = await oisp(["ca", "uninstall"]);
      expect(uninstall).toMatchObject({ code: 0, out: "removed the CA from the Windows current user Root store\n" });
      expect(await trusted()).toBe(false);
      expect(await inRegistry()).toBe(false);
      const again = await oisp(["ca", "uninstall"]);
      expect(again).toMatchObject({ code: 0, out: "the CA is not in the Windows current user Root store\n" });
    }, 180_000);

    test("WinDivert FFI + workers in a Windows exe: DNS-learned SYN reflected, directory answers, shutdown closes both handles", async () => {
      const stubDir = path.join(dir, "stub");
      fs.mkdirSync(stubDir);
      const r = await wine(path.join(dir, "wd-smoke.exe"), ["WinDivert.dll"], { WINDIVERT_STUB_DIR: winPath(stubDir) });
      expect(r.code).toBe(0);
      const report = JSON.parse(r.out.trim().split("\n").pop()!);
      expect(report).toMatchObject({
        platform: "win32",
        sent: [
          { src: "10.0.0.1", sport: 53, dst: "10.0.0.5", dport: 40000, outbound: false },
          { src: "162.159.140.245", sport: 50123, dst: "10.0.0.5", dport: 8443, outbound: false },
        ],
        original: { server: { ip: "162.159.140.245", port: 443 }, client: { ip: "10.0.0.5", port: 50123 }, host: "api.openai.com" },
        errors: [],
      });
      const calls = fs.readFileSync(path.join(stubDir, "calls.log"), "utf8");
      expect(calls).toContain("open layer=3 priority=0 flags=5");
      expect(calls).toContain("param 0 16384");
      expect(calls.match(/^shutdown layer=\d how=3$/gm)?.sort()).toEqual(["shutdown layer=0 how=3", "shutdown layer=3 how=3"]);
      expect(calls.match(/^close layer=\d$/gm)?.sort()).toEqual(["close layer=0", "close layer=3"]);
    }, 60_000);

    test("a Worker lowers its own thread one step below normal (kernel32!SetThreadPriority), the main thread keeps its own", async () => {
      const r = await wine(path.join(dir, "priority-smoke.exe"), []);
      expect(r.code).toBe(0);
      const report = JSON.parse(r.out.trim().split("\n").pop()!);
      // THREAD_PRIORITY_NORMAL = 0, THREAD_PRIORITY_BELOW_NORMAL = -1
      expect(report).toMatchObject({ platform: "win32", worker: { before: 0, after: -1, read: -1 }, main: 0 });
    }, 60_000);

    test("WinDivertOpen failure reaches the user through kernel32!GetLastError as one actionable line", async () => {
      const stubDir = path.join(dir, "stub-denied");
      fs.mkdirSync(stubDir);
      const r = await wine(path.join(dir, "wd-smoke.exe"), ["WinDivert.dll"], { WINDIVERT_STUB_DIR: winPath(stubDir), WINDIVERT_STUB_OPEN_ERROR: "5" });
      const report = JSON.parse(r.out.trim().split("\n").pop()!);
      expect(report.startError).toBe("WinDivertOpen failed: access denied: run oisp redirect as Administrator (error 5)");
    }, 60_000);
  });
}
