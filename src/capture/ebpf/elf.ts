// Which of some symbols an ELF file defines in its dynamic symbol table (what uprobes by name resolve
// against for shared objects and for executables such as node that export OpenSSL). Reads only the
// headers and the two sections it needs; 64-bit little-endian ELF only (x86-64, arm64).
import fs from "node:fs";

const SHT_DYNSYM = 11;
const SYM_SIZE = 24;
const MAX_SECTION = 64 << 20;

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = fs.readSync(fd, buf, 0, length, offset);
  return n === length ? buf : buf.subarray(0, n);
}

/** The subset of `wanted` defined (not merely imported) in `file`'s .dynsym; empty for non-ELF files. */
export function definedDynamicSymbols(file: string, wanted: readonly string[]): Set<string> {
  const found = new Set<string>();
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return found;
  }
  try {
    const eh = readAt(fd, 0, 64);
    if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) return found;
    const shoff = Number(eh.readBigUInt64LE(0x28));
    const shentsize = eh.readUInt16LE(0x3a);
    const shnum = eh.readUInt16LE(0x3c);
    if (!shoff || shentsize < 64 || shnum === 0 || shnum > 4096) return found;
    const sh = readAt(fd, shoff, shentsize * shnum);
    const section = (i: number) => {
      const b = i * shentsize;
      return { type: sh.readUInt32LE(b + 4), offset: Number(sh.readBigUInt64LE(b + 0x18)), size: Number(sh.readBigUInt64LE(b + 0x20)), link: sh.readUInt32LE(b + 0x28) };
    };
    const want = new Map(wanted.map((w) => [w, Buffer.from(`${w}\0`)]));
    // Cheap pre-check on the first three bytes, shared by the wanted names (all "SSL_..." here).
    const prefix = commonPrefix(wanted);
    for (let i = 0; i < shnum && (i + 1) * shentsize <= sh.length; i++) {
      const dynsym = section(i);
      if (dynsym.type !== SHT_DYNSYM || dynsym.link >= shnum) continue;
      const strtab = section(dynsym.link);
      if (dynsym.size > MAX_SECTION || strtab.size > MAX_SECTION) continue;
      const syms = readAt(fd, dynsym.offset, dynsym.size);
      const strs = readAt(fd, strtab.offset, strtab.size);
      for (let at = 0; at + SYM_SIZE <= syms.length; at += SYM_SIZE) {
        const name = syms.readUInt32LE(at);
        const shndx = syms.readUInt16LE(at + 6);
        if (shndx === 0 || name + 4 > strs.length) continue; // undefined: imported from elsewhere
        if (prefix.length && (strs[name] !== prefix[0] || strs[name + 1] !== prefix[1] || strs[name + 2] !== prefix[2])) continue;
        for (const [w, z] of want) {
          if (strs[name] === z[0] && strs.subarray(name, name + z.length).equals(z)) found.add(w);
        }
      }
    }
    return found;
  } catch {
    return found;
  } finally {
    fs.closeSync(fd);
  }
}

function commonPrefix(names: readonly string[]): Buffer {
  const first = names[0] ?? "";
  let n = Math.min(3, first.length);
  for (const w of names) while (n > 0 && w.slice(0, n) !== first.slice(0, n)) n--;
  // Fewer than three shared bytes: a prefix of NULs never matches, so fall back to comparing every name.
  return n === 3 ? Buffer.from(first.slice(0, 3)) : Buffer.alloc(0);
}
