// `bun run build`: single-file binaries with everything embedded (spec bundle, migrations, web assets),
// then the Windows packages. All cross-compiled on Linux with Bun runtimes from the npm registry.
//
//   dist/oisp                    linux-x64
//   dist/oisp.exe                windows-x64 (icon + version information patched into the runtime)
//   dist/oisp-darwin-arm64       macOS Apple silicon (explicit proxy mode)
//   dist/oisp-darwin-x64         macOS Intel (explicit proxy mode)
//   dist/oisp-<v>-x86_64-pc-windows-msvc.zip   portable: oisp.exe, README, licences, notices
//   dist/oisp-sensor-setup.exe   NSIS installer (needs makensis: apt-get install nsis)
//   dist/winget/manifests/o/OISP/Sensor/<v>/   winget multi-file manifest with the installer's SHA256
//   dist/THIRD-PARTY-NOTICES.txt, dist/SHA256SUMS
//
// Flags:
//   --target T        linux | windows | darwin-arm64 | darwin-x64 | darwin | all (repeatable, or a,b).
//                     Without --target: all binaries and the packages.
//   --package         with --target: also build the ZIP, installer, winget manifest and SHA256SUMS
//   --no-compile      packages only, from the binaries already in dist/ (tests reuse one build)
//   --windivert DIR   ship WinDivert.dll + WinDivert64.sys from DIR (or DIR/x64) next to oisp.exe in
//                     dist/, the ZIP and the installer; without it they carry WINDIVERT.txt instead
//   --out DIR         write there instead of dist/ (the reproducibility test builds twice and compares)
//   --release-url URL where the release's files are downloadable (the winget InstallerUrl base)
//   --image           the container image dist/oisp-<v>-linux-x64.oci.tar (packaging/oci-image.ts) from
//                     the linux binary; alone, builds only that binary and the image
//
// Packaging also copies the Linux service files beside the binary (install.sh, the systemd units, the
// sysusers entry, the default oisp.toml), so SHA256SUMS covers everything deploy/install.sh fetches.
// SOURCE_DATE_EPOCH (default: the commit's time) fixes every timestamp the packages carry;
// OISP_BUILD_COMMIT names the commit where there is no .git (default: git rev-parse).
import { $ } from "bun";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { compileBpf } from "./ffi/bpf/compile.ts";
import pkg from "./package.json" with { type: "json" };
import { BUN_NOTICE, bundledPackageDirs, LIBBPF_NOTICE, noticesText, readPackage, WINDIVERT_NOTICE } from "./packaging/notices.ts";
import { buildInstaller, makensisPath } from "./packaging/nsis.ts";
import { writeSha256Sums } from "./packaging/sums.ts";
import { writeWingetManifests } from "./packaging/winget.ts";
import { OISP_IDENTITY, patchWindowsRuntime } from "./packaging/windows-resources.ts";
import { writeZip, type ZipEntry } from "./packaging/zip.ts";
import { buildImage } from "./packaging/oci-image.ts";

const root = import.meta.dir;
let dist = path.join(root, "dist");
const cacheDir = path.join(root, "node_modules", ".cache", "oisp-bun-runtimes");
const bunVersion = Bun.version;
const icon = path.join(root, "packaging", "oisp.ico");

export const targets = {
  linux: { bunTarget: "bun-linux-x64", npmPackage: "@oven/bun-linux-x64", exeInPackage: "bin/bun", out: "oisp" },
  windows: { bunTarget: "bun-windows-x64", npmPackage: "@oven/bun-windows-x64", exeInPackage: "bin/bun.exe", out: "oisp.exe" },
  "darwin-arm64": { bunTarget: "bun-darwin-arm64", npmPackage: "@oven/bun-darwin-aarch64", exeInPackage: "bin/bun", out: "oisp-darwin-arm64" },
  "darwin-x64": { bunTarget: "bun-darwin-x64", npmPackage: "@oven/bun-darwin-x64", exeInPackage: "bin/bun", out: "oisp-darwin-x64" },
} as const;
export type TargetName = keyof typeof targets;
const ALL = Object.keys(targets) as TargetName[];

export const zipName = (version: string) => `oisp-${version}-x86_64-pc-windows-msvc.zip`;
export const SETUP_NAME = "oisp-sensor-setup.exe";
const DEFAULT_RELEASE_URL = `https://github.com/oisp/oisp-sensor/releases/download/v${pkg.version}`;

interface Options {
  targets: TargetName[];
  package: boolean;
  compile: boolean;
  windivert?: string;
  releaseUrl: string;
  out?: string;
  image: boolean;
}

function parseOptions(argv: string[]): Options {
  const picked: TargetName[] = [];
  const o: Options = { targets: [], package: false, compile: true, releaseUrl: DEFAULT_RELEASE_URL, image: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (!v) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--target") {
      for (const name of value().split(",")) {
        if (name === "all") picked.push(...ALL);
        else if (name === "darwin") picked.push("darwin-arm64", "darwin-x64");
        else if (name in targets) picked.push(name as TargetName);
        else throw new Error(`--target: expected ${[...ALL, "darwin", "all"].join(", ")}; got "${name}"`);
      }
    } else if (a === "--package") o.package = true;
    else if (a === "--no-compile") o.compile = false;
    else if (a === "--windivert") o.windivert = path.resolve(value());
    else if (a === "--out") o.out = path.resolve(value());
    else if (a === "--release-url") o.releaseUrl = value().replace(/\/+$/, "");
    else if (a === "--image") o.image = true;
    else throw new Error(`build.ts: unknown flag ${a}`);
  }
  if (o.image && !picked.length) {
    // `--image` alone: the linux binary (unless --no-compile) and the image, no other packages.
    o.targets = o.compile ? ["linux"] : [];
    return o;
  }
  o.targets = picked.length ? [...new Set(picked)] : o.compile ? ALL : [];
  if (!picked.length || !o.compile) o.package = true;
  return o;
}

/** The Bun runtime a target binary is built on, taken from the npm registry (the only registry reachable here). */
async function runtimeFor(target: TargetName): Promise<string> {
  const t = targets[target];
  const dir = path.join(cacheDir, `${t.npmPackage.replace("/", "+")}@${bunVersion}`);
  const exe = path.join(dir, "package", t.exeInPackage);
  if (fs.existsSync(exe)) return exe;
  fs.mkdirSync(dir, { recursive: true });
  const packed = (await $`npm pack ${t.npmPackage}@${bunVersion} --silent --pack-destination ${dir}`.text()).trim().split("\n").pop()!;
  await $`tar -xzf ${path.join(dir, packed)} -C ${dir}`;
  fs.rmSync(path.join(dir, packed));
  if (!fs.existsSync(exe)) throw new Error(`${t.npmPackage}@${bunVersion} has no ${t.exeInPackage}`);
  return exe;
}

/** The Windows runtime with our icon and version resource, cached by the hash of what goes into it. */
async function patchedWindowsRuntime(): Promise<string> {
  const base = await runtimeFor("windows");
  const key = createHash("sha256")
    .update(fs.readFileSync(base))
    .update(fs.readFileSync(icon))
    .update(JSON.stringify(OISP_IDENTITY(pkg.version)))
    .update(fs.readFileSync(path.join(root, "packaging", "windows-resources.ts")))
    .digest("hex")
    .slice(0, 16);
  const out = path.join(cacheDir, `oisp-patched-windows-x64-${key}`, "bun.exe");
  if (!fs.existsSync(out)) {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    patchWindowsRuntime(base, `${out}.tmp`, icon, OISP_IDENTITY(pkg.version));
    fs.renameSync(`${out}.tmp`, out);
  }
  return out;
}

async function gitCommit(): Promise<string> {
  // OISP_BUILD_COMMIT: for builds outside a git checkout (a source tarball, the reproducibility test).
  if (process.env.OISP_BUILD_COMMIT) return process.env.OISP_BUILD_COMMIT;
  const r = await $`git rev-parse --short=12 HEAD`.cwd(root).quiet().nothrow();
  return r.exitCode === 0 ? r.text().trim() : "unknown";
}

async function sourceDateEpoch(): Promise<number> {
  const env = Number(process.env.SOURCE_DATE_EPOCH);
  if (Number.isInteger(env) && env > 0) return env;
  const r = await $`git log -1 --format=%ct`.cwd(root).quiet().nothrow();
  const t = Number(r.text().trim());
  return r.exitCode === 0 && t > 0 ? t : 315532800; // 1980-01-01, the earliest a ZIP can say
}

async function compile(target: TargetName, commit: string): Promise<string> {
  const t = targets[target];
  const outfile = path.join(dist, t.out);
  const runtime =
    target === "windows" ? await patchedWindowsRuntime() : target === "linux" && process.platform === "linux" ? process.execPath : await runtimeFor(target);
  const entrypoints = [path.join(root, "src/cli.ts"), ...extraEntrypoints(), ...(target === "linux" ? [...bpfObjects(), ...libbpfCopies()] : [])];
  await $`${process.execPath} build --compile --minify-syntax --minify-whitespace --sourcemap=none --target=${t.bunTarget} --compile-executable-path=${runtime} --define OISP_BUILD_COMMIT=${JSON.stringify(commit)} --outfile ${outfile} ${entrypoints}`
    .cwd(root)
    .quiet();
  return outfile;
}

/**
 * The BPF programs (ffi/bpf/*.bpf.c), compiled with clang against this machine's kernel BTF (CO-RE: the
 * objects relocate on other kernels at load) and embedded as files (Bun.embeddedFiles, see ffi/bpf/compile.ts).
 */
function bpfObjects(): string[] {
  const dir = path.join(root, "ffi", "bpf");
  // Not emptied first: builds run side by side (tests build several targets at once), and each object is
  // written to a temporary name and renamed, so a concurrent build never sees a missing or half file.
  const out = path.join(root, "node_modules", ".cache", "oisp-bpf", "build");
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".bpf.c"))
    .sort()
    .map((f) => {
      const obj = path.join(out, f.replace(/\.c$/, ".o"));
      compileBpf(path.join(dir, f), obj);
      return obj;
    });
}

/**
 * libz, libelf and libbpf 1.x from the build machine, embedded for systems without libbpf 1.x (Ubuntu 22.04
 * ships 0.5): ffi/libbpf.ts's prepareLibbpf() extracts and loads them. Built against glibc 2.36 (Debian 12),
 * they need glibc >= 2.33 at run time.
 */
function libbpfCopies(): string[] {
  const out = path.join(root, "node_modules", ".cache", "oisp-bpf", "libs");
  fs.mkdirSync(out, { recursive: true });
  const dirs = ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64"];
  return (["libz.so.1", "libelf.so.1", "libbpf.so.1"] as const).map((soname) => {
    const found = dirs.map((d) => path.join(d, soname)).find((f) => fs.existsSync(f));
    if (!found) throw new Error(`build: ${soname} not found on this machine (apt-get install libbpf-dev) for the Linux binary's eBPF capture`);
    const copy = path.join(out, `oisp-${soname.replace(/\.so\.1$/, "")}.so`);
    const tmp = `${copy}.${process.pid}.tmp`; // renamed into place: a concurrent build may be reading `copy`
    fs.copyFileSync(fs.realpathSync(found), tmp);
    fs.renameSync(tmp, copy);
    return copy;
  });
}

/** Workers must be separate entry points of a compiled binary (Bun's rule for `new Worker` in --compile). */
function extraEntrypoints(): string[] {
  const workers = ["src/capture/windivert/worker.ts", "src/sensor/sensor-worker.ts", "src/capture/process/lookup-worker.ts", "src/capture/ebpf/ring-worker.ts", "src/capture/ebpf/proc-worker.ts"].map((w) => path.join(root, w));
  return workers.filter((w) => fs.existsSync(w));
}

/** WinDivert.dll + WinDivert64.sys from DIR or DIR/x64 (the layout of the official release ZIP). */
function winDivertFiles(dir: string): { dll: string; sys: string } {
  for (const d of [dir, path.join(dir, "x64")]) {
    const dll = path.join(d, "WinDivert.dll");
    const sys = path.join(d, "WinDivert64.sys");
    if (fs.existsSync(dll) && fs.existsSync(sys)) {
      if (fs.readFileSync(dll).subarray(0, 2).toString("latin1") !== "MZ") throw new Error(`--windivert: ${dll} is not a Windows DLL`);
      return { dll, sys };
    }
  }
  throw new Error(`--windivert: ${dir} holds no WinDivert.dll + WinDivert64.sys (nor does ${path.join(dir, "x64")})`);
}

export const WINDIVERT_NOTE = `WinDivert is not included in this package.

Windows capture (oisp redirect --mode windivert, run as Administrator) needs WinDivert 2.2 (x64).
Download the WinDivert 2.2 release from https://reqrypt.org/windivert.html and copy

  x64\\WinDivert.dll
  x64\\WinDivert64.sys

next to oisp.exe (or anywhere, then pass --windivert-dir DIR or set OISP_WINDIVERT_DIR=DIR).

Explicit proxy mode (oisp up, then set HTTPS_PROXY) works without WinDivert.
`;

const crlf = (s: string) => s.replace(/\r?\n/g, "\r\n");

/** The npm packages in the binary: a plain bundle of the same entry points, read from its metafile. */
function bundledPackages(): ReturnType<typeof readPackage>[] {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-meta-"));
  try {
    const meta = path.join(tmp, "meta.json");
    const r = Bun.spawnSync([process.execPath, "build", "--target=bun", `--outdir=${path.join(tmp, "out")}`, `--metafile=${meta}`, path.join(root, "src/cli.ts"), ...extraEntrypoints()], {
      cwd: root,
      stdout: "pipe",
      stderr: "pipe",
    });
    if (r.exitCode !== 0) throw new Error(`bundling for the notices failed:\n${r.stderr}`);
    return bundledPackageDirs(JSON.parse(fs.readFileSync(meta, "utf8")), root).map(readPackage);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

let packagesCache: ReturnType<typeof readPackage>[] | undefined;
function thirdPartyNotices(withWinDivert: boolean): string {
  packagesCache ??= bundledPackages();
  return noticesText(packagesCache, withWinDivert ? [BUN_NOTICE, LIBBPF_NOTICE, WINDIVERT_NOTICE] : [BUN_NOTICE, LIBBPF_NOTICE]);
}

function licenseText(): string {
  const f = path.join(root, "LICENSE");
  if (!fs.existsSync(f)) throw new Error("LICENSE is missing");
  return fs.readFileSync(f, "utf8");
}

/** The files every Windows package carries, by name. */
export function windowsPayload(opts: { windivert?: string }): Map<string, Uint8Array> {
  const exe = path.join(dist, "oisp.exe");
  if (!fs.existsSync(exe)) throw new Error("dist/oisp.exe is missing: build the windows target first");
  const files = new Map<string, Uint8Array>();
  files.set("oisp.exe", fs.readFileSync(exe));
  files.set("README.txt", Buffer.from(crlf(fs.readFileSync(path.join(root, "README.md"), "utf8"))));
  files.set("LICENSE.txt", Buffer.from(crlf(licenseText())));
  const wd = opts.windivert ? winDivertFiles(opts.windivert) : undefined;
  files.set("THIRD-PARTY-NOTICES.txt", Buffer.from(crlf(thirdPartyNotices(!!wd))));
  if (wd) {
    files.set("WinDivert.dll", fs.readFileSync(wd.dll));
    files.set("WinDivert64.sys", fs.readFileSync(wd.sys));
  } else {
    files.set("WINDIVERT.txt", Buffer.from(crlf(WINDIVERT_NOTE)));
  }
  return files;
}

async function packageWindows(opts: Options, epoch: number): Promise<string[]> {
  const produced: string[] = [];
  const payload = windowsPayload(opts);
  fs.writeFileSync(path.join(dist, "THIRD-PARTY-NOTICES.txt"), payload.get("THIRD-PARTY-NOTICES.txt")!);
  produced.push("THIRD-PARTY-NOTICES.txt");
  for (const f of ["WinDivert.dll", "WinDivert64.sys"]) {
    const data = payload.get(f);
    if (data) fs.writeFileSync(path.join(dist, f), data), produced.push(f);
    else fs.rmSync(path.join(dist, f), { force: true }); // stale copies from a build with --windivert
  }

  // Portable ZIP: everything in one folder, so `oisp.exe` finds WinDivert beside it.
  const folder = `oisp-${pkg.version}`;
  const entries: ZipEntry[] = [...payload].map(([name, data]) => ({ name: `${folder}/${name}`, data }));
  writeZip(path.join(dist, zipName(pkg.version)), entries, epoch);
  produced.push(zipName(pkg.version));

  if (!makensisPath()) {
    console.warn(`skipped ${SETUP_NAME} and the winget manifest: makensis not found (apt-get install nsis)`);
    return produced;
  }
  const stage = fs.mkdtempSync(path.join(cacheDir, "nsis-stage-"));
  try {
    for (const [name, data] of payload) fs.writeFileSync(path.join(stage, name), data);
    // The stage path differs per run; makensis records no source paths, so the output does not.
    await buildInstaller({ stage, out: path.join(dist, SETUP_NAME), version: pkg.version, icon, epochSeconds: epoch });
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  produced.push(SETUP_NAME);

  const wingetDir = path.join(dist, "winget");
  fs.rmSync(wingetDir, { recursive: true, force: true });
  const manifests = writeWingetManifests(wingetDir, {
    version: pkg.version,
    installerUrl: `${opts.releaseUrl}/${SETUP_NAME}`,
    installerSha256: createHash("sha256").update(fs.readFileSync(path.join(dist, SETUP_NAME))).digest("hex"),
    releaseDate: new Date(epoch * 1000).toISOString().slice(0, 10),
  });
  produced.push(...manifests.map((m) => path.relative(dist, m).replaceAll(path.sep, "/")));
  return produced;
}

export const imageName = (version: string) => `oisp-${version}-linux-x64.oci.tar`;
/** The Linux service files a release carries beside the binary: name in the release → file in the repo. */
export const LINUX_SERVICE_FILES: Record<string, string> = {
  "install.sh": "deploy/install.sh",
  "oisp.service": "deploy/systemd/oisp.service",
  "oisp-proxy.service": "deploy/systemd/oisp-proxy.service",
  "oisp.sysusers": "deploy/systemd/oisp.sysusers",
  "oisp.toml": "deploy/oisp.toml",
};

function packageLinux(): string[] {
  if (!fs.existsSync(path.join(dist, targets.linux.out))) return [];
  for (const [name, file] of Object.entries(LINUX_SERVICE_FILES)) {
    fs.copyFileSync(path.join(root, file), path.join(dist, name));
    fs.chmodSync(path.join(dist, name), name.endsWith(".sh") ? 0o755 : 0o644);
  }
  return Object.keys(LINUX_SERVICE_FILES);
}

async function buildLinuxImage(commit: string, epoch: number): Promise<string> {
  const binary = path.join(dist, targets.linux.out);
  if (!fs.existsSync(binary)) throw new Error(`--image: ${binary} is missing: build the linux target first`);
  const started = performance.now();
  const r = buildImage({
    binary,
    out: path.join(dist, imageName(pkg.version)),
    version: pkg.version,
    revision: commit,
    epoch,
    source: "https://github.com/oisp/oisp-sensor",
    licence: pkg.license,
    licenceText: licenseText(),
    warn: (m) => console.warn(m),
  });
  const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(
    `built ${path.relative(root, r.file)} (${mib(fs.statSync(r.file).size)} MiB; layers ${r.layers.map((l) => `${l.name} ${mib(l.size)} MiB`).join(", ")}; ${r.libraries.length} libraries; ${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
  return imageName(pkg.version);
}

export async function main(argv: string[]): Promise<void> {
  const opts = parseOptions(argv);
  if (opts.out) dist = opts.out;
  fs.mkdirSync(dist, { recursive: true });
  fs.mkdirSync(cacheDir, { recursive: true });
  const commit = await gitCommit();
  const epoch = await sourceDateEpoch();
  if (opts.compile) {
    for (const target of opts.targets) {
      const started = performance.now();
      const out = await compile(target, commit);
      const size = (fs.statSync(out).size / 1024 / 1024).toFixed(1);
      console.log(`built ${path.relative(root, out)} (${size} MiB, oisp ${pkg.version}, commit ${commit}, ${((performance.now() - started) / 1000).toFixed(1)} s)`);
    }
  }
  const image = opts.image ? await buildLinuxImage(commit, epoch) : undefined;
  if (!opts.package) return;
  // Windows packages when the Windows binary is part of this build (or with --no-compile, from dist/).
  const produced = opts.targets.includes("windows") || !opts.compile ? await packageWindows(opts, epoch) : [];
  produced.push(...packageLinux());
  if (image) produced.push(image);
  for (const t of ALL) if (fs.existsSync(path.join(dist, targets[t].out))) produced.push(targets[t].out);
  writeSha256Sums(dist, produced);
  for (const f of [...produced, "SHA256SUMS"].sort()) {
    console.log(`${f.padEnd(60)} ${(fs.statSync(path.join(dist, f)).size / 1024).toFixed(0).padStart(8)} KiB`);
  }
}

if (import.meta.main) {
  await main(process.argv.slice(2)).catch((e: Error) => {
    console.error(`build.ts: ${e.message}`);
    process.exit(1);
  });
}
