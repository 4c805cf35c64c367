// Which files to put TLS uprobes on: every libssl.so.3 / libssl.so.1.1 a process has mapped (read through
// /proc/PID/root, so a container's own copy is found), every executable that exports OpenSSL's SSL_* symbols
// itself (node), and the usual system locations up front, in our root and in the root of every mount
// namespace a process shows us, so a client started right after oisp is covered before any scan sees it.
// A uprobe belongs to the file (inode), not to a process: one attachment per file covers every process
// using it, present and future.
import fs from "node:fs";
import { definedDynamicSymbols } from "./elf.ts";

export const SSL_FUNCTIONS = ["SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex", "SSL_ctrl"] as const;
export type SslFunction = (typeof SSL_FUNCTIONS)[number];

export const LIBSSL_NAME = /\/libssl\.so\.(3|1\.1)$/;

export interface TlsTarget {
  /** Path to open: under /proc/PID/root for files found through a process. */
  path: string;
  /** Path as the process sees it (for status and logs). */
  shownPath: string;
  kind: "library" | "binary";
  /** dev:inode: the identity a uprobe attaches to. */
  fileId: string;
  symbols: SslFunction[];
  /** A pid that had it mapped when found (none for the system locations). */
  pid?: number;
}

const SYSTEM_LIBS = [
  "/usr/lib/x86_64-linux-gnu/libssl.so.3",
  "/usr/lib/x86_64-linux-gnu/libssl.so.1.1",
  "/usr/lib/aarch64-linux-gnu/libssl.so.3",
  "/usr/lib/aarch64-linux-gnu/libssl.so.1.1",
  "/usr/lib64/libssl.so.3",
  "/usr/lib64/libssl.so.1.1",
  "/usr/lib/libssl.so.3",
  "/lib/libssl.so.3",
];
const SYSTEM_BINARIES = ["/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"];

/**
 * Finds targets not seen before. Remembers every file it looked at (by dev:inode, size and mtime),
 * including those without the symbols, so repeated scans only read the maps files.
 */
export class TargetFinder {
  private readonly seen = new Map<string, TlsTarget | null>();
  private readonly exeSeen = new Map<number, string>();
  /** Mount namespaces whose system paths were looked at (the /proc/PID/ns/mnt link text). */
  private readonly namespaces = new Set<string>();

  constructor(private readonly proc = "/proc") {}

  /**
   * Libraries and node binaries at their usual system paths in our own root, probed at start so a client
   * that loads libssl and handshakes before the next scan is still seen. Other roots' system paths (the
   * host's, when we run in a container with the host's PID namespace) come with scan().
   */
  systemTargets(): TlsTarget[] {
    const out: TlsTarget[] = [];
    for (const p of SYSTEM_LIBS) this.consider(p, p, "library", undefined, out);
    const pathDirs = (process.env.PATH ?? "").split(":").filter(Boolean);
    for (const p of [...SYSTEM_BINARIES, ...pathDirs.map((d) => `${d}/node`)]) this.consider(p, p, "binary", undefined, out);
    return out;
  }

  /** Forgets a target, so a later sighting offers it again (its attachment failed: its process had exited). */
  forget(t: TlsTarget): void {
    for (const [key, v] of this.seen) if (v?.fileId === t.fileId) this.seen.delete(key);
  }

  /** New targets among every process's mappings (or the given pids'). */
  scan(pids?: Iterable<number>): TlsTarget[] {
    const out: TlsTarget[] = [];
    for (const pid of pids ?? this.allPids()) this.scanPid(pid, out);
    return out;
  }

  private allPids(): number[] {
    try {
      return fs
        .readdirSync(this.proc)
        .filter((n) => /^\d+$/.test(n))
        .map(Number);
    } catch {
      return [];
    }
  }

  private scanPid(pid: number, out: TlsTarget[]): void {
    const root = `${this.proc}/${pid}/root`;
    let maps: string;
    try {
      maps = fs.readFileSync(`${this.proc}/${pid}/maps`, "latin1");
    } catch {
      return; // exited, or a kernel thread
    }
    this.considerSystemPaths(pid, out);
    const libs = new Set<string>();
    for (const line of maps.split("\n")) {
      const at = line.indexOf("/");
      if (at < 0 || !line.includes("libssl.so")) continue;
      const file = line.slice(at).replace(/ \(deleted\)$/, "");
      if (LIBSSL_NAME.test(file)) libs.add(file);
    }
    for (const lib of libs) this.consider(`${root}${lib}`, lib, "library", pid, out);
    // The executable itself: node links OpenSSL statically and exports it.
    let exe: string;
    try {
      exe = fs.readlinkSync(`${this.proc}/${pid}/exe`);
    } catch {
      return;
    }
    if (this.exeSeen.get(pid) === exe) return;
    this.exeSeen.set(pid, exe);
    if (this.exeSeen.size > 65536) this.exeSeen.delete(this.exeSeen.keys().next().value!);
    this.consider(`${this.proc}/${pid}/exe`, exe.replace(/ \(deleted\)$/, ""), "binary", pid, out);
  }

  /**
   * The system paths of a mount namespace not looked at before, through the root of this pid in it. In a
   * container with the host's PID namespace this is how the host's libssl is probed before any host client
   * maps it: PID 1's root may be closed to us (a VM's init), so any process of the namespace will do.
   */
  private considerSystemPaths(pid: number, out: TlsTarget[]): void {
    let ns: string;
    try {
      ns = fs.readlinkSync(`${this.proc}/${pid}/ns/mnt`);
    } catch {
      return;
    }
    if (this.namespaces.has(ns)) return;
    this.namespaces.add(ns);
    if (this.namespaces.size > 4096) this.namespaces.delete(this.namespaces.values().next().value!);
    const root = `${this.proc}/${pid}/root`;
    for (const p of SYSTEM_LIBS) this.consider(`${root}${p}`, p, "library", pid, out);
    for (const p of SYSTEM_BINARIES) this.consider(`${root}${p}`, p, "binary", pid, out);
  }

  private consider(path: string, shownPath: string, kind: TlsTarget["kind"], pid: number | undefined, out: TlsTarget[]): void {
    let st: fs.Stats;
    try {
      st = fs.statSync(path);
    } catch {
      return;
    }
    if (!st.isFile()) return;
    const fileId = `${st.dev}:${st.ino}`;
    const key = `${fileId}:${st.size}:${st.mtimeMs}`;
    if (this.seen.has(key)) return;
    const symbols = [...definedDynamicSymbols(path, SSL_FUNCTIONS)] as SslFunction[];
    const usable = symbols.includes("SSL_write") && symbols.includes("SSL_read");
    // /proc/PID/exe vanishes with the process: attach through the path the process sees when it resolves.
    const attachPath = kind === "binary" && pid !== undefined && fs.existsSync(`${this.proc}/${pid}/root${shownPath}`) ? `${this.proc}/${pid}/root${shownPath}` : path;
    const target = usable ? { path: attachPath, shownPath, kind, fileId, symbols, ...(pid !== undefined && { pid }) } : null;
    this.seen.set(key, target);
    if (target) out.push(target);
  }
}
