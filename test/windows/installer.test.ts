// The NSIS installer and the portable ZIP under Wine (Debian's wine64; CI installs it): a silent install
// with the CA option (`/S /CA`) into a fresh prefix puts oisp.exe in Program Files\OISP with its Start
// Menu entries, Apps & Features key and PATH entry, and trusts the new OISP CA in the user's Root store;
// the installed oisp.exe answers --version; the silent uninstaller takes all of that away again, the CA
// included, but keeps the user's captured data. The ZIP's exe runs where it is unpacked.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { unzipSync } from "fflate";
import pkg from "../../package.json" with { type: "json" };
import { SETUP_NAME, zipName } from "../../build.ts";
import { buildOnce, repoRoot, WINDOWS_PACKAGES } from "../../packaging/build-once.ts";

const WINE = ["/usr/lib/wine/wine64", Bun.which("wine64"), Bun.which("wine")].find((p) => p && fs.existsSync(p));
const WINESERVER = ["/usr/lib/wine/wineserver", Bun.which("wineserver64"), Bun.which("wineserver")].find((p) => p && fs.existsSync(p));
const MINGW = Bun.which("x86_64-w64-mingw32-gcc");
const missing = !WINE ? "wine64 (apt-get install wine64)" : !MINGW ? "x86_64-w64-mingw32-gcc (apt-get install gcc-mingw-w64-x86-64)" : !Bun.which("makensis") ? "makensis (apt-get install nsis)" : undefined;

if (missing && !process.env.CI) {
  test.skip(`installer under Wine: SKIPPED, ${missing} is not installed`, () => {});
} else {
  describe("installer and portable ZIP under Wine", () => {
    const dist = path.join(repoRoot, "dist");
    let work = "";
    let prefix = "";
    let bcrypt = "";
    const installDir = () => path.join(prefix, "drive_c/Program Files/OISP");
    const startMenu = () => path.join(prefix, "drive_c/ProgramData/Microsoft/Windows/Start Menu/Programs/OISP");
    const env = () => ({
      ...process.env,
      WINEDEBUG: "-all",
      WINEPREFIX: prefix,
      // No desktop menu entries on the host, no Mono/Gecko install prompts; our bcryptprimitives.dll
      // (in system32, see beforeAll) before Wine's builtin one.
      WINEDLLOVERRIDES: "winemenubuilder.exe=d;mscoree=d;mshtml=d;bcryptprimitives=n,b",
    });

    /** Runs a Windows program and then waits for every process of the prefix to end (the NSIS
     *  uninstaller re-launches itself from %TEMP% and returns at once). Bounded by timeoutMs. */
    async function wine(args: string[], timeoutMs = 120_000) {
      const p = Bun.spawn([WINE!, ...args], { cwd: work, env: env(), stdout: "pipe", stderr: "pipe" });
      const timer = setTimeout(() => p.kill(), timeoutMs);
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      const settle = Bun.spawn([WINESERVER!, "-w"], { env: env() });
      const settleTimer = setTimeout(() => settle.kill(), timeoutMs);
      await settle.exited;
      clearTimeout(timer);
      clearTimeout(settleTimer);
      return { out, err, code };
    }

    async function regQuery(key: string, value: string): Promise<string | undefined> {
      const r = await wine(["reg", "query", key, "/v", value], 60_000);
      if (r.code !== 0) return undefined;
      return new RegExp(`${value}\\s+REG_\\w+\\s+(.*)`, "i").exec(r.out)?.[1]?.trim();
    }

    beforeAll(async () => {
      if (missing) throw new Error(`CI must have ${missing} for the installer tests`);
      await buildOnce(WINDOWS_PACKAGES);
      work = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-setup-"));
      prefix = path.join(work, "prefix");
      // Wine 8 lacks ProcessPrng, which Bun's Windows runtime imports: a stand-in in the prefix's system32,
      // so every oisp.exe works, also those the installer runs (ca init / install / uninstall).
      bcrypt = path.join(work, "bcryptprimitives.dll");
      const cc = Bun.spawnSync([MINGW!, "-shared", "-static-libgcc", "-O2", "-o", bcrypt, path.join(repoRoot, "test/support/wine/bcryptprimitives.c"), "-ladvapi32"], { stderr: "pipe" });
      if (cc.exitCode !== 0) throw new Error(`mingw build of bcryptprimitives.dll failed:\n${cc.stderr}`);
      const boot = await wine(["wineboot", "--init"], 180_000);
      if (boot.code !== 0) throw new Error(`wineboot failed (${boot.code}):\n${boot.err.slice(-2000)}`);
      fs.copyFileSync(bcrypt, path.join(prefix, "drive_c/windows/system32/bcryptprimitives.dll"));
    }, 600_000);

    afterAll(() => {
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    /** %LOCALAPPDATA%\OISP of the prefix's user (Wine names the profile after $USER, "unknown" without it). */
    const dataDir = () => {
      const users = fs.readdirSync(path.join(prefix, "drive_c/users")).filter((u) => u !== "Public");
      if (users.length !== 1) throw new Error(`expected one user profile in the prefix, found ${users.join(", ")}`);
      return path.join(prefix, "drive_c/users", users[0]!, "AppData/Local/OISP");
    };
    /** SHA-1 of the OISP CA certificate: its key name in the Windows certificate store. */
    const caSha1 = () => {
      const pem = fs.readFileSync(path.join(dataDir(), "oisp-ca.crt"), "utf8");
      const der = Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
      return createHash("sha1").update(der).digest("hex").toUpperCase();
    };
    /** Whether the user's Root store (HKCU\Software\Microsoft\SystemCertificates\Root) holds a certificate. */
    const inUserRoot = async (sha1: string) => {
      const r = await wine(["reg", "query", `HKCU\\Software\\Microsoft\\SystemCertificates\\Root\\Certificates\\${sha1}`], 60_000);
      return r.code === 0;
    };

    test("silent install with /CA: files, Start Menu entries (capture one elevated), Apps & Features key, PATH, CA trusted", async () => {
      const r = await wine([path.join(dist, SETUP_NAME), "/S", "/CA"], 180_000);
      expect(r.code).toBe(0);
      expect(fs.readdirSync(installDir()).sort()).toEqual(["LICENSE.txt", "README.txt", "THIRD-PARTY-NOTICES.txt", "WINDIVERT.txt", "oisp.exe", "uninstall.exe"]);
      // The same exe the portable ZIP carries (both come from one packaging run).
      const zipped = unzipSync(fs.readFileSync(path.join(dist, zipName(pkg.version))))[`oisp-${pkg.version}/oisp.exe`]!;
      expect(fs.readFileSync(path.join(installDir(), "oisp.exe")).equals(Buffer.from(zipped))).toBe(true);
      expect(fs.readdirSync(startMenu()).sort()).toEqual([
        "Install OISP CA.lnk",
        "OISP Sensor and Dashboard.lnk",
        "OISP Start Capture (Administrator).lnk",
        "OISP.lnk",
        "Open OISP Dashboard.url",
        "Uninstall OISP Sensor.lnk",
      ]);
      // "OISP" runs the tray (the shortcut stores its arguments in UTF-16), not elevated.
      const trayLnk = fs.readFileSync(path.join(startMenu(), "OISP.lnk"));
      expect(trayLnk.includes(Buffer.from("tray", "utf16le"))).toBe(true);
      expect(trayLnk[0x15]! & 0x20).toBe(0);
      // SLDF_RUNAS_USER: Windows asks for elevation when the capture shortcut is opened.
      expect(fs.readFileSync(path.join(startMenu(), "OISP Start Capture (Administrator).lnk"))[0x15]! & 0x20).toBe(0x20);
      expect(fs.readFileSync(path.join(startMenu(), "OISP Sensor and Dashboard.lnk"))[0x15]! & 0x20).toBe(0);
      expect(fs.readFileSync(path.join(startMenu(), "Open OISP Dashboard.url"), "utf8")).toContain("URL=http://127.0.0.1:7777/");

      const key = "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\OISP Sensor";
      expect(await regQuery(key, "DisplayVersion")).toBe(pkg.version);
      expect(await regQuery(key, "QuietUninstallString")).toBe('"C:\\Program Files\\OISP\\uninstall.exe" /S');
      const pathValue = await regQuery("HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Environment", "PATH");
      expect(pathValue?.split(";")).toContain("C:\\Program Files\\OISP");
      // The CA section ran the installed exe: a CA in the data directory, trusted in the user's Root store.
      expect(await inUserRoot(caSha1())).toBe(true);
      expect(await inUserRoot("0".repeat(40))).toBe(false);
    }, 300_000);

    test("the installed oisp.exe answers --version", async () => {
      const r = await wine(["C:\\Program Files\\OISP\\oisp.exe", "--version"], 90_000);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`^oisp ${pkg.version.replaceAll(".", "\\.")} \\(commit [0-9a-f]{7,}, spec bundle .* win32-x64\\)`));
    }, 120_000);

    test("silent uninstall removes files, shortcuts, key, PATH entry and our CA, and keeps the captured data", async () => {
      const data = dataDir();
      const sha1 = caSha1();
      fs.writeFileSync(path.join(data, "events.db"), "captured");
      const r = await wine(["C:\\Program Files\\OISP\\uninstall.exe", "/S"], 180_000);
      expect(r.code).toBe(0);
      expect(fs.existsSync(installDir())).toBe(false);
      expect(fs.existsSync(startMenu())).toBe(false);
      expect(await regQuery("HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\OISP Sensor", "DisplayName")).toBeUndefined();
      const pathValue = await regQuery("HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Environment", "PATH");
      expect(pathValue).toBeDefined();
      expect(pathValue!.split(";")).not.toContain("C:\\Program Files\\OISP");
      expect(pathValue!.toLowerCase()).toContain("system32");
      expect(await inUserRoot(sha1)).toBe(false);
      // /S never deletes captured data (interactive mode asks, default No).
      expect(fs.readFileSync(path.join(data, "events.db"), "utf8")).toBe("captured");
      expect(fs.existsSync(path.join(data, "oisp-ca.crt"))).toBe(true);
    }, 300_000);

    test("the portable ZIP's oisp.exe runs where it is unpacked", async () => {
      const files = unzipSync(fs.readFileSync(path.join(dist, zipName(pkg.version))));
      const dir = path.join(work, "portable");
      for (const [name, data] of Object.entries(files)) {
        fs.mkdirSync(path.join(dir, path.dirname(name)), { recursive: true });
        fs.writeFileSync(path.join(dir, name), data);
      }
      const exeDir = path.join(dir, `oisp-${pkg.version}`);
      const r = await wine([path.join(exeDir, "oisp.exe"), "--version"], 90_000);
      expect(r.code).toBe(0);
      expect(r.out).toStartWith(`oisp ${pkg.version} (commit `);
    }, 120_000);
  });
}
