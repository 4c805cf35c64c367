// The container image (`bun build.ts --image`): an OCI image archive that `podman load` / `docker load`
// read, written here without a container engine. Two layers, nothing else (no shell, no package manager):
//
//   runtime  the shared libraries the compiled binary loads (from `ldd`: glibc's loader, libc, libm,
//            libpthread, libdl), the ones eBPF capture dlopens (libbpf, libelf, libz and what they need),
//            their copyright files, the CA roots, /etc/passwd + /etc/group naming root and oisp (65532),
//            /tmp and the data directory /var/lib/oisp owned by oisp
//   oisp     /usr/local/bin/oisp and its licence
//
// The default user is 65532 (oisp) for proxy mode; eBPF mode runs it as root (the README's `docker run`
// line and deploy/kubernetes/). Every timestamp is SOURCE_DATE_EPOCH, owners are numeric, entries sorted,
// gzip without a file name or time: the same binary and libraries give the same archive bytes.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { parentDirs, tarBytes, type TarEntry } from "./tar.ts";

export const OISP_UID = 65532;
export const IMAGE_NAME = "ghcr.io/oisp/oisp-sensor";
/** Where the binary lives in the image; deploy/kubernetes and the tests run this path. */
export const IMAGE_BINARY = "/usr/local/bin/oisp";
export const IMAGE_DATA_DIR = "/var/lib/oisp";
/** Libraries eBPF capture dlopens (not in the binary's DT_NEEDED, so `ldd` does not list them). */
const DLOPENED = ["libbpf.so.1", "libelf.so.1", "libz.so.1"];
const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

export interface ImageOptions {
  binary: string;
  out: string;
  version: string;
  revision: string;
  epoch: number;
  source: string;
  licence: string;
  licenceText: string;
  /** Log a line (libraries missing on the build machine). */
  warn?: (msg: string) => void;
}

export interface ImageResult {
  file: string;
  manifestDigest: string;
  libraries: string[];
  layers: { name: string; size: number }[];
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** "/lib/x86_64-linux-gnu/libc.so.6" for each library `ldd FILE` resolves, plus the ELF interpreter. */
export function lddLibraries(file: string): string[] {
  const r = Bun.spawnSync(["ldd", file], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`ldd ${file} failed: ${r.stderr.toString().trim()}`);
  const libs: string[] = [];
  for (const line of r.stdout.toString().split("\n")) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (m) libs.push(m[1]!);
    else if (/not found/.test(line)) throw new Error(`ldd ${file}: ${line.trim()}`);
  }
  return libs;
}

/** Where the dynamic linker's cache puts a soname, or undefined when this machine lacks it. */
function findLibrary(soname: string): string | undefined {
  const r = Bun.spawnSync(["ldconfig", "-p"], { stdout: "pipe" });
  for (const line of r.stdout.toString().split("\n")) {
    const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)/.exec(line);
    if (m && m[1] === soname && m[2]!.includes("x86-64")) return m[3];
  }
  return undefined;
}

/** The Debian copyright file of the package owning `file`, if dpkg knows it. */
function copyrightOf(file: string): string | undefined {
  const real = fs.realpathSync(file);
  for (const candidate of [file, real, real.replace(/^\/usr/, "")]) {
    const r = Bun.spawnSync(["dpkg", "-S", candidate], { stdout: "pipe", stderr: "ignore" });
    const pkg = r.exitCode === 0 ? r.stdout.toString().split(":")[0]!.trim() : "";
    const copyright = `/usr/share/doc/${pkg}/copyright`;
    if (pkg && fs.existsSync(copyright)) return copyright;
  }
  return undefined;
}

/** The libraries the image carries, by the path the loader will look them up at. */
export function imageLibraries(binary: string, warn: (m: string) => void = () => {}): string[] {
  const libs = new Set(lddLibraries(binary));
  for (const soname of DLOPENED) {
    const found = findLibrary(soname);
    if (!found) {
      warn(`image: ${soname} not found on this machine; the image cannot do eBPF capture (apt-get install libbpf1)`);
      continue;
    }
    libs.add(found);
    for (const dep of lddLibraries(found)) libs.add(dep);
  }
  return [...libs].sort();
}

function runtimeLayer(libraries: string[]): TarEntry[] {
  const files = new Map<string, TarEntry>();
  const add = (name: string, data: Uint8Array, mode = 0o644) => files.set(name, { name, type: "file", data, mode });
  for (const lib of libraries) add(lib.slice(1), fs.readFileSync(fs.realpathSync(lib)), 0o755);
  for (const lib of libraries) {
    const c = copyrightOf(lib);
    if (c) add(c.slice(1), fs.readFileSync(c));
  }
  add(CA_BUNDLE.slice(1), fs.readFileSync(CA_BUNDLE));
  add("etc/passwd", new TextEncoder().encode(`root:x:0:0:root:/root:/sbin/nologin\noisp:x:${OISP_UID}:${OISP_UID}:OISP Sensor:${IMAGE_DATA_DIR}:/sbin/nologin\n`));
  add("etc/group", new TextEncoder().encode(`root:x:0:\noisp:x:${OISP_UID}:\n`));
  const owned: TarEntry[] = [
    { name: "tmp", type: "dir", mode: 0o1777 },
    { name: IMAGE_DATA_DIR.slice(1), type: "dir", mode: 0o755, uid: OISP_UID, gid: OISP_UID },
  ];
  return sortEntries([...parentDirs([...files.keys(), ...owned.map((d) => d.name)]), ...owned, ...files.values()]);
}

function appLayer(binary: string, licenceText: string): TarEntry[] {
  const files: TarEntry[] = [
    { name: IMAGE_BINARY.slice(1), type: "file", data: fs.readFileSync(binary), mode: 0o755 },
    { name: "usr/share/doc/oisp/LICENSE", type: "file", data: new TextEncoder().encode(licenceText), mode: 0o644 },
  ];
  return sortEntries([...parentDirs(files.map((f) => f.name)), ...files]);
}

/** By name (a directory before its contents); of two entries with one name the later wins (explicit over implied). */
function sortEntries(entries: TarEntry[]): TarEntry[] {
  const byName = new Map<string, TarEntry>();
  for (const e of entries) byName.set(e.name, e);
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function buildImage(o: ImageOptions): ImageResult {
  const libraries = imageLibraries(o.binary, o.warn);
  const created = new Date(o.epoch * 1000).toISOString().replace(/\.000Z$/, "Z");
  const blobs = new Map<string, Uint8Array>();
  const blob = (data: Uint8Array) => {
    const digest = sha256(data);
    blobs.set(digest, data);
    return { digest: `sha256:${digest}`, size: data.length };
  };

  const layers = [
    { name: "runtime", entries: runtimeLayer(libraries) },
    { name: "oisp", entries: appLayer(o.binary, o.licenceText) },
  ].map((l) => {
    const tar = tarBytes(l.entries, o.epoch);
    // Level 6: 2.7 s for the 112 MiB binary here against 27 s at level 9, for 2.5 % more bytes. zlib writes
    // no file name and mtime 0 in the gzip header, so the bytes depend only on the input and zlib.
    const gz = gzipSync(tar, { level: 6 });
    return { name: l.name, diffId: `sha256:${sha256(tar)}`, ...blob(gz) };
  });

  const labels = {
    "org.opencontainers.image.title": "OISP Sensor",
    "org.opencontainers.image.description": "Captures AI API calls on a machine (eBPF or explicit proxy) and exports OISP events",
    "org.opencontainers.image.version": o.version,
    "org.opencontainers.image.revision": o.revision,
    "org.opencontainers.image.source": o.source,
    "org.opencontainers.image.licenses": o.licence,
    "org.opencontainers.image.created": created,
  };
  const config = {
    created,
    architecture: "amd64",
    os: "linux",
    config: {
      User: `${OISP_UID}:${OISP_UID}`,
      Entrypoint: [IMAGE_BINARY],
      Cmd: ["up", "--capture", "proxy", "--listen", "0.0.0.0:8080"],
      Env: [`PATH=/usr/local/bin`, `OISP_HOME=${IMAGE_DATA_DIR}`, `SSL_CERT_FILE=${CA_BUNDLE}`],
      WorkingDir: IMAGE_DATA_DIR,
      ExposedPorts: { "8080/tcp": {}, "7777/tcp": {} },
      StopSignal: "SIGTERM",
      Labels: labels,
    },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((l) => ({ created, created_by: `oisp build.ts --image (${l.name} layer)` })),
  };
  const configBlob = blob(json(config));
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...configBlob },
    layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: l.digest, size: l.size })),
    annotations: labels,
  };
  const manifestBlob = blob(json(manifest));
  const ref = `${IMAGE_NAME}:${o.version}`;
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        ...manifestBlob,
        annotations: { "io.containerd.image.name": ref, "org.opencontainers.image.ref.name": o.version },
      },
    ],
  };
  // manifest.json is the `docker save` index: Docker before 25 loads only that; newer engines and podman
  // read the OCI layout (oci-layout + index.json). Both point at the same blobs.
  const dockerManifest = [{ Config: `blobs/sha256/${configBlob.digest.slice(7)}`, RepoTags: [ref], Layers: layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`) }];

  const outer: TarEntry[] = [
    { name: "blobs", type: "dir", mode: 0o755 },
    { name: "blobs/sha256", type: "dir", mode: 0o755 },
    ...[...blobs.keys()].sort().map((d): TarEntry => ({ name: `blobs/sha256/${d}`, type: "file", data: blobs.get(d)!, mode: 0o644 })),
    { name: "index.json", type: "file", data: json(index), mode: 0o644 },
    { name: "manifest.json", type: "file", data: json(dockerManifest), mode: 0o644 },
    { name: "oci-layout", type: "file", data: json({ imageLayoutVersion: "1.0.0" }), mode: 0o644 },
  ];
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, tarBytes(outer, o.epoch));
  return { file: o.out, manifestDigest: manifestBlob.digest, libraries, layers: layers.map((l) => ({ name: l.name, size: l.size })) };
}

function json(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v));
}
