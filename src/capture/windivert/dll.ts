// Finding WinDivert.dll (and the WinDivert64.sys driver it installs, which must sit beside it). dlopen
// cannot load a DLL embedded in the executable on Windows, so an embedded copy is first extracted to the
// data directory. Missing files → an error that names every place looked at.
import fs from "node:fs";
import path from "node:path";

export const DLL_NAME = "WinDivert.dll";
export const SYS_NAME = "WinDivert64.sys";

export interface DllSearch {
  /** --windivert-dir or OISP_WINDIVERT_DIR: checked first. */
  explicitDir?: string;
  /** Directory of the running executable (next to oisp.exe). */
  exeDir: string;
  /** The OISP data directory (%LOCALAPPDATA%\OISP). */
  dataDir: string;
  /** Paths of copies embedded at build time (Bun `with { type: "file" }`), extracted to dataDir. */
  embedded?: { dll: string; sys: string };
  /** Require the .sys beside the DLL (true on Windows; the Linux stand-in has no driver). */
  requireDriver: boolean;
}

export class WinDivertMissingError extends Error {
  constructor(readonly lookedIn: string[]) {
    super(
      `${DLL_NAME} and ${SYS_NAME} (WinDivert 2.2) were not found. Looked in:\n` +
        lookedIn.map((d) => `  ${d}`).join("\n") +
        `\nPut both files next to oisp.exe (from the WinDivert 2.2 x64 release) or pass --windivert-dir DIR.`,
    );
    this.name = "WinDivertMissingError";
  }
}

function usable(dir: string, requireDriver: boolean): boolean {
  return fs.existsSync(path.join(dir, DLL_NAME)) && (!requireDriver || fs.existsSync(path.join(dir, SYS_NAME)));
}

/** Path of the WinDivert.dll to load. Throws WinDivertMissingError when none is usable. */
export function findWinDivertDll(s: DllSearch): string {
  const looked: string[] = [];
  for (const dir of [s.explicitDir, s.exeDir, s.dataDir]) {
    if (!dir) continue;
    looked.push(dir);
    if (usable(dir, s.requireDriver)) return path.join(dir, DLL_NAME);
  }
  if (s.embedded) {
    looked.push(`${s.dataDir} (extracted from the executable)`);
    try {
      fs.mkdirSync(s.dataDir, { recursive: true });
      for (const [from, name] of [[s.embedded.dll, DLL_NAME], [s.embedded.sys, SYS_NAME]] as const) {
        const to = path.join(s.dataDir, name);
        const data = fs.readFileSync(from);
        if (!fs.existsSync(to) || !fs.readFileSync(to).equals(data)) fs.writeFileSync(to, data);
      }
      if (usable(s.dataDir, s.requireDriver)) return path.join(s.dataDir, DLL_NAME);
    } catch {
      // fall through to the error naming the places looked at
    }
  }
  throw new WinDivertMissingError(looked);
}
