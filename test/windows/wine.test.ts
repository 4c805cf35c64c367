// The Windows executables under Wine (Debian's wine64; CI installs it): the cross-compiled oisp.exe runs
// (--version, ca init), and a small exe compiled the same way runs the real WinDivert bun:ffi bindings
// and packet workers against the stand-in WinDivert.dll built with mingw — Win64 calling convention,
// kernel32!GetLastError, WinDivertShutdown from the main thread, the compiled worker entry point.
// Not the real driver: nothing here has touched a Windows kernel.
import { beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildStub } from "../support/windivert-stub/stub.ts";

const repoRoot = path.resolve(import.meta.dir, "../..");
const WINE = ["/usr/lib/wine/wine64", Bun.which("wine64"), Bun.which("wine")].find((p) => p && fs.existsSync(p));
const MINGW = Bun.which("x86_64-w64-mingw32-gcc");
const inCi = !!process.env.CI;
const missing = !WINE ? "wine64 (apt-get install wine64)" : !MINGW ? "x86_64-w64-mingw32-gcc (apt-get install gcc-mingw-w64-x86-64)" : undefined;

if (missing && !inCi) {
  test.skip(`Windows exe under Wine: SKIPPED, ${missing} is not installed`, () => {});
} else {
  describe("Windows executables under Wine", () => {
    let dir = "";
    const prefix = path.join(os.tmpdir(), "oisp-wineprefix");
    const winPath = (p: string) => `Z:${p.replaceAll("/", "\\")}`;

    async function wine(exe: string, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000) {
      const p = Bun.spawn([WINE!, exe, ...args], {
        cwd: path.dirname(exe),
        env: { ...process.env, WINEDEBUG: "-all", WINEPREFIX: prefix, ...env },
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => p.kill(), timeoutMs);
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      clearTimeout(timer);
      return { out, err, code };
    }

    beforeAll(async () => {
      if (missing) throw new Error(`CI must have ${missing} for the Windows tests`);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-wine-"));
      // oisp.exe, and with it the Windows Bun runtime in build.ts's cache.
      const build = Bun.spawn([process.execPath, "build.ts", "--target", "windows"], { cwd: repoRoot, stdout: "pipe", stderr: "pipe" });
      const [bo, be, bc] = await Promise.all([new Response(build.stdout).text(), new Response(build.stderr).text(), build.exited]);
      if (bc !== 0) throw new Error(`build.ts --target windows failed:\n${bo}\n${be}`);
      fs.copyFileSync(path.join(repoRoot, "dist", "oisp.exe"), path.join(dir, "oisp.exe"));
      const cc = (out: string, src: string, libs: string[] = []) => {
        const r = Bun.spawnSync([MINGW!, "-shared", "-static-libgcc", "-O2", "-o", out, src, ...libs], { stderr: "pipe" });
        if (r.exitCode !== 0) throw new Error(`mingw build of ${src} failed:\n${r.stderr}`);
      };
      // Wine 8 lacks ProcessPrng, which Bun's Windows runtime imports.
      cc(path.join(dir, "bcryptprimitives.dll"), path.join(repoRoot, "test/support/wine/bcryptprimitives.c"), ["-ladvapi32"]);
      fs.copyFileSync(buildStub("dll"), path.join(dir, "WinDivert.dll"));
      const runtime = fs
        .readdirSync(path.join(repoRoot, "node_modules/.cache/oisp-bun-runtimes"))
        .filter((d) => d.includes("windows") && d.endsWith(`@${Bun.version}`))
        .map((d) => path.join(repoRoot, "node_modules/.cache/oisp-bun-runtimes", d, "package/bin/bun.exe"))
        .find((p) => fs.existsSync(p));
      if (!runtime) throw new Error("no Windows Bun runtime in build.ts's cache");
      const smoke = Bun.spawnSync(
        [process.execPath, "build", "--compile", "--target=bun-windows-x64", `--compile-executable-path=${runtime}`,
          "--outfile", path.join(dir, "wd-smoke.exe"), "test/windows/wd-smoke.ts", "src/capture/windivert/worker.ts"],
        { cwd: repoRoot, stdout: "pipe", stderr: "pipe" },
      );
      if (smoke.exitCode !== 0) throw new Error(`compiling wd-smoke.exe failed:\n${smoke.stderr}`);
    }, 300_000);

    test("oisp.exe --version and ca init", async () => {
      const v = await wine(path.join(dir, "oisp.exe"), ["--version"]);
      expect(v.code).toBe(0);
      expect(v.out).toMatch(/^oisp \d+\.\d+\.\d+ \(.*win32-x64\)/);
      const home = path.join(dir, "home");
      fs.mkdirSync(home);
      const ca = await wine(path.join(dir, "oisp.exe"), ["ca", "init"], { OISP_HOME: winPath(home) });
      expect(ca.code).toBe(0);
      expect(fs.readFileSync(path.join(home, "ca", "oisp-ca.pem"), "utf8")).toStartWith("-----BEGIN CERTIFICATE-----");
    }, 90_000);

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

    test("WinDivertOpen failure reaches the user through kernel32!GetLastError as one actionable line", async () => {
      const stubDir = path.join(dir, "stub-denied");
      fs.mkdirSync(stubDir);
      const r = await wine(path.join(dir, "wd-smoke.exe"), ["WinDivert.dll"], { WINDIVERT_STUB_DIR: winPath(stubDir), WINDIVERT_STUB_OPEN_ERROR: "5" });
      const report = JSON.parse(r.out.trim().split("\n").pop()!);
      expect(report.startError).toBe("WinDivertOpen failed: access denied: run oisp redirect as Administrator (error 5)");
    }, 60_000);
  });
}
