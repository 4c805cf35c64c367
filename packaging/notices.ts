// THIRD-PARTY-NOTICES.txt: the licence of every npm package the compiled binary actually contains. The
// list comes from the bundler's metafile (its inputs under node_modules/), not from package.json, so a
// dependency that is declared but tree-shaken away is not listed and one pulled in transitively is.
import fs from "node:fs";
import path from "node:path";

export interface BundledPackage {
  name: string;
  version: string;
  license: string;
  /** Full licence text(s) found in the package folder (LICENSE*, LICENCE*, COPYING*, NOTICE*). */
  texts: string[];
  dir: string;
}

/** Package folders (node_modules/<name> or node_modules/@scope/<name>, innermost) of the metafile's inputs. */
export function bundledPackageDirs(metafile: { inputs: Record<string, unknown> }, root: string): string[] {
  const dirs = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input.replaceAll("\\", "/"));
    if (m) dirs.add(path.resolve(root, m[1]!));
  }
  return [...dirs].sort();
}

const LICENSE_FILE = /^(licen[cs]e|copying|notice)(\.(md|txt|markdown))?$/i;

export function readPackage(dir: string): BundledPackage {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as {
    name?: string;
    version?: string;
    license?: string | { type?: string };
    licenses?: { type?: string }[];
  };
  const license =
    typeof pkg.license === "string" ? pkg.license : (pkg.license?.type ?? pkg.licenses?.map((l) => l.type).join(" OR ") ?? "UNKNOWN");
  const texts = fs
    .readdirSync(dir)
    .filter((f) => LICENSE_FILE.test(f))
    .sort()
    .map((f) => fs.readFileSync(path.join(dir, f), "utf8").trim());
  return { name: pkg.name ?? path.basename(dir), version: pkg.version ?? "?", license, texts, dir };
}

const RULE = "-".repeat(78);

/** The notices text. `extra` holds components that are not npm packages (the Bun runtime, WinDivert). */
export function noticesText(packages: BundledPackage[], extra: { title: string; body: string }[] = []): string {
  // Same name at two versions (nested node_modules) → both listed; order is stable for reproducible output.
  const sorted = [...packages].sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
  const parts = [
    "OISP Sensor - third-party notices",
    "",
    "The oisp executable contains the following third-party software. Each is listed with its licence;",
    "the full licence text follows where the package ships one.",
    "",
    ...extra.map((e) => `  ${e.title}`),
    ...sorted.map((p) => `  ${p.name} ${p.version} (${p.license})`),
    "",
  ];
  for (const e of extra) parts.push(RULE, e.title, "", e.body.trim(), "");
  // Identical licence texts (the Apache-2.0 of a dozen @opentelemetry packages, ...) are printed once,
  // under the list of the packages that ship them.
  const byText = new Map<string, BundledPackage[]>();
  for (const p of sorted) {
    const text = p.texts.length ? p.texts.join("\n\n") : `(no licence file shipped; package.json declares ${p.license})`;
    byText.set(text, [...(byText.get(text) ?? []), p]);
  }
  for (const [text, group] of byText) {
    parts.push(RULE, ...group.map((p) => `${p.name} ${p.version} - ${p.license}`), "", text, "");
  }
  return parts.join("\n").replace(/\r\n/g, "\n");
}

export const BUN_NOTICE = {
  title: "Bun runtime (MIT)",
  body: `The executable is built on the Bun runtime (https://bun.com), MIT licensed, Copyright Oven and Bun
contributors. Bun statically links third-party libraries, among them WebKit's JavaScriptCore
(LGPL-2.0; you may relink it: Bun's source and build instructions are public), BoringSSL, zlib,
libarchive, c-ares, lol-html, mimalloc, picohttpparser, simdutf, tinycc and zstd. Their licences are
listed at https://bun.com/docs/project/licensing.`,
};

export const LIBBPF_NOTICE = {
  title: "libbpf, elfutils libelf, zlib (Linux binary: eBPF capture)",
  body: `The Linux executable carries unmodified copies of Debian's libbpf.so.1 (LGPL-2.1 or BSD-2-Clause,
https://github.com/libbpf/libbpf), libelf.so.1 from elfutils (LGPL-3.0-or-later or GPL-2.0-or-later,
https://sourceware.org/elfutils/) and libz.so.1 (zlib licence, https://zlib.net), loaded only when the
system has no libbpf 1.x. They are written to the data directory and loaded as ordinary shared
libraries, so they can be replaced: set OISP_LIBBPF=/path/to/libbpf.so.1 to use another build. The BPF
programs compiled into the executable are licensed GPL-2.0-only OR Apache-2.0.`,
};

export const WINDIVERT_NOTICE = {
  title: "WinDivert 2.2 (LGPL-3.0-or-later or GPL-2.0-or-later)",
  body: `WinDivert.dll and WinDivert64.sys are Copyright Basil Crow and distributed under the GNU Lesser
General Public License v3 (or, at your option, the GNU General Public License v2). They are unmodified
copies of the official release; source: https://reqrypt.org/windivert.html.`,
};
