// A deterministic POSIX ustar writer for the container image's layers and its archive: entries in the
// order given, one fixed mtime, numeric owners without names, no pax headers. The same inputs give the
// same bytes, which is what makes the image reproducible.

export interface TarEntry {
  /** Relative path, "/"-separated, no leading "/"; directories end without "/" (added here). */
  name: string;
  type: "file" | "dir" | "symlink";
  data?: Uint8Array;
  /** Symlink target. */
  target?: string;
  mode: number;
  uid?: number;
  gid?: number;
}

const BLOCK = 512;
const enc = new TextEncoder();

function putString(h: Uint8Array, off: number, len: number, s: string, what: string): void {
  const b = enc.encode(s);
  if (b.length > len) throw new Error(`tar: ${what} "${s}" longer than ${len} bytes`);
  h.set(b, off);
}

/** Octal, zero-padded, NUL-terminated, as ustar numeric fields are. */
function putOctal(h: Uint8Array, off: number, len: number, n: number): void {
  const s = n.toString(8).padStart(len - 1, "0");
  if (s.length > len - 1) throw new Error(`tar: ${n} does not fit ${len} bytes`);
  putString(h, off, len, `${s}\0`, "number");
}

/** Splits a long path into ustar's prefix (155) + name (100) at a "/". */
function splitName(path: string): [prefix: string, name: string] {
  if (enc.encode(path).length <= 100) return ["", path];
  for (let i = path.lastIndexOf("/"); i > 0; i = path.lastIndexOf("/", i - 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (enc.encode(prefix).length <= 155 && enc.encode(name).length <= 100) return [prefix, name];
  }
  throw new Error(`tar: path too long for ustar: ${path}`);
}

function header(e: TarEntry, mtime: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const [prefix, name] = splitName(e.type === "dir" ? `${e.name}/` : e.name);
  putString(h, 0, 100, name, "name");
  putOctal(h, 100, 8, e.mode);
  putOctal(h, 108, 8, e.uid ?? 0);
  putOctal(h, 116, 8, e.gid ?? 0);
  putOctal(h, 124, 12, e.type === "file" ? (e.data?.length ?? 0) : 0);
  putOctal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h[156] = e.type === "file" ? 0x30 : e.type === "dir" ? 0x35 : 0x32;
  if (e.type === "symlink") putString(h, 157, 100, e.target ?? "", "link target");
  putString(h, 257, 6, "ustar\0", "magic");
  putString(h, 263, 2, "00", "version");
  putOctal(h, 329, 8, 0);
  putOctal(h, 337, 8, 0);
  putString(h, 345, 155, prefix, "prefix");
  let sum = 0;
  for (const b of h) sum += b;
  putString(h, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `, "checksum");
  return h;
}

/** The archive's bytes: each entry's header and data padded to 512, then two zero blocks. */
export function tarBytes(entries: TarEntry[], mtime: number): Uint8Array {
  let size = 2 * BLOCK;
  for (const e of entries) size += BLOCK + (e.type === "file" ? Math.ceil((e.data?.length ?? 0) / BLOCK) * BLOCK : 0);
  const out = new Uint8Array(size);
  let off = 0;
  for (const e of entries) {
    out.set(header(e, mtime), off);
    off += BLOCK;
    if (e.type === "file" && e.data) {
      out.set(e.data, off);
      off += Math.ceil(e.data.length / BLOCK) * BLOCK;
    }
  }
  return out;
}

/** Every parent directory of the given paths, as entries, parents first (a layer must create them). */
export function parentDirs(paths: string[], mode = 0o755): TarEntry[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  }
  return [...dirs].sort().map((name) => ({ name, type: "dir", mode }));
}
