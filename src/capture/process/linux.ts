// Linux: which process owns the client end of a proxied connection. The client's socket is the one whose
// local address is the client endpoint and remote address is the proxy endpoint; the kernel names its
// inode and uid in one NETLINK_SOCK_DIAG query (sock-diag.ts), or, where netlink is unavailable, in its
// row of /proc/net/tcp{,6}. The inode is then found among /proc/<pid>/fd links ("socket:[inode]").
// Everything is async and bounded, and pids that owned recent connections are searched first (one app
// tends to open many connections).
import fsSync from "node:fs";
import fs from "node:fs/promises";
import type { Endpoint, ProcessInfo } from "../../tap/types.ts";
import { describeProcess, UserNames } from "./describe.ts";
import { canonicalIp } from "./ip.ts";
import { type SocketRow, sockDiagRow } from "./sock-diag.ts";

export interface LinuxLookupOptions {
  /** Root of procfs (tests may point elsewhere). */
  procRoot?: string;
  /**
   * Ask the kernel for the one socket over netlink (sock-diag.ts) before reading the /proc/net tables.
   * Default: on with the real /proc, off with another procRoot (its tables are not the kernel's).
   */
  sockDiag?: boolean;
  /** Most fd links read in one lookup. */
  maxFdReads?: number;
  /** Recently matched pids remembered and searched first. */
  hotPids?: number;
  /** Longest synchronous stretch of /proc reads before yielding to the event loop. */
  sliceMs?: number;
  /** Lookups answered by one pass over /proc. */
  maxBatch?: number;
  /** Passes over /proc running at once. */
  maxScans?: number;
  /** Newest processes scanned while the socket table is still being read. */
  eagerPids?: number;
  /** Lookups waiting; past it new ones resolve undefined at once. */
  maxQueue?: number;
}

/** Decodes a /proc/net/tcp{,6} "ADDR:PORT" (address words in host byte order, little-endian assumed). */
export function decodeProcAddress(field: string): { ip: string; port: number } | undefined {
  const [addr, port] = field.split(":");
  if (!addr || !port) return undefined;
  const bytes: number[] = [];
  for (let w = 0; w < addr.length; w += 8) {
    const word = addr.slice(w, w + 8);
    for (let i = 6; i >= 0; i -= 2) bytes.push(parseInt(word.slice(i, i + 2), 16));
  }
  let ip: string | undefined;
  if (bytes.length === 4) ip = bytes.join(".");
  else if (bytes.length === 16) {
    const hex = bytes.map((b) => b.toString(16).padStart(2, "0")).join("");
    ip = hex.startsWith("00000000000000000000ffff") ? bytes.slice(12).join(".") : hex;
  }
  return ip === undefined ? undefined : { ip, port: parseInt(port, 16) };
}

/** Finds the socket with local = client and remote = proxy in one /proc/net/tcp{,6} text. */
export function findSocketRow(table: string, client: Endpoint, proxy: Endpoint): SocketRow | undefined {
  const c = canonicalIp(client.ip);
  const p = canonicalIp(proxy.ip);
  if (!c || !p) return undefined;
  const want = `:${client.port.toString(16).toUpperCase().padStart(4, "0")} `;
  for (const line of table.split("\n")) {
    // Cheap pre-filter on the local port before decoding anything.
    if (!line.includes(want)) continue;
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = decodeProcAddress(f[1]!);
    const remote = decodeProcAddress(f[2]!);
    if (!local || !remote) continue;
    if (local.port !== client.port || remote.port !== proxy.port) continue;
    if (local.ip !== c || remote.ip !== p) continue;
    const inode = Number(f[9]);
    if (inode > 0) return { inode, uid: Number(f[7]) };
  }
  return undefined;
}

/** Pids that owned recent connections, most recent last, bounded: one app tends to open many connections. */
export class RecentPids {
  private readonly pids = new Map<number, true>();

  constructor(private readonly max: number) {}

  has(pid: number): boolean {
    return this.pids.has(pid);
  }

  remember(pid: number): void {
    this.pids.delete(pid);
    this.pids.set(pid, true);
    if (this.pids.size > this.max) this.pids.delete(this.pids.keys().next().value!);
  }

  /** Most recent first. */
  list(): number[] {
    return [...this.pids.keys()].reverse();
  }
}

/**
 * The order one pass visits /proc entries in: recent clients first (most recent first), then the other
 * processes newest (highest pid) first, since a client usually started recently. Non-pid entries are skipped.
 */
export function scanOrder(entries: readonly string[], recent: RecentPids): { order: number[]; recentCount: number } {
  const hotPids = recent.list();
  const others = entries.filter((e) => /^\d+$/.test(e)).map(Number).filter((p) => !recent.has(p)).sort((a, b) => b - a);
  return { order: [...hotPids, ...others], recentCount: hotPids.length };
}

export function createLinuxProcessLookup(opts: LinuxLookupOptions = {}) {
  const proc = opts.procRoot ?? "/proc";
  const useSockDiag = opts.sockDiag ?? opts.procRoot === undefined;
  const maxFdReads = opts.maxFdReads ?? 50_000;
  const hotMax = opts.hotPids ?? 64;
  const sliceMs = opts.sliceMs ?? 1;
  const maxBatch = opts.maxBatch ?? 256;
  const maxScans = opts.maxScans ?? 3;
  const eagerPids = opts.eagerPids ?? 32;
  const maxQueue = opts.maxQueue ?? 10_000;
  const hot = new RecentPids(hotMax);
  const users = new UserNames();

  interface Pending {
    client: Endpoint;
    proxy: Endpoint;
    resolve: (info: ProcessInfo | undefined) => void;
    /** null: table not read yet; undefined: no such socket. */
    row: SocketRow | undefined | null;
    done: boolean;
  }
  let queue: Pending[] = [];
  let running = 0;

  /**
   * Finds each lookup's socket row: by netlink, one query each (microseconds, synchronous); else by
   * reading the tables once for the whole batch, tcp first, tcp6 only for what tcp did not have.
   */
  async function readRows(batch: Pending[]): Promise<void> {
    if (useSockDiag) {
      for (const p of batch) {
        const answer = sockDiagRow(p.client, p.proxy);
        p.row = answer === "unavailable" ? null : answer;
      }
    }
    if (!batch.some((p) => p.row === null)) return;
    const v4 = await fs.readFile(`${proc}/net/tcp`, "utf8").catch(() => "");
    for (const p of batch) if (p.row === null) p.row = findSocketRow(v4, p.client, p.proxy) ?? null;
    if (batch.some((p) => p.row === null)) {
      const v6 = await fs.readFile(`${proc}/net/tcp6`, "utf8").catch(() => "");
      for (const p of batch) if (p.row === null) p.row = findSocketRow(v6, p.client, p.proxy);
    }
  }

  /**
   * Resolves a batch of lookups with one pass over /proc. Without netlink, reading /proc/net/tcp is the
   * slow part (milliseconds) and a short-lived client (curl) may close its socket by then, so the fd scan
   * runs at the same time: it records which process holds which socket inode while the sockets surely still
   * exist, and each table row, once read, is looked up in that record. The scan uses synchronous /proc
   * reads (about twice as fast as async ones here) in slices of at most `sliceMs`, yielding between
   * slices so the relay never stalls.
   */
  async function runBatch(batch: Pending[]): Promise<void> {
    const owners = new Map<string, number>(); // "socket:[inode]" → pid
    let rowsKnown = false;
    const rowsRead = readRows(batch).then(() => (rowsKnown = true));
    let budget = maxFdReads;
    let sliceStart = performance.now();
    const maybeYield = async () => {
      if (performance.now() - sliceStart < sliceMs) return;
      await new Promise<void>((r) => setImmediate(r));
      sliceStart = performance.now();
    };
    const settle = (p: Pending, pid?: number) => {
      if (p.done) return;
      p.done = true;
      if (pid === undefined || !p.row) return p.resolve(undefined);
      const info = describeProcess(proc, pid, p.row.uid);
      hot.remember(pid);
      const user = users.name(p.row.uid);
      if (user) info.user = user;
      p.resolve(info);
    };
    /** Settles what can be settled; true when the whole batch is done. */
    const check = () => {
      let all = true;
      for (const p of batch) {
        if (p.done) continue;
        if (p.row === undefined) settle(p);
        else if (p.row) {
          const pid = owners.get(`socket:[${p.row.inode}]`);
          if (pid !== undefined) settle(p, pid);
        }
        all &&= p.done;
      }
      return all;
    };
    const scan = async (pid: number) => {
      let fds: string[];
      try {
        fds = fsSync.readdirSync(`${proc}/${pid}/fd`);
      } catch {
        return;
      }
      for (let i = 0; i < fds.length && budget > 0; i++, budget--) {
        try {
          const link = fsSync.readlinkSync(`${proc}/${pid}/fd/${fds[i]}`);
          if (link.startsWith("socket:[") && !owners.has(link)) owners.set(link, pid);
        } catch {
          // fd closed meanwhile
        }
        if (i % 64 === 63) await maybeYield();
      }
    };
    let entries: string[] = [];
    try {
      entries = fsSync.readdirSync(proc);
    } catch {
      // no procfs
    }
    const { order, recentCount } = scanOrder(entries, hot);
    const myUid = process.getuid?.() ?? -1;
    for (let n = 0; n < order.length; n++) {
      const pid = order[n]!;
      // Past the recent clients and the newest processes (where a short-lived client is), wait for the
      // table instead of scanning everything blind: the uid then narrows the rest, or nothing is left.
      if (n === recentCount + eagerPids && !rowsKnown) await rowsRead;
      if (budget <= 0 || check()) break;
      // Once the sockets' uids are known they narrow the search (root can read every process).
      if (rowsKnown && myUid === 0 && !hot.has(pid)) {
        const uids = new Set(batch.filter((p) => !p.done && p.row).map((p) => p.row!.uid));
        try {
          if (!uids.has(fsSync.statSync(`${proc}/${pid}`).uid)) continue;
        } catch {
          continue;
        }
      }
      await scan(pid);
      await maybeYield();
    }
    await rowsRead;
    check();
    for (const p of batch) settle(p);
  }

  /**
   * A lookup starts a pass at once unless `maxScans` passes are running; lookups arriving then share the
   * next pass, so a burst of N connections costs a few passes, not N.
   */
  function kick() {
    if (running >= maxScans || queue.length === 0) return;
    running++;
    const batch = queue.splice(0, maxBatch);
    runBatch(batch)
      .catch(() => {
        for (const p of batch) if (!p.done) p.resolve(undefined);
      })
      .finally(() => {
        running--;
        kick();
      });
  }

  return function lookupLinux(client: Endpoint, proxy: Endpoint): Promise<ProcessInfo | undefined> {
    if (queue.length >= maxQueue) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      queue.push({ client, proxy, resolve, row: null, done: false });
      kick();
    });
  };
}
