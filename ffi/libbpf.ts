// bun:ffi binding of libbpf 1.x (libbpf.so.1): open a compiled BPF object from memory, load it, attach its
// programs (tracepoints by section name, uprobes by file + symbol), read and write its maps, and drain a
// ring buffer. Generic: every BPF object of the project (ffi/bpf/*.bpf.c) is driven through it.
//
// Where libbpf comes from: the system's libbpf.so.1 when it is 1.x (Debian 12+, Ubuntu 24.04+, Fedora,
// RHEL 9), else the copy the compiled binary carries (prepareLibbpf; needs glibc >= 2.33), or
// OISP_LIBBPF=/path/libbpf.so.1. When none loads, LibbpfMissingError says which package to install.
//
// libbpf 1.x reports errors as a negative errno (int calls) or NULL with errno set (pointer calls); its
// own diagnostics go to the print callback, which collects the last lines so errors can quote them.
import { CString, dlopen, FFIType, JSCallback, ptr, read, type Pointer } from "bun:ffi";
import fs from "node:fs";

const SYMBOLS = {
  bpf_object__open_mem: { args: ["ptr", "u64", "ptr"], returns: "ptr" },
  bpf_object__load: { args: ["ptr"], returns: "i32" },
  bpf_object__close: { args: ["ptr"], returns: "void" },
  bpf_object__find_program_by_name: { args: ["ptr", "cstring"], returns: "ptr" },
  bpf_object__find_map_by_name: { args: ["ptr", "cstring"], returns: "ptr" },
  bpf_program__set_autoload: { args: ["ptr", "bool"], returns: "i32" },
  bpf_program__attach: { args: ["ptr"], returns: "ptr" },
  bpf_program__attach_uprobe_opts: { args: ["ptr", "i32", "cstring", "u64", "ptr"], returns: "ptr" },
  bpf_link__destroy: { args: ["ptr"], returns: "i32" },
  bpf_map__fd: { args: ["ptr"], returns: "i32" },
  bpf_map__set_max_entries: { args: ["ptr", "u32"], returns: "i32" },
  bpf_map__update_elem: { args: ["ptr", "ptr", "u64", "ptr", "u64", "u64"], returns: "i32" },
  bpf_map__lookup_elem: { args: ["ptr", "ptr", "u64", "ptr", "u64", "u64"], returns: "i32" },
  bpf_map__delete_elem: { args: ["ptr", "ptr", "u64", "u64"], returns: "i32" },
  bpf_map__get_next_key: { args: ["ptr", "ptr", "ptr", "u64"], returns: "i32" },
  ring_buffer__new: { args: ["i32", "function", "ptr", "ptr"], returns: "ptr" },
  ring_buffer__poll: { args: ["ptr", "i32"], returns: "i32" },
  ring_buffer__consume: { args: ["ptr"], returns: "i32" },
  ring_buffer__free: { args: ["ptr"], returns: "void" },
  libbpf_set_print: { args: ["function"], returns: "ptr" },
  libbpf_major_version: { args: [], returns: "u32" },
} as const;

const LIBC = {
  __errno_location: { args: [], returns: "ptr" },
  vsnprintf: { args: ["ptr", "u64", "ptr", "ptr"], returns: "i32" },
  clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
} as const;

export type LibbpfSymbols = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];

/** libbpf could not be loaded: the message is one line with the fix. */
export class LibbpfMissingError extends Error {
  constructor(detail: string) {
    super(
      `libbpf 1.x (libbpf.so.1) not found${detail ? ` (${detail})` : ""}: install it (Debian/Ubuntu 24.04+: apt-get install libbpf1; Fedora/RHEL: dnf install libbpf) or set OISP_LIBBPF=/path/to/libbpf.so.1`,
    );
    this.name = "LibbpfMissingError";
  }
}

/** A libbpf call failed: names the call, the errno and libbpf's own last diagnostic lines. */
export class LibbpfError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    readonly detail: string,
  ) {
    super(`${call} failed: ${errnoName(errno)}${detail ? ` (${detail})` : ""}`);
    this.name = "LibbpfError";
  }
}

const ERRNO: Record<number, string> = { 1: "EPERM", 2: "ENOENT", 7: "E2BIG", 9: "EBADF", 12: "ENOMEM", 13: "EACCES", 16: "EBUSY", 17: "EEXIST", 22: "EINVAL", 28: "ENOSPC", 38: "ENOSYS", 95: "EOPNOTSUPP", 524: "ENOTSUPP" };
export function errnoName(errno: number): string {
  return ERRNO[errno] ? `${ERRNO[errno]} (${errno})` : `errno ${errno}`;
}

let lib: { bpf: LibbpfSymbols; libc: ReturnType<typeof dlopen<typeof LIBC>>["symbols"]; path: string } | undefined;
const printLines: string[] = [];
let printCb: JSCallback | undefined;
let printSink: ((level: number, line: string) => void) | undefined;

/** libbpf's symbols, loaded once per thread (each Worker loads its own). Throws LibbpfMissingError. */
export function libbpf(): LibbpfSymbols {
  return load().bpf;
}

let libbpfPaths: string[] = [];

function load() {
  if (lib) return lib;
  if (process.platform !== "linux") throw new LibbpfMissingError("eBPF capture exists only on Linux");
  const candidates = process.env.OISP_LIBBPF ? [process.env.OISP_LIBBPF] : ["libbpf.so.1", ...libbpfPaths];
  const errors: string[] = [];
  for (const name of candidates) {
    try {
      const bpf = dlopen(name, SYMBOLS).symbols;
      if (bpf.libbpf_major_version() < 1) throw new Error(`${name} is libbpf 0.x; 1.x is needed`);
      const libc = dlopen("libc.so.6", LIBC).symbols;
      lib = { bpf, libc, path: name };
      return lib;
    } catch (err) {
      const msg = (err as Error).message.split("\n")[0]!;
      // "cannot open shared object file" says only that it is not there: the message says that already.
      if (!/libbpf\.so\.1: cannot open shared object file/.test(msg) || name !== "libbpf.so.1") errors.push(msg.replace(/^Failed to open library "[^"]*": /, ""));
    }
  }
  throw new LibbpfMissingError(errors.join("; "));
}

/** The libbpf in use: "libbpf.so.1" (the system's), OISP_LIBBPF, or the copy extracted from the binary. */
export function libbpfPath(): string {
  return load().path;
}

/** Loads libbpf from this path after the system's (a Worker given the path its parent resolved). */
export function useLibbpfAt(path: string): void {
  if (!libbpfPaths.includes(path)) libbpfPaths.push(path);
}

// The compiled binary carries libz, libelf and libbpf (build.ts, as oisp-lib*.so) for systems without
// libbpf 1.x. They are written to a private directory and loaded in dependency order by full path: the
// dynamic linker then satisfies libbpf's NEEDED libelf.so.1 / libz.so.1 with the copies already loaded.
const EMBEDDED_ORDER = ["oisp-libz", "oisp-libelf", "oisp-libbpf"] as const;
const keepLoaded: unknown[] = [];

/**
 * Makes libbpf loadable: the system's when it is 1.x, else the copy embedded in the binary, extracted
 * under `extractDir` (a directory only root can write, e.g. the data directory). Returns the path in use.
 */
export async function prepareLibbpf(extractDir: string): Promise<string> {
  try {
    return load().path;
  } catch (err) {
    if (process.env.OISP_LIBBPF) throw err;
    const files = EMBEDDED_ORDER.map((p) => (Bun.embeddedFiles as File[]).find((f) => f.name.startsWith(p)));
    if (files.some((f) => !f)) throw err;
    const fs = await import("node:fs");
    const path = await import("node:path");
    const { createHash } = await import("node:crypto");
    const bytes = await Promise.all(files.map(async (f) => new Uint8Array(await f!.arrayBuffer())));
    const hash = createHash("sha256");
    for (const b of bytes) hash.update(b);
    const dir = path.join(extractDir, `libbpf-${hash.digest("hex").slice(0, 16)}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const paths = EMBEDDED_ORDER.map((name, i) => {
      const file = path.join(dir, `${name}.so`);
      if (!fs.existsSync(file) || fs.statSync(file).size !== bytes[i]!.length) {
        fs.writeFileSync(`${file}.tmp`, bytes[i]!, { mode: 0o600 });
        fs.renameSync(`${file}.tmp`, file);
      }
      return file;
    });
    // One harmless symbol each (bun:ffi wants at least one); kept referenced so they stay loaded.
    keepLoaded.push(dlopen(paths[0]!, { zlibVersion: { args: [], returns: "ptr" } }));
    keepLoaded.push(dlopen(paths[1]!, { elf_version: { args: ["u32"], returns: "u32" } }));
    useLibbpfAt(paths[2]!);
    return load().path;
  }
}

/**
 * Routes libbpf's diagnostics into `sink` (and a small ring of recent lines quoted by LibbpfError). Call on
 * the thread that loads objects; the callback must not fire on another thread (Workers never set it).
 */
export function captureLibbpfPrint(sink?: (level: number, line: string) => void): void {
  const { bpf, libc } = load();
  printSink = sink;
  if (printCb) return;
  const buf = new Uint8Array(1024);
  printCb = new JSCallback(
    (level: number, fmt: Pointer, args: Pointer) => {
      const n = libc.vsnprintf(ptr(buf), buf.length, fmt, args);
      const line = new TextDecoder().decode(buf.subarray(0, Math.max(0, Math.min(n, buf.length - 1)))).trimEnd();
      printLines.push(line);
      if (printLines.length > 8) printLines.shift();
      printSink?.(level, line);
      return 0;
    },
    { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  );
  bpf.libbpf_set_print(printCb.ptr);
}

const timespec = new BigInt64Array(2);
/** CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns(). */
export function monotonicNs(): bigint {
  load().libc.clock_gettime(1, ptr(timespec));
  return timespec[0]! * 1_000_000_000n + timespec[1]!;
}

function errno(): number {
  const p = load().libc.__errno_location();
  return p ? read.i32(p, 0) : 0;
}

function lastPrint(): string {
  const lines = printLines.splice(0).filter((l) => l && !l.startsWith("libbpf: prog") && l.length < 300);
  return lines.slice(-2).join("; ");
}

function check(call: string, rc: number): number {
  if (rc < 0) throw new LibbpfError(call, -rc, lastPrint());
  return rc;
}

function checkPtr(call: string, p: Pointer | bigint | null): Pointer {
  if (!p) throw new LibbpfError(call, errno(), lastPrint());
  return p as Pointer;
}

const cstr = (s: string) => Buffer.from(`${s}\0`);

/** An attachment; destroyed explicitly or when the process exits (links are file descriptors). */
export class BpfLink {
  constructor(private p: Pointer | null) {}
  destroy(): void {
    if (this.p) libbpf().bpf_link__destroy(this.p);
    this.p = null;
  }
}

/** A map of a loaded (or opened) object: fixed-size keys and values as bytes. */
export class BpfMap {
  constructor(
    readonly name: string,
    readonly p: Pointer,
  ) {}
  get fd(): number {
    return libbpf().bpf_map__fd(this.p);
  }
  /** Before load only. */
  setMaxEntries(n: number): void {
    check(`bpf_map__set_max_entries(${this.name})`, libbpf().bpf_map__set_max_entries(this.p, n));
  }
  update(key: Uint8Array, value: Uint8Array, flags = 0): void {
    check(`bpf_map__update_elem(${this.name})`, libbpf().bpf_map__update_elem(this.p, ptr(key), key.length, ptr(value), value.length, flags));
  }
  /** The value, or undefined when the key is absent. `size` is the value size (per-CPU maps: size × CPUs). */
  lookup(key: Uint8Array, size: number): Uint8Array | undefined {
    const out = new Uint8Array(size);
    const rc = libbpf().bpf_map__lookup_elem(this.p, ptr(key), key.length, ptr(out), size, 0);
    if (rc === -2) return undefined;
    check(`bpf_map__lookup_elem(${this.name})`, rc);
    return out;
  }
  /** True when a key was deleted, false when it was absent. */
  delete(key: Uint8Array): boolean {
    const rc = libbpf().bpf_map__delete_elem(this.p, ptr(key), key.length, 0);
    if (rc === -2) return false;
    check(`bpf_map__delete_elem(${this.name})`, rc);
    return true;
  }
  /** Every key (a snapshot; concurrent updates may be missed or seen). */
  keys(keySize: number, limit = 1 << 20): Uint8Array[] {
    const out: Uint8Array[] = [];
    let prev: Uint8Array | null = null;
    while (out.length < limit) {
      const next = new Uint8Array(keySize);
      const rc = libbpf().bpf_map__get_next_key(this.p, prev ? ptr(prev) : null, ptr(next), keySize);
      if (rc === -2) break;
      check(`bpf_map__get_next_key(${this.name})`, rc);
      out.push(next);
      prev = next;
    }
    return out;
  }
}

export interface UprobeTarget {
  /** The file holding the function: a shared library or an executable (may be under /proc/PID/root). */
  binaryPath: string;
  /** Symbol name; libbpf resolves it in the file's symbol tables. */
  funcName: string;
  retprobe: boolean;
  /** -1: every process mapping the file. */
  pid?: number;
}

// struct bpf_uprobe_opts (libbpf 1.1): sz, ref_ctr_offset, bpf_cookie, retprobe (bool, padded), func_name.
const UPROBE_OPTS_SIZE = 40;

/** A BPF object: open from bytes, adjust maps, load, attach programs. Close to detach everything. */
export class BpfObject {
  private constructor(
    private p: Pointer | null,
    private readonly keep: Uint8Array,
  ) {}

  /** Opens (does not load) an ELF BPF object held in memory. */
  static open(bytes: Uint8Array, name = "bpf object"): BpfObject {
    const bpf = libbpf();
    const copy = new Uint8Array(bytes); // libbpf keeps pointers into the buffer until load
    const obj = checkPtr(`bpf_object__open_mem(${name})`, bpf.bpf_object__open_mem(ptr(copy), copy.length, null));
    return new BpfObject(obj, copy);
  }

  private get obj(): Pointer {
    if (!this.p) throw new Error("BPF object is closed");
    return this.p;
  }

  load(): void {
    check("bpf_object__load", libbpf().bpf_object__load(this.obj));
  }

  map(name: string): BpfMap {
    return new BpfMap(name, checkPtr(`map ${name}`, libbpf().bpf_object__find_map_by_name(this.obj, cstr(name))));
  }

  private program(name: string): Pointer {
    return checkPtr(`program ${name}`, libbpf().bpf_object__find_program_by_name(this.obj, cstr(name)));
  }

  /** Before load: skip loading a program (e.g. a hook the kernel lacks). */
  setAutoload(program: string, on: boolean): void {
    check(`bpf_program__set_autoload(${program})`, libbpf().bpf_program__set_autoload(this.program(program), on));
  }

  /** Attaches a program by its section (tp_btf/..., raw_tp/..., tracepoint/...). */
  attach(program: string): BpfLink {
    return new BpfLink(checkPtr(`attach ${program}`, libbpf().bpf_program__attach(this.program(program))));
  }

  attachUprobe(program: string, t: UprobeTarget): BpfLink {
    const opts = new Uint8Array(UPROBE_OPTS_SIZE);
    const view = new DataView(opts.buffer);
    const fn = cstr(t.funcName);
    view.setBigUint64(0, BigInt(UPROBE_OPTS_SIZE), true);
    opts[24] = t.retprobe ? 1 : 0;
    view.setBigUint64(32, BigInt(ptr(fn)), true);
    const link = libbpf().bpf_program__attach_uprobe_opts(this.program(program), t.pid ?? -1, cstr(t.binaryPath), 0, ptr(opts));
    void fn; // opts points into it: keep it alive until the call returned
    return new BpfLink(checkPtr(`uprobe ${t.funcName} in ${t.binaryPath}`, link));
  }

  /** Detaches every link still owned by libbpf and frees the object's programs and maps. */
  close(): void {
    if (this.p) libbpf().bpf_object__close(this.p);
    this.p = null;
    void this.keep;
  }
}

export type RingBufferCallback = (data: Pointer, size: number) => void;

/**
 * A libbpf ring buffer over a BPF_MAP_TYPE_RINGBUF map fd. poll() blocks up to timeoutMs and calls `onRecord`
 * for each record, synchronously, on the calling thread: run it in a Worker. The pointer is valid only
 * during the callback (copy what you keep).
 */
export class RingBuffer {
  private rb: Pointer | null;
  private readonly cb: JSCallback;

  constructor(mapFd: number, onRecord: RingBufferCallback) {
    this.cb = new JSCallback(
      (_ctx: Pointer, data: Pointer, size: number) => {
        onRecord(data, Number(size));
        return 0;
      },
      { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
    );
    this.rb = checkPtr("ring_buffer__new", libbpf().ring_buffer__new(mapFd, this.cb.ptr, null, null));
  }

  /** Records consumed, or throws; EINTR counts as 0. */
  poll(timeoutMs: number): number {
    if (!this.rb) return 0;
    const n = libbpf().ring_buffer__poll(this.rb, timeoutMs);
    if (n === -4) return 0;
    return check("ring_buffer__poll", n);
  }

  consume(): number {
    if (!this.rb) return 0;
    return check("ring_buffer__consume", libbpf().ring_buffer__consume(this.rb));
  }

  free(): void {
    if (this.rb) libbpf().ring_buffer__free(this.rb);
    this.rb = null;
    this.cb.close();
  }
}

/** Reads a NUL-terminated string of at most `max` bytes at `p + offset`. */
export function readCString(p: Pointer, offset: number, max: number): string {
  const s = new CString(p, offset, max).toString();
  const nul = s.indexOf("\0");
  return nul >= 0 ? s.slice(0, nul) : s;
}

/** Per-CPU maps hold a value per possible CPU (/sys/devices/system/cpu/possible: "0-3", "0,2-5"), not per online one. */
export function possibleCpus(): number {
  try {
    const text = fs.readFileSync("/sys/devices/system/cpu/possible", "utf8").trim();
    let n = 0;
    for (const part of text.split(",")) {
      const [a, b] = part.split("-").map(Number);
      n += b === undefined ? 1 : b! - a! + 1;
    }
    return n || 1;
  } catch {
    return 1;
  }
}
