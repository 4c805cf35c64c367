// The sans-IO half of the eBPF process source: proc.bpf.c's record bytes decoded, file writes merged and
// hashed (a prefix only when chunks are lost or a write is larger than the probe copies), ClientHellos
// held until the TLS probes had their chance, then reported as metadata-only connections to AI hosts.
import { beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import net from "node:net";
import tls from "node:tls";
import { ProcActivity } from "../../src/capture/ebpf/proc-activity.ts";
import { HelloTracker } from "../../src/capture/ebpf/proc-hello.ts";
import { decodeRecord, EXEC_AT, PATH_AT, RECORD_SIZE, REC_CHUNK, REC_EXEC, REC_HELLO, REC_PATH, REC_WRITE, WATCH_CONFIRMED, WATCH_PROVISIONAL, type ProcRecord } from "../../src/capture/ebpf/proc-records.ts";
import type { FileWriteActivity } from "../../src/tap/activity.ts";

/** A real ClientHello: the first bytes node:tls sends for `servername`. */
async function realHello(servername: string): Promise<Uint8Array> {
  const got = Promise.withResolvers<Uint8Array>();
  const server = net.createServer((s) => {
    s.once("data", (d: Buffer) => {
      got.resolve(new Uint8Array(d));
      s.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const c = tls.connect({ host: "127.0.0.1", port: (server.address() as net.AddressInfo).port, servername, rejectUnauthorized: false });
  c.on("error", () => {});
  const bytes = await got.promise;
  server.close();
  return bytes;
}

const enc = new TextEncoder();
const sha = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex").slice(0, 16)}`;

function record(type: number, size: number, pid = 42, tsNs = 1_000_000n, watch = WATCH_CONFIRMED): { b: Uint8Array; v: DataView } {
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, pid, true);
  v.setUint32(8, pid, true);
  v.setUint32(12, type === REC_HELLO ? 0 : watch, true);
  v.setBigUint64(16, tsNs, true);
  return { b, v };
}

/** Path names leaf first, NUL-terminated, as walk_path writes them. */
function components(p: string): Uint8Array {
  return enc.encode(p.split("/").filter(Boolean).reverse().map((n) => `${n}\0`).join(""));
}

describe("decodeRecord", () => {
  test("exec: argv split at NULs, cwd rebuilt root first, a cut argv flagged", () => {
    const { b, v } = record(REC_EXEC, RECORD_SIZE.exec);
    v.setUint32(EXEC_AT.ppid, 7, true);
    v.setUint32(EXEC_AT.uid, 1000, true);
    b.set(enc.encode("sh"), EXEC_AT.comm);
    b.set(enc.encode("/usr/bin/sh"), EXEC_AT.filename);
    const argv = enc.encode("sh\0-c\0echo hi > f\0");
    b.set(argv, EXEC_AT.argv);
    v.setUint32(EXEC_AT.argvLen, argv.length, true);
    v.setUint32(EXEC_AT.argvFullLen, argv.length, true);
    const cwd = components("/home/me/work");
    b.set(cwd, EXEC_AT.cwd);
    v.setUint32(EXEC_AT.cwdLen, cwd.length, true);
    expect(decodeRecord(b)).toEqual({ type: "exec", pid: 42, tid: 42, watch: WATCH_CONFIRMED, tsNs: 1_000_000n, ppid: 7, uid: 1000, comm: "sh", filename: "/usr/bin/sh", argv: ["sh", "-c", "echo hi > f"], argvTruncated: false, cwd: "/home/me/work" });
    v.setUint32(EXEC_AT.argvFullLen, 100_000, true);
    expect((decodeRecord(b) as Extract<ProcRecord, { type: "exec" }>).argvTruncated).toBe(true);
  });

  test("short, empty or unknown records are refused, not misread", () => {
    expect(decodeRecord(new Uint8Array(8))).toBeUndefined();
    expect(decodeRecord(record(REC_EXEC, RECORD_SIZE.exec - 1).b)).toBeUndefined();
    expect(decodeRecord(record(99, 64).b)).toBeUndefined();
  });

  test("hello: IPv4 and IPv4-mapped IPv6 addresses, ports, the bytes", () => {
    const { b, v } = record(REC_HELLO, RECORD_SIZE.hello);
    v.setUint16(24, 10, true);
    v.setUint16(26, 50000, true);
    v.setUint16(28, 443, true);
    b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1], 40);
    b.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 56);
    v.setUint32(36, 3, true);
    b.set([0x16, 3, 1], 72);
    const r = decodeRecord(b) as Extract<ProcRecord, { type: "hello" }>;
    expect(r.local).toEqual({ ip: "127.0.0.1", port: 50000 });
    expect(r.remote).toEqual({ ip: "2001:db8::1", port: 443 });
    expect([...r.data]).toEqual([0x16, 3, 1]);
  });
});

function pathRec(file: bigint, ino: bigint, p: string): ProcRecord {
  const { b, v } = record(REC_PATH, RECORD_SIZE.path);
  v.setBigUint64(PATH_AT.file, file, true);
  v.setBigUint64(PATH_AT.ino, ino, true);
  const c = components(p);
  b.set(c, PATH_AT.path);
  v.setUint32(PATH_AT.len, c.length, true);
  return decodeRecord(b)!;
}

function writeRec(file: bigint, ret: number, chunks: number, tsNs = 1_000_000n, watch = WATCH_CONFIRMED): ProcRecord {
  const { b, v } = record(REC_WRITE, RECORD_SIZE.write, 42, tsNs, watch);
  v.setBigUint64(24, file, true);
  v.setBigUint64(32, 9n, true);
  v.setBigInt64(40, BigInt(ret), true);
  v.setBigInt64(48, -1n, true);
  v.setUint32(56, 3, true);
  v.setUint32(60, 1, true);
  v.setUint32(64, chunks, true);
  return decodeRecord(b)!;
}

function chunkRec(file: bigint, seq: number, data: Uint8Array): ProcRecord {
  const { b, v } = record(REC_CHUNK, RECORD_SIZE.chunk);
  v.setBigUint64(24, file, true);
  v.setUint32(32, data.length, true);
  v.setUint32(36, seq, true);
  b.set(data, 40);
  return decodeRecord(b)!;
}

describe("ProcActivity: file writes", () => {
  const make = () => new ProcActivity({ toEpochMs: (ns) => Number(ns) / 1e6, describe: () => ({ comm: "python3", ppid: 1 }), idleMs: 1000 });

  test("writes to one file merge until close; the hash covers all bytes in order", () => {
    const a = make();
    a.push(pathRec(1n, 9n, "/tmp/out.txt"));
    a.push(writeRec(1n, 6, 1));
    a.push(chunkRec(1n, 0, enc.encode("hello ")));
    a.push(writeRec(1n, 6, 1, 2_000_000n));
    a.push(chunkRec(1n, 0, enc.encode("world\n")));
    expect(a.take()).toEqual([]);
    a.push({ type: "close", pid: 42, tid: 42, watch: 1, tsNs: 3_000_000n, file: 1n });
    const [w] = a.take() as FileWriteActivity[];
    expect(w).toMatchObject({ path: "/tmp/out.txt", bytes: 12, writes: 2, hashedBytes: 12, contentHash: sha("hello world\n"), preview: "hello world\n", comm: "python3", flushedBy: "close", ts: 1, endTs: 2 });
  });

  test("a lost chunk stops the hash there: it covers a prefix, counted", () => {
    const a = make();
    a.push(pathRec(1n, 9n, "/tmp/big.bin"));
    a.push(writeRec(1n, 8192, 2));
    a.push(chunkRec(1n, 0, new Uint8Array(4096).fill(1)));
    a.push(writeRec(1n, 10, 1)); // the first write's second chunk never came
    a.push(chunkRec(1n, 0, new Uint8Array(10).fill(2)));
    a.tick(10_000);
    const [w] = a.take() as FileWriteActivity[];
    expect(w).toMatchObject({ bytes: 8202, hashedBytes: 4096, contentHash: sha(new Uint8Array(4096).fill(1)), flushedBy: "idle" });
    expect(a.stats().lostChunks).toBe(1);
  });

  test("exit reports the process's files; an unknown path says so", () => {
    const a = make();
    a.push(writeRec(5n, 3, 1));
    a.push(chunkRec(5n, 0, enc.encode("abc")));
    a.push({ type: "exit", pid: 42, tid: 42, watch: 0, tsNs: 5n });
    const [w] = a.take() as FileWriteActivity[];
    expect(w).toMatchObject({ path: "(inode 9)", flushedBy: "exit", contentHash: sha("abc") });
    expect(a.stats().unknownPaths).toBe(1);
  });
});

describe("ProcActivity: provisional watch marks", () => {
  const make = () => new ProcActivity({ toEpochMs: (ns) => Number(ns) / 1e6, describe: () => ({ comm: "python3", ppid: 1 }), idleMs: 1000 });
  const provisional = (pid: number) => (WATCH_PROVISIONAL | pid) >>> 0;

  test("an exec under a provisional mark names the process whose ClientHello decides it", () => {
    const a = make();
    const { b } = record(REC_EXEC, RECORD_SIZE.exec, 43, 1_000_000n, provisional(42));
    a.push(decodeRecord(b)!);
    a.push(decodeRecord(record(REC_EXEC, RECORD_SIZE.exec, 44).b)!);
    expect(a.takeObserved().map((o) => [o.activity.pid, o.provisionalRoot])).toEqual([[43, 42], [44, undefined]]);
  });

  test("a merged write keeps the mark only while every write had it", () => {
    const a = make();
    a.push(writeRec(1n, 3, 0, 1_000_000n, provisional(42)));
    a.push(writeRec(2n, 3, 0, 1_000_000n, provisional(42)));
    a.push(writeRec(2n, 3, 0, 2_000_000n, WATCH_CONFIRMED)); // confirmed meanwhile: the whole merge goes
    a.tick(10_000);
    expect(a.takeObserved().map((o) => o.provisionalRoot)).toEqual([42, undefined]);
  });
});

describe("HelloTracker", () => {
  const hellos = new Map<string, Uint8Array>();
  beforeAll(async () => {
    for (const sni of ["api.openai.com", "example.org", "api.anthropic.com"]) hellos.set(sni, await realHello(sni));
  });
  function hello(sni: string, port = 443): Extract<ProcRecord, { type: "hello" }> {
    return { type: "hello", pid: 42, tid: 42, watch: 0, tsNs: 0n, family: 2, local: { ip: "127.0.0.1", port: 50000 }, remote: { ip: "127.0.0.1", port }, fd: 5, data: hellos.get(sni)! };
  }
  const describePid = (pid: number) => ({ pid, name: "bun" });

  test("an AI host's hello is held, then reported metadata-only; a non-AI host's never", () => {
    const t = new HelloTracker({ runId: "r", describe: describePid, plaintextSeen: () => false, holdMs: 100 });
    expect(t.push(hello("api.openai.com"), 1000)).toBe(42);
    expect(t.push(hello("example.org"), 1000)).toBeUndefined();
    expect(t.tick(1050)).toEqual([]);
    const [meta] = t.tick(1100);
    expect(meta).toMatchObject({ host: "api.openai.com", sni: "api.openai.com", mode: "passthrough", passthroughReason: "tls_not_visible_to_uprobes", captureMethod: "ebpf_tracepoint", process: { pid: 42, name: "bun" } });
    expect(t.metadataOnlyProcesses()).toEqual([{ pid: 42, name: "bun", exe: undefined, hosts: ["api.openai.com"], connects: 1, lastMs: 1000 }]);
  });

  test("a connection the TLS probes read is not reported again", () => {
    const t = new HelloTracker({ runId: "r", describe: describePid, plaintextSeen: (pid, local) => pid === 42 && local.port === 50000, holdMs: 100 });
    t.push(hello("api.anthropic.com"), 0);
    expect(t.tick(1000)).toEqual([]);
    expect(t.stats()).toMatchObject({ aiHellos: 1, covered: 1, metadataOnly: 0 });
  });
});
