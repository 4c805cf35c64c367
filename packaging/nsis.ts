// Builds oisp-sensor-setup.exe with makensis (Debian package "nsis") from packaging/installer.nsi.
// The staged files get a fixed mtime and makensis gets SOURCE_DATE_EPOCH, so the installer's bytes
// depend only on its inputs.
import fs from "node:fs";
import path from "node:path";
import { fourPartVersion } from "./windows-resources.ts";

export interface InstallerInput {
  /** Directory holding oisp.exe, README.txt, LICENSE.txt, THIRD-PARTY-NOTICES.txt and either
   *  WinDivert.dll + WinDivert64.sys or WINDIVERT.txt. */
  stage: string;
  out: string;
  version: string;
  icon: string;
  epochSeconds: number;
}

export function makensisPath(): string | undefined {
  return Bun.which("makensis") ?? undefined;
}

export async function buildInstaller(i: InstallerInput): Promise<void> {
  const makensis = makensisPath();
  if (!makensis) throw new Error("makensis not found: apt-get install nsis (the installer is built with Debian's NSIS)");
  const when = new Date(i.epochSeconds * 1000);
  for (const f of fs.readdirSync(i.stage)) fs.utimesSync(path.join(i.stage, f), when, when);
  const withWinDivert = fs.existsSync(path.join(i.stage, "WinDivert.dll"));
  const defines = {
    VERSION: i.version,
    VERSION4: fourPartVersion(i.version).join("."),
    STAGE: i.stage,
    OUTFILE: i.out,
    ICON: i.icon,
    ...(withWinDivert ? { WITH_WINDIVERT: "1" } : {}),
  };
  const args = [makensis, "-V2", "-NOCD", ...Object.entries(defines).map(([k, v]) => `-D${k}=${v}`), path.join(import.meta.dir, "installer.nsi")];
  const p = Bun.spawn(args, {
    cwd: i.stage,
    env: { ...process.env, SOURCE_DATE_EPOCH: String(i.epochSeconds), LC_ALL: "C.UTF-8" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`makensis failed (${code}):\n${out}\n${err}`);
}
