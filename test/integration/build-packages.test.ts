// The Windows packages as build.ts makes them: the exe's icon and version resources, the portable ZIP's
// contents and determinism, SHA256SUMS against the files, the winget manifests against Microsoft's
// 1.10.0 JSON schemas, --windivert, and a second build compared hash for hash.
import { beforeAll, describe, expect, test } from "bun:test";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { unzipSync } from "fflate";
import pkg from "../../package.json" with { type: "json" };
import { windowsPayload, zipName, SETUP_NAME } from "../../build.ts";
import { buildOnce, repoRoot, WINDOWS_PACKAGES } from "../../packaging/build-once.ts";
import { parseSha256Sums, sha256File } from "../../packaging/sums.ts";
import { readWindowsResources } from "../../packaging/windows-resources.ts";

const dist = path.join(repoRoot, "dist");
const version = pkg.version;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const schemasDir = [path.join(repoRoot, "../shared/winget-schemas"), "/work/shared/winget-schemas"].find((d) => fs.existsSync(d));
const wingetDir = path.join(dist, "winget/manifests/o/OISP/Sensor", version);

/** Central-directory entries of a ZIP: name, DOS date/time, extra-field length (read from the bytes). */
function centralDirectory(zip: Buffer): { name: string; dosTime: number; dosDate: number; extra: number }[] {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = zip.readUInt16LE(eocd + 10);
  let off = zip.readUInt32LE(eocd + 16);
  const out = [];
  for (let i = 0; i < count; i++) {
    const nameLen = zip.readUInt16LE(off + 28);
    const extra = zip.readUInt16LE(off + 30);
    const comment = zip.readUInt16LE(off + 32);
    out.push({ name: zip.toString("utf8", off + 46, off + 46 + nameLen), dosTime: zip.readUInt16LE(off + 12), dosDate: zip.readUInt16LE(off + 14), extra });
    off += 46 + nameLen + extra + comment;
  }
  return out;
}

describe("Windows packages", () => {
  let epoch = 0;
  beforeAll(async () => {
    epoch = Number(Bun.spawnSync(["git", "log", "-1", "--format=%ct"], { cwd: repoRoot }).stdout.toString().trim());
    await buildOnce(WINDOWS_PACKAGES);
  }, 400_000);

  test("oisp.exe carries OISP's icon and version information, not Bun's", () => {
    const r = readWindowsResources(path.join(dist, "oisp.exe"));
    expect(r.strings).toMatchObject({ ProductName: "OISP Sensor", CompanyName: "OISP", ProductVersion: version, OriginalFilename: "oisp.exe" });
    expect(r.fileVersion).toBe(`${version.split("-")[0]}.0`);
    expect(r.iconSizes).toEqual([16, 32, 48, 256]);
    expect(JSON.stringify(r.strings)).not.toContain("Bun");
  });

  test("portable ZIP: one folder with the exe, README, licences, notices and the WinDivert note; sorted, fixed mtimes", () => {
    const zip = fs.readFileSync(path.join(dist, zipName(version)));
    const files = unzipSync(zip);
    const folder = `oisp-${version}/`;
    expect(Object.keys(files).sort()).toEqual(
      ["LICENSE.txt", "README.txt", "THIRD-PARTY-NOTICES.txt", "WINDIVERT.txt", "oisp.exe"].map((n) => folder + n).sort(),
    );
    expect(sha256(files[`${folder}oisp.exe`]!)).toBe(sha256File(path.join(dist, "oisp.exe")));
    expect(new TextDecoder().decode(files[`${folder}LICENSE.txt`]!)).toContain("Apache License");
    expect(new TextDecoder().decode(files[`${folder}WINDIVERT.txt`]!)).toContain("WinDivert64.sys");
    const notices = new TextDecoder().decode(files[`${folder}THIRD-PARTY-NOTICES.txt`]!);
    // What the bundle really contains, each with its licence, and the runtime underneath.
    for (const bundled of ["hono ", "zod ", "drizzle-orm ", "node-forge ", "htmx.org "]) expect(notices).toContain(`\n  ${bundled}`);
    expect(notices).toContain("Bun runtime (MIT)");
    expect(notices).not.toContain("\n  typescript "); // a devDependency is not in the binary
    // Deterministic layout: entries in name order, every timestamp the build's SOURCE_DATE_EPOCH, no extras.
    const cd = centralDirectory(zip);
    expect(cd.map((e) => e.name)).toEqual(cd.map((e) => e.name).sort());
    const d = new Date(Math.floor(epoch / 2) * 2 * 1000);
    const dosDate = ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
    const dosTime = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1);
    for (const e of cd) expect(e).toEqual({ name: e.name, dosTime, dosDate, extra: 0 });
  });

  test("SHA256SUMS names every artifact and every hash matches its file", () => {
    const sums = parseSha256Sums(fs.readFileSync(path.join(dist, "SHA256SUMS"), "utf8"));
    for (const name of ["oisp.exe", zipName(version), SETUP_NAME, "THIRD-PARTY-NOTICES.txt", `winget/manifests/o/OISP/Sensor/${version}/OISP.Sensor.installer.yaml`])
      expect(sums.has(name)).toBe(true);
    for (const [name, hex] of sums) expect(`${name} ${sha256File(path.join(dist, name))}`).toBe(`${name} ${hex}`);
    // sha256sum itself agrees (the format users check with).
    const check = Bun.spawnSync(["sha256sum", "--check", "--strict", "SHA256SUMS"], { cwd: dist, stdout: "pipe", stderr: "pipe" });
    expect(check.stderr.toString()).toBe("");
    expect(check.exitCode).toBe(0);
  });

  test("winget manifests validate against the 1.10.0 schemas and name the installer's SHA256", () => {
    if (!schemasDir) throw new Error("winget schemas not found in ../shared/winget-schemas");
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    ajv.addFormat("long", { type: "number", validate: (n: number) => Number.isSafeInteger(n) }); // winget's int64 return codes
    const docs = {
      version: "OISP.Sensor.yaml",
      installer: "OISP.Sensor.installer.yaml",
      defaultLocale: "OISP.Sensor.locale.en-US.yaml",
    } as const;
    const parsed: Record<string, Record<string, unknown>> = {};
    const validators: Record<string, ReturnType<typeof ajv.compile>> = {};
    for (const [kind, file] of Object.entries(docs)) {
      const schema = JSON.parse(fs.readFileSync(path.join(schemasDir, `manifest.${kind}.1.10.0.json`), "utf8"));
      const doc = Bun.YAML.parse(fs.readFileSync(path.join(wingetDir, file), "utf8")) as Record<string, unknown>;
      const validate = (validators[kind] = ajv.compile(schema));
      const ok = validate(doc);
      expect(ok ? [] : validate.errors!.map((e) => `${file} ${e.instancePath} ${e.message}`)).toEqual([]);
      expect(doc).toMatchObject({ PackageIdentifier: "OISP.Sensor", PackageVersion: version, ManifestType: kind, ManifestVersion: "1.10.0" });
      parsed[kind] = doc;
    }
    const installer = (parsed.installer!.Installers as Record<string, string>[])[0]!;
    expect(installer.InstallerSha256).toBe(sha256File(path.join(dist, SETUP_NAME)).toUpperCase());
    expect(installer.InstallerUrl).toEndWith(`/${SETUP_NAME}`);
    expect(parsed.installer).toMatchObject({ InstallerType: "nullsoft", Scope: "machine", ProductCode: "OISP Sensor" });
    // A manifest that breaks the schema is refused (the validation above can fail).
    const broken = { ...parsed.installer, Installers: [{ ...installer, InstallerSha256: "not-a-hash" }] };
    expect(validators.installer!(broken)).toBe(false);
  });

  test("--windivert DIR ships WinDivert.dll + WinDivert64.sys (from DIR or DIR/x64) with their licence; a DIR without them is refused", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-wd-"));
    fs.mkdirSync(path.join(dir, "x64"));
    const dll = Buffer.concat([Buffer.from("MZ"), Buffer.alloc(64, 1)]);
    fs.writeFileSync(path.join(dir, "x64", "WinDivert.dll"), dll);
    fs.writeFileSync(path.join(dir, "x64", "WinDivert64.sys"), Buffer.from("driver"));
    const files = windowsPayload({ windivert: dir });
    expect([...files.keys()].sort()).toEqual(["LICENSE.txt", "README.txt", "THIRD-PARTY-NOTICES.txt", "WinDivert.dll", "WinDivert64.sys", "oisp.exe"]);
    expect(Buffer.from(files.get("WinDivert.dll")!).equals(dll)).toBe(true);
    expect(new TextDecoder().decode(files.get("THIRD-PARTY-NOTICES.txt")!)).toContain("WinDivert 2.2 (LGPL-3.0-or-later");
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-wd-empty-"));
    expect(() => windowsPayload({ windivert: empty })).toThrow(/holds no WinDivert\.dll \+ WinDivert64\.sys/);
  });

  test("two builds of one commit give the same bytes for every artifact", async () => {
    // Both from one frozen copy of HEAD (git archive), so edits or commits made meanwhile in this
    // checkout cannot change the inputs between the two builds.
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-repro-"));
    const src = path.join(work, "src");
    fs.mkdirSync(src);
    const archive = Bun.spawnSync(["sh", "-c", `git archive HEAD | tar -x -C '${src}'`], { cwd: repoRoot, stderr: "pipe" });
    if (archive.exitCode !== 0) throw new Error(`git archive failed: ${archive.stderr}`);
    fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(src, "node_modules"));
    const commit = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: repoRoot }).stdout.toString().trim();
    const env = { ...process.env, OISP_BUILD_COMMIT: commit, SOURCE_DATE_EPOCH: String(epoch) };
    const sums: Map<string, string>[] = [];
    for (const out of ["a", "b"]) {
      const p = Bun.spawn([process.execPath, "build.ts", ...WINDOWS_PACKAGES, "--out", path.join(work, out)], { cwd: src, env, stdout: "pipe", stderr: "pipe" });
      const [o, e, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      if (code !== 0) throw new Error(`build ${out} failed (${code}):\n${o}\n${e}`);
      sums.push(parseSha256Sums(fs.readFileSync(path.join(work, out, "SHA256SUMS"), "utf8")));
    }
    const [a, b] = sums as [Map<string, string>, Map<string, string>];
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    expect([...a.keys()]).toContain(SETUP_NAME);
    expect([...b].filter(([name, hex]) => a.get(name) !== hex).map(([name]) => name)).toEqual([]);
    fs.rmSync(work, { recursive: true, force: true });
  }, 600_000);
});

describe("macOS binaries", () => {
  beforeAll(async () => {
    await buildOnce(["--target", "darwin"]);
  }, 300_000);

  /** Mach-O header: CPU type and the load commands (LC_CODE_SIGNATURE = 0x1d: macOS on arm64 runs only signed code). */
  function machO(file: string): { cpu: number; commands: number[] } {
    const d = fs.readFileSync(file).subarray(0, 1 << 20);
    expect(d.readUInt32LE(0)).toBe(0xfeedfacf); // 64-bit Mach-O
    const commands: number[] = [];
    let off = 32;
    for (let i = 0; i < d.readUInt32LE(16); i++) {
      commands.push(d.readUInt32LE(off));
      off += d.readUInt32LE(off + 4);
    }
    return { cpu: d.readUInt32LE(4), commands };
  }

  test("arm64 and x64 executables, each carrying a code signature and the version string", () => {
    const arm = machO(path.join(dist, "oisp-darwin-arm64"));
    const x64 = machO(path.join(dist, "oisp-darwin-x64"));
    expect(arm.cpu).toBe(0x0100000c); // CPU_TYPE_ARM64
    expect(x64.cpu).toBe(0x01000007); // CPU_TYPE_X86_64
    expect(arm.commands).toContain(0x1d);
    expect(x64.commands).toContain(0x1d);
    for (const f of ["oisp-darwin-arm64", "oisp-darwin-x64"]) {
      expect(fs.statSync(path.join(dist, f)).mode & 0o111).not.toBe(0);
      expect(fs.readFileSync(path.join(dist, f)).includes(Buffer.from("spec bundle"))).toBe(true);
    }
  });
});
