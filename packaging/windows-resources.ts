// Icon and version information for oisp.exe. Bun's --windows-icon/--windows-version flags only work when
// compiling on Windows, so the Windows Bun runtime itself is patched here (resedit, pure JS) and then
// handed to `bun build --compile --compile-executable-path`: the compiled exe keeps the runtime's resources.
import fs from "node:fs";
import * as ResEdit from "resedit";

export interface ExeIdentity {
  version: string; // x.y.z from package.json
  productName: string;
  companyName: string;
  description: string;
  copyright: string;
  originalFilename: string;
}

export const OISP_IDENTITY = (version: string): ExeIdentity => ({
  version,
  productName: "OISP Sensor",
  companyName: "OISP",
  description: "OISP Sensor - see every AI API call made on this machine",
  copyright: "Apache-2.0 licensed; see LICENSE.txt",
  originalFilename: "oisp.exe",
});

const EN_US = 1033;
const UNICODE = 1200;

/** "0.1.0" → [0, 1, 0, 0]; a pre-release suffix is dropped (Windows versions are four numbers). */
export function fourPartVersion(version: string): [number, number, number, number] {
  const nums = version.split(/[-+]/)[0]!.split(".").map((n) => Number.parseInt(n, 10));
  if (nums.length < 1 || nums.length > 4 || nums.some((n) => !Number.isInteger(n) || n < 0 || n > 65535))
    throw new Error(`cannot turn version "${version}" into a Windows file version`);
  while (nums.length < 4) nums.push(0);
  return nums as [number, number, number, number];
}

/** Writes `out`: `runtime` with our icon group and version resource instead of Bun's. */
export function patchWindowsRuntime(runtime: string, out: string, icoPath: string, id: ExeIdentity): void {
  // The runtime is Authenticode-signed by Oven; any change breaks that signature, so it is dropped.
  const exe = ResEdit.NtExecutable.from(fs.readFileSync(runtime), { ignoreCert: true });
  const res = ResEdit.NtExecutableResource.from(exe);

  const icons = ResEdit.Data.IconFile.from(fs.readFileSync(icoPath)).icons.map((i) => i.data);
  const groups = ResEdit.Resource.IconGroupEntry.fromEntries(res.entries);
  const groupId = groups[0]?.id ?? 1; // Bun's is "IDI_MYICON": replacing it keeps the exe's main icon
  ResEdit.Resource.IconGroupEntry.replaceIconsForResource(res.entries, groupId, groups[0]?.lang ?? EN_US, icons);

  // A fresh version resource: Bun's own strings (ProductName "Bun", ...) must not survive.
  res.entries = res.entries.filter((e) => e.type !== 16);
  const vi = ResEdit.Resource.VersionInfo.createEmpty();
  const [a, b, c, d] = fourPartVersion(id.version);
  vi.lang = EN_US;
  vi.setFileVersion(a, b, c, d, EN_US);
  vi.setProductVersion(a, b, c, d, EN_US);
  vi.setStringValues(
    { lang: EN_US, codepage: UNICODE },
    {
      ProductName: id.productName,
      CompanyName: id.companyName,
      FileDescription: id.description,
      FileVersion: `${a}.${b}.${c}.${d}`,
      ProductVersion: id.version,
      InternalName: "oisp",
      OriginalFilename: id.originalFilename,
      LegalCopyright: id.copyright,
    },
  );
  vi.outputToResourceEntries(res.entries);
  res.outputResource(exe);
  fs.writeFileSync(out, Buffer.from(exe.generate()));
}

/** The version strings and icon sizes of an exe (tests read the built oisp.exe with this). */
export function readWindowsResources(exePath: string): { strings: Record<string, string>; fileVersion: string; iconSizes: number[] } {
  const exe = ResEdit.NtExecutable.from(fs.readFileSync(exePath), { ignoreCert: true });
  // A compiled exe has Bun's ".bun" section after .rsrc, which NtExecutableResource.from refuses (it only
  // matters for rewriting); reading needs just the resource section, parsed by the same class.
  const section = exe.getSectionByEntry(2 /* IMAGE_DIRECTORY_ENTRY_RESOURCE */);
  if (!section) throw new Error(`${exePath} has no resource section`);
  const res = new (ResEdit.NtExecutableResource as unknown as new () => ResEdit.NtExecutableResource)();
  (res as unknown as { parse(s: typeof section, ignore: boolean): void }).parse(section, false);
  const vi = ResEdit.Resource.VersionInfo.fromEntries(res.entries)[0];
  if (!vi) throw new Error(`${exePath} has no version resource`);
  const lang = vi.getAllLanguagesForStringValues()[0]!;
  const f = vi.fixedInfo;
  const fileVersion = [f.fileVersionMS >>> 16, f.fileVersionMS & 0xffff, f.fileVersionLS >>> 16, f.fileVersionLS & 0xffff].join(".");
  const group = ResEdit.Resource.IconGroupEntry.fromEntries(res.entries)[0];
  const iconSizes = (group?.icons ?? []).map((i) => i.width || 256).sort((x, y) => x - y);
  return { strings: vi.getStringValues(lang), fileVersion, iconSizes };
}
