// proc.bpf.c's records → HostActivity: execs as they come, file writes merged per (process, open file) until
// the file is closed, the process exits, or it stays idle. Sans-IO: the clock (tick) and the process lookup
// are injected; tests feed decoded records.
import { createHash, type Hash } from "node:crypto";
import path from "node:path";
import type { ExecActivity, FileWriteActivity, HostActivity } from "../../tap/activity.ts";
import { provisionalRoot, type ProcRecord } from "./proc-records.ts";

type Rec<T extends ProcRecord["type"]> = Extract<ProcRecord, { type: T }>;

export interface ProcessFacts {
  comm?: string;
  exe?: string;
  ppid?: number;
  uid?: number;
}

export interface ActivityOptions {
  /** CLOCK_MONOTONIC ns → epoch ms. */
  toEpochMs: (tsNs: bigint) => number;
  /** What /proc says of a process the probe did not see start (the AI caller itself). */
  describe?: (pid: number) => ProcessFacts;
  /** Writes merged after this long without another write are reported. */
  idleMs?: number;
  /** Files being merged at once; past it the oldest is reported early. */
  maxOpen?: number;
  /** Paths and processes remembered. */
  maxRemembered?: number;
}

/**
 * Activity and, when its process was watched only provisionally (a ClientHello not judged yet, see
 * proc.bpf.c), the pid whose hello decides whether it is kept.
 */
export interface Observed {
  activity: HostActivity;
  provisionalRoot?: number;
}

export interface ActivityStats {
  execs: number;
  fileWrites: number;
  /** Data chunks that never arrived (ring buffer full): their writes' hashes cover less than the bytes. */
  lostChunks: number;
  /** Writes to a file whose path record was lost. */
  unknownPaths: number;
}

interface Merge {
  key: string;
  pid: number;
  file: bigint;
  ino: bigint;
  path: string;
  first: number;
  last: number;
  bytes: number;
  writes: number;
  offset?: number;
  hash: Hash;
  hashed: number;
  /** A chunk went missing: hashing stopped there. */
  broken: boolean;
  /** Chunks announced by the current write, next seq; its bytes and those its chunks carried. */
  expect: number;
  nextSeq: number;
  curRet: number;
  curGot: number;
  preview: Uint8Array[];
  previewBytes: number;
  /** Every write so far was under this provisional mark (undefined once one was confirmed). */
  provisionalRoot?: number;
}

const PREVIEW_BYTES = 256;

export class ProcActivity {
  private readonly paths = new Map<bigint, { ino: bigint; path: string }>();
  private readonly procs = new Map<number, ProcessFacts & { cwd?: string }>();
  private readonly open = new Map<string, Merge>();
  private out: Observed[] = [];
  private readonly counters: ActivityStats = { execs: 0, fileWrites: 0, lostChunks: 0, unknownPaths: 0 };

  constructor(private readonly opts: ActivityOptions) {}

  push(r: ProcRecord): void {
    switch (r.type) {
      case "exec":
        return this.onExec(r);
      case "path":
        remember(this.paths, r.file, { ino: r.ino, path: r.path }, this.opts.maxRemembered ?? 8192);
        return;
      case "write":
        return this.onWrite(r);
      case "chunk":
        return this.onChunk(r);
      case "close":
        return this.flush(`${r.pid}:${r.file}`, "close");
      case "exit":
        for (const m of [...this.open.values()]) if (m.pid === r.pid) this.flush(m.key, "exit");
        this.procs.delete(r.pid);
        return;
      case "hello":
        return;
    }
  }

  /** Reports merges idle since before `nowMs`. */
  tick(nowMs: number): void {
    const idle = this.opts.idleMs ?? 1000;
    for (const m of [...this.open.values()]) if (nowMs - m.last >= idle) this.flush(m.key, "idle");
  }

  /** Reports everything still merging (shutdown). */
  flushAll(reason = "shutdown"): void {
    for (const key of [...this.open.keys()]) this.flush(key, reason);
  }

  /** Activity produced since the last call. */
  take(): HostActivity[] {
    return this.takeObserved().map((o) => o.activity);
  }

  /** Activity produced since the last call, with the provisional marks it was recorded under. */
  takeObserved(): Observed[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  stats(): ActivityStats & { merging: number } {
    return { ...this.counters, merging: this.open.size };
  }

  private onExec(r: Rec<"exec">): void {
    const exe = r.filename && !path.isAbsolute(r.filename) && r.cwd ? path.join(r.cwd, r.filename) : r.filename || r.argv[0] || r.comm;
    remember(this.procs, r.pid, { comm: r.comm, exe, ppid: r.ppid, uid: r.uid, cwd: r.cwd }, this.opts.maxRemembered ?? 8192);
    const a: ExecActivity = {
      kind: "exec",
      ts: this.opts.toEpochMs(r.tsNs),
      pid: r.pid,
      ppid: r.ppid,
      uid: r.uid,
      comm: r.comm,
      exe,
      argv: r.argv,
      argvTruncated: r.argvTruncated,
      ...(r.cwd !== undefined && { cwd: r.cwd }),
    };
    this.counters.execs++;
    this.out.push({ activity: a, ...withRoot(r.watch) });
  }

  private onWrite(r: Rec<"write">): void {
    const key = `${r.pid}:${r.file}`;
    let m = this.open.get(key);
    if (m && m.ino !== r.ino) {
      this.flush(key, "reused");
      m = undefined;
    }
    const ts = this.opts.toEpochMs(r.tsNs);
    if (!m) {
      // Ask /proc now, while the writer surely lives (an exec record already told us about its children).
      if (!this.procs.has(r.pid) && this.opts.describe) remember(this.procs, r.pid, this.opts.describe(r.pid), this.opts.maxRemembered ?? 8192);
      const known = this.paths.get(r.file);
      const p = known && known.ino === r.ino ? known.path : undefined;
      if (p === undefined) this.counters.unknownPaths++;
      m = {
        key,
        pid: r.pid,
        file: r.file,
        ino: r.ino,
        path: p ?? `(inode ${r.ino})`,
        first: ts,
        last: ts,
        bytes: 0,
        writes: 0,
        ...(r.offset >= 0 && { offset: r.offset }),
        hash: createHash("sha256"),
        hashed: 0,
        broken: false,
        expect: 0,
        nextSeq: 0,
        curRet: 0,
        curGot: 0,
        preview: [],
        previewBytes: 0,
        ...withRoot(r.watch),
      };
      this.open.set(key, m);
      if (this.open.size > (this.opts.maxOpen ?? 1024)) this.flush(this.open.keys().next().value!, "limit");
    }
    this.endWrite(m);
    if (provisionalRoot(r.watch) === undefined) delete m.provisionalRoot;
    m.last = ts;
    m.bytes += r.ret;
    m.writes++;
    m.expect = r.chunks;
    m.nextSeq = 0;
    m.curRet = r.ret;
    m.curGot = 0;
  }

  /**
   * The hash covers a prefix of what was written: once a write's chunks fall short of its bytes (lost, or a
   * write larger than the probe copies: 8 × 4 KiB), hashing stops.
   */
  private endWrite(m: Merge): void {
    if (m.expect > m.nextSeq) this.loseChunks(m, m.expect - m.nextSeq);
    if (m.curGot < m.curRet) m.broken = true;
    m.expect = m.nextSeq = m.curRet = m.curGot = 0;
  }

  private onChunk(r: Rec<"chunk">): void {
    const m = this.open.get(`${r.pid}:${r.file}`);
    if (!m) return;
    if (r.seq !== m.nextSeq) {
      this.loseChunks(m, Math.max(1, r.seq - m.nextSeq));
      m.nextSeq = r.seq;
    }
    m.nextSeq++;
    m.curGot += r.data.length;
    if (!m.broken) {
      m.hash.update(r.data);
      m.hashed += r.data.length;
    }
    if (m.previewBytes < PREVIEW_BYTES && !m.broken) {
      const part = r.data.subarray(0, PREVIEW_BYTES - m.previewBytes);
      m.preview.push(part);
      m.previewBytes += part.length;
    }
  }

  private loseChunks(m: Merge, n: number): void {
    this.counters.lostChunks += n;
    m.broken = true;
  }

  private flush(key: string, reason: string): void {
    const m = this.open.get(key);
    if (!m) return;
    this.open.delete(key);
    this.endWrite(m);
    const facts = this.procs.get(m.pid) ?? {};
    const preview = m.previewBytes > 0 ? new TextDecoder("utf-8").decode(concat(m.preview, m.previewBytes)).slice(0, PREVIEW_BYTES) : undefined;
    const a: FileWriteActivity = {
      kind: "file_write",
      ts: m.first,
      endTs: m.last,
      pid: m.pid,
      ...(facts.ppid !== undefined && { ppid: facts.ppid }),
      ...(facts.uid !== undefined && { uid: facts.uid }),
      ...(facts.comm !== undefined && { comm: facts.comm }),
      ...(facts.exe !== undefined && { exe: facts.exe }),
      path: m.path,
      inode: Number(m.ino),
      bytes: m.bytes,
      writes: m.writes,
      ...(m.offset !== undefined && { offset: m.offset }),
      ...(m.hashed > 0 && { contentHash: `sha256:${m.hash.digest("hex").slice(0, 16)}` }),
      hashedBytes: m.hashed,
      ...(preview !== undefined && { preview }),
      flushedBy: reason,
    };
    this.counters.fileWrites++;
    this.out.push({ activity: a, ...(m.provisionalRoot !== undefined && { provisionalRoot: m.provisionalRoot }) });
  }
}

function withRoot(watch: number): { provisionalRoot?: number } {
  const root = provisionalRoot(watch);
  return root === undefined ? {} : { provisionalRoot: root };
}

function concat(parts: Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p.subarray(0, n - at), at);
    at += Math.min(p.length, n - at);
  }
  return out;
}

function remember<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value!);
}
