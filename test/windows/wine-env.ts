// Shared setup of the Wine tests: finds wine64 and mingw, builds dist/oisp.exe (build.ts) and the small
// test programs with the same Windows Bun runtime, the stand-in WinDivert.dll and the bcryptprimitives.dll
// Wine 8 lacks, and runs Windows programs with bounded time. One build per test process (memoised), one
// WINEPREFIX; `stopWine()` ends its wineserver (and so every program still running in it).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildStub } from "../support/windivert-stub/stub.ts";

export const repoRoot = path.resolve(import.meta.dir, "../..");
export const WINE = ["/usr/lib/wine/wine64", Bun.which("wine64"), Bun.which("wine")].find((p): p is string => !!p && fs.existsSync(p));
const WINESERVER = ["/usr/lib/wine/wineserver", Bun.which("wineserver")].find((p): p is string => !!p && fs.existsSync(p));
const MINGW = Bun.which("x86_64-w64-mingw32-gcc");
/** What is missing to run the Wine tests; they then fail saying so, unless OISP_SKIP_WINE=1 skips them. */
export const wineMissing = !WINE
  ? "wine64 (apt-get install wine64)"
  : !MINGW
    ? "x86_64-w64-mingw32-gcc (apt-get install gcc-mingw-w64-x86-64)"
    : undefined;
export const skipWine = !!wineMissing && process.env.OISP_SKIP_WINE === "1";
export const PREFIX = path.join(os.tmpdir(), "oisp-wineprefix");

/** A Linux path as Wine's Z: drive sees it. */
export const winPath = (p: string) => `Z:${p.replaceAll("/", "\\")}`;

export interface WineBuild {
  /** Fresh temp dir holding oisp.exe, bcryptprimitives.dll and the test programs. */
  dir: string;
  oisp: string;
  /** A directory with the stand-in WinDivert.dll and a dummy WinDivert64.sys (what --windivert-dir wants). */
  windivertDir: string;
  /** Compiles a test program (TypeScript entry points, first one is main) into <dir>/<name>.exe. */
  compile(name: string, entries: string[]): string;
}

let built: Promise<WineBuild> | undefined;

export function wineBuild(): Promise<WineBuild> {
  built ??= doBuild();
  return built;
}

async function doBuild(): Promise<WineBuild> {
  if (wineMissing) throw new Error(`the Windows tests need ${wineMissing} (or set OISP_SKIP_WINE=1 to skip them)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-wine-"));
  const build = Bun.spawn([process.execPath, "build.ts", "--target", "windows"], { cwd: repoRoot, stdout: "pipe", stderr: "pipe" });
  const [bo, be, bc] = await Promise.all([new Response(build.stdout).text(), new Response(build.stderr).text(), build.exited]);
  if (bc !== 0) throw new Error(`build.ts --target windows failed:\n${bo}\n${be}`);
  const oisp = path.join(dir, "oisp.exe");
  fs.copyFileSync(path.join(repoRoot, "dist", "oisp.exe"), oisp);
  const cc = (out: string, src: string, libs: string[] = []) => {
    const r = Bun.spawnSync([MINGW!, "-shared", "-static-libgcc", "-O2", "-o", out, src, ...libs], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`mingw build of ${src} failed:\n${r.stderr}`);
  };
  // Wine 8 lacks ProcessPrng, which Bun's Windows runtime imports.
  cc(path.join(dir, "bcryptprimitives.dll"), path.join(repoRoot, "test/support/wine/bcryptprimitives.c"), ["-ladvapi32"]);
  fs.copyFileSync(buildStub("dll"), path.join(dir, "WinDivert.dll"));
  const windivertDir = path.join(dir, "windivert");
  fs.mkdirSync(windivertDir);
  fs.copyFileSync(buildStub("dll"), path.join(windivertDir, "WinDivert.dll"));
  // The redirector requires the driver file beside the DLL on Windows; the stand-in needs no driver.
  fs.writeFileSync(path.join(windivertDir, "WinDivert64.sys"), "not a driver: the stand-in WinDivert.dll loads none\n");
  const cacheDir = path.join(repoRoot, "node_modules/.cache/oisp-bun-runtimes");
  const runtime = fs
    .readdirSync(cacheDir)
    .filter((d) => d.includes("windows") && d.endsWith(`@${Bun.version}`))
    .map((d) => path.join(cacheDir, d, "package/bin/bun.exe"))
    .find((p) => fs.existsSync(p));
  if (!runtime) throw new Error("no Windows Bun runtime in build.ts's cache");
  return {
    dir,
    oisp,
    windivertDir,
    compile(name, entries) {
      const out = path.join(dir, `${name}.exe`);
      const r = Bun.spawnSync(
        [process.execPath, "build", "--compile", "--target=bun-windows-x64", `--compile-executable-path=${runtime}`, "--outfile", out, ...entries],
        { cwd: repoRoot, stdout: "pipe", stderr: "pipe" },
      );
      if (r.exitCode !== 0) throw new Error(`compiling ${name}.exe failed:\n${r.stderr}`);
      return out;
    },
  };
}

const wineEnv = (env: Record<string, string>) => ({ ...process.env, WINEDEBUG: "-all", WINEPREFIX: PREFIX, ...env });

/** Runs a Windows program to completion (killed after timeoutMs). */
export async function wineRun(exe: string, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000) {
  const p = Bun.spawn([WINE!, exe, ...args], { cwd: path.dirname(exe), env: wineEnv(env), stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { out, err, code };
}

/** A long-running Windows program: its output so far, a wait for a line, Ctrl+C, exit. */
export interface WineProcess {
  output(): string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGINT to the process: Wine delivers it as Ctrl+C (Bun's process.on("SIGINT")). */
  interrupt(): void;
  exited: Promise<number>;
  kill(): void;
}

export function wineStart(exe: string, args: string[], env: Record<string, string> = {}, timeoutMs = 90_000): WineProcess {
  const p = Bun.spawn([WINE!, exe, ...args], { cwd: path.dirname(exe), env: wineEnv(env), stdout: "pipe", stderr: "pipe" });
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) text += dec.decode(chunk, { stream: true });
  };
  void pump(p.stdout);
  void pump(p.stderr);
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const exited = p.exited.then((c) => (clearTimeout(timer), c));
  return {
    output: () => text,
    async waitFor(re, ms = 30_000) {
      const end = Date.now() + ms;
      for (;;) {
        const m = text.match(re);
        if (m) return m;
        if (p.exitCode !== null || Date.now() > end) {
          throw new Error(`${path.basename(exe)} ${args[0] ?? ""}: ${p.exitCode !== null ? `exited ${p.exitCode}` : `no ${re} within ${ms} ms`}; output:\n${text}`);
        }
        await Bun.sleep(50);
      }
    },
    interrupt: () => p.kill("SIGINT"),
    exited,
    kill: () => p.kill("SIGKILL"),
  };
}

/** Ends the test prefix's wineserver and every Windows process in it. */
export function stopWine(): void {
  if (!WINESERVER) return;
  Bun.spawnSync([WINESERVER, "-k"], { env: wineEnv({}), stdout: "ignore", stderr: "ignore", timeout: 10_000 });
}

export async function waitUntil<T>(what: string, fn: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}
