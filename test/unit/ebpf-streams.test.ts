// TlsStreams: probe records → tap connections. Fed records as decodeRecord() returns them.
import { describe, expect, test } from "bun:test";
import { batchRecords, decodeRecord, HEADER_SIZE, KIND, type TlsRecord } from "../../src/capture/ebpf/records.ts";
import { TlsStreams } from "../../src/capture/ebpf/streams.ts";
import type { ConnMeta, Direction, TapSink } from "../../src/tap/types.ts";

class Sink implements TapSink {
  calls: Array<["open", ConnMeta] | ["data", string, Direction, string] | ["close", string, string | undefined]> = [];
  open(meta: ConnMeta) {
    this.calls.push(["open", meta]);
  }
  data(connId: string, dir: Direction, bytes: Uint8Array) {
    this.calls.push(["data", connId, dir, new TextDecoder().decode(bytes)]);
  }
  close(connId: string, _ts: number, error?: string) {
    this.calls.push(["close", connId, error]);
  }
}

const SOCK = { family: 2, local: { ip: "10.0.0.2", port: 40000 }, remote: { ip: "1.2.3.4", port: 443 } };
let clock = 0n;
function rec(kind: TlsRecord["kind"], over: Partial<TlsRecord> = {}, text = ""): TlsRecord {
  clock += 1_000_000n;
  return { kind, tsNs: clock, session: "7:abc", pid: 7, tid: 7, offset: 0, aux: 0, fd: 5, op: "write", family: 0, comm: "curl", data: new TextEncoder().encode(text), ...over };
}

function streams(sink: Sink, more: Partial<ConstructorParameters<typeof TlsStreams>[0]> = {}) {
  return new TlsStreams({ tap: sink, runId: "t", describe: (pid, comm) => ({ pid, name: comm }), toEpochMs: (ns) => Number(ns) / 1e6, ...more });
}

describe("TlsStreams", () => {
  test("opens with the socket and SNI, delivers both directions in order, closes", () => {
    const sink = new Sink();
    const s = streams(sink);
    s.push(rec("sni", {}, "api.openai.com"));
    s.push(rec("data", { ...SOCK, offset: 0 }, "GET / HTTP/1.1\r\n"));
    s.push(rec("data", { ...SOCK, offset: 16 }, "\r\n"));
    s.push(rec("data", { ...SOCK, op: "read", offset: 0 }, "HTTP/1.1 200 OK"));
    s.push(rec("close", { offset: 18, aux: 15 }));
    expect(sink.calls.map((c) => c.slice(0, 3))).toEqual([
      ["open", expect.objectContaining({ connId: "t-1", host: "api.openai.com", sni: "api.openai.com", client: SOCK.local, server: SOCK.remote, captureMethod: "ebpf_uprobe", process: { pid: 7, name: "curl" } })],
      ["data", "t-1", "c2s"],
      ["data", "t-1", "c2s"],
      ["data", "t-1", "s2c"],
      ["close", "t-1", undefined],
    ]);
    expect(s.stats()).toMatchObject({ sessions: 1, activeSessions: 0, gaps: 0, bytes: 33 });
  });

  test.each([
    ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "h2"],
    ["POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n", "http/1.1"],
    ["\x16\x03\x01 not http", undefined],
  ])("the client's first bytes stand in for ALPN: %j → %s", (first, alpn) => {
    const sink = new Sink();
    streams(sink).push(rec("data", { ...SOCK, offset: 0 }, first));
    expect((sink.calls[0]![1] as ConnMeta).alpn).toBe(alpn);
  });

  test("bytes before the socket is known are held until the bind record (Node's own socket I/O)", () => {
    const sink = new Sink();
    const s = streams(sink);
    s.push(rec("data", { offset: 0 }, "POST /v1"));
    expect(sink.calls).toEqual([]);
    s.push(rec("bind", SOCK));
    expect(sink.calls.map((c) => c[0])).toEqual(["open", "data"]);
    expect((sink.calls[0]![1] as ConnMeta).client).toEqual(SOCK.local);
  });

  test("held bytes are bounded per session and over all sessions", () => {
    const sink = new Sink();
    const s = streams(sink, { maxHeldBytes: 10, maxHeldTotalBytes: 12 });
    s.push(rec("data", { offset: 0 }, "123456"));
    s.push(rec("data", { session: "7:b", offset: 0 }, "123456"));
    expect(sink.calls).toEqual([]);
    expect(s.stats().heldBytes).toBe(12);
    s.push(rec("data", { session: "7:c", offset: 0 }, "1")); // over all: 13 > 12
    expect(sink.calls.map((c) => c[0])).toEqual(["open", "data"]);
    expect(s.stats().heldBytes).toBe(12);
    s.push(rec("data", { offset: 6 }, "7890x")); // this session: 11 > 10
    expect(sink.calls.filter((c) => c[0] === "open")).toHaveLength(2);
    expect(s.stats().heldBytes).toBe(6);
  });

  test("a session with no socket in time is opened without addresses", () => {
    const sink = new Sink();
    const s = streams(sink, { bindWaitMs: 100 });
    s.push(rec("data", { offset: 0 }, "x"));
    s.tick(Number(clock) / 1e6 + 50);
    expect(sink.calls).toEqual([]);
    s.tick(Number(clock) / 1e6 + 200);
    expect((sink.calls[0]![1] as ConnMeta).server).toEqual({ ip: "0.0.0.0", port: 0 });
    expect(s.stats().unbound).toBe(1);
  });

  test("a gap in the offsets ends the connection with the bytes lost; later records are ignored", () => {
    const sink = new Sink();
    const s = streams(sink);
    s.push(rec("data", { ...SOCK, offset: 0 }, "abcd"));
    s.push(rec("data", { ...SOCK, offset: 4100 }, "late"));
    s.push(rec("data", { ...SOCK, offset: 4104 }, "more"));
    s.push(rec("close", { offset: 4108 }));
    expect(sink.calls.map((c) => c[0])).toEqual(["open", "data", "close"]);
    expect(sink.calls[2]![2]).toBe("capture lost 4096 bytes (eBPF ring buffer full); the rest of this connection was not recorded");
    expect(s.stats()).toMatchObject({ gaps: 1, lostBytes: 4096 });
  });

  test("bytes lost at the very end show up in the close record's totals", () => {
    const sink = new Sink();
    const s = streams(sink);
    s.push(rec("data", { ...SOCK, offset: 0 }, "abcd"));
    s.push(rec("close", { offset: 4, aux: 300 }));
    expect(sink.calls.at(-1)).toEqual(["close", "t-1", "capture lost 300 bytes (eBPF ring buffer full); the rest of this connection was not recorded"]);
  });

  test("overlapping records deliver each byte once", () => {
    const sink = new Sink();
    const s = streams(sink);
    s.push(rec("data", { ...SOCK, offset: 0 }, "abcd"));
    s.push(rec("data", { ...SOCK, offset: 2 }, "cdef"));
    s.push(rec("data", { ...SOCK, offset: 0 }, "ab"));
    expect(sink.calls.filter((c) => c[0] === "data").map((c) => c[3])).toEqual(["abcd", "ef"]);
  });

  test("a process that reads first is the server: directions and ends are swapped", () => {
    const sink = new Sink();
    const s = streams(sink);
    s.push(rec("data", { ...SOCK, op: "read", offset: 0 }, "GET /"));
    s.push(rec("data", { ...SOCK, op: "write", offset: 0 }, "HTTP/1.1 200"));
    const meta = sink.calls[0]![1] as ConnMeta;
    expect([meta.client, meta.server]).toEqual([SOCK.remote, SOCK.local]);
    expect(sink.calls.slice(1).map((c) => c[2])).toEqual(["c2s", "s2c"]);
  });

  test("sessions to hosts that are not wanted are never opened, and the kernel is told", () => {
    const sink = new Sink();
    const muted: Array<[number, bigint]> = [];
    const s = streams(sink, { wanted: (host) => host === "api.openai.com", onIgnored: (pid, ssl) => muted.push([pid, ssl]) });
    s.push(rec("sni", {}, "example.com"));
    s.push(rec("data", { ...SOCK, offset: 0 }, "GET /"));
    s.push(rec("close", { offset: 5 }));
    s.push(rec("sni", { session: "7:def" }, "api.openai.com"));
    s.push(rec("data", { ...SOCK, session: "7:def", offset: 0 }, "GET /"));
    expect(sink.calls.map((c) => [c[0], c[0] === "open" ? (c[1] as ConnMeta).host : c[1]])).toEqual([["open", "api.openai.com"], ["data", "t-1"]]);
    expect(s.stats().ignored).toBe(1);
    expect(muted).toEqual([[7, 0xabcn]]);
  });

  test("sessions starting while paused are not recorded", () => {
    const sink = new Sink();
    let paused = true;
    const s = streams(sink, { paused: () => paused });
    s.push(rec("data", { ...SOCK, offset: 0 }, "a"));
    paused = false;
    s.push(rec("data", { ...SOCK, offset: 1 }, "b"));
    s.push(rec("close", { offset: 2 }));
    expect(sink.calls).toEqual([]);
  });

  test.each(["exit", "exec"] as const)("process %s closes that process's sessions, not others'", (kind) => {
    const sink = new Sink();
    const s = streams(sink);
    s.push(rec("data", { ...SOCK, offset: 0 }, "a"));
    s.push(rec("data", { ...SOCK, session: "8:abc", pid: 8, offset: 0 }, "b"));
    s.push(rec(kind));
    expect(sink.calls.at(-1)).toEqual(["close", "t-1", undefined]);
    expect(s.stats().activeSessions).toBe(1);
  });
});

describe("records", () => {
  test("decodes the C layout (struct rec) and splits a Worker batch", () => {
    const buf = new Uint8Array(HEADER_SIZE + 3);
    const v = new DataView(buf.buffer);
    v.setBigUint64(0, 123n, true);
    v.setBigUint64(8, 0xdeadbeefn, true);
    v.setBigUint64(16, 10n, true);
    v.setUint32(32, 42, true);
    v.setUint32(36, 43, true);
    v.setUint32(40, 3, true);
    v.setInt32(44, 9, true);
    v.setUint8(48, KIND.data);
    v.setUint8(49, 1);
    v.setUint16(50, 10, true);
    v.setUint16(52, 5555, true);
    v.setUint16(54, 443, true);
    buf[56 + 15] = 1; // ::1
    buf.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 9], 72); // ::ffff:127.0.0.9
    buf.set(new TextEncoder().encode("python3"), 88);
    buf.set([104, 105, 33], HEADER_SIZE);
    const batch = new Uint8Array(2 * (4 + buf.length));
    for (const at of [0, 4 + buf.length]) {
      new DataView(batch.buffer).setUint32(at, buf.length, true);
      batch.set(buf, at + 4);
    }
    const recs = [...batchRecords(batch)].map((b) => decodeRecord(b)!);
    expect(recs).toHaveLength(2);
    expect(recs[0]).toMatchObject({ kind: "data", tsNs: 123n, session: "42:deadbeef", pid: 42, tid: 43, offset: 10, fd: 9, op: "read", comm: "python3", local: { ip: "::1", port: 5555 }, remote: { ip: "127.0.0.9", port: 443 } });
    expect(new TextDecoder().decode(recs[0]!.data)).toBe("hi!");
    expect(decodeRecord(buf.subarray(0, HEADER_SIZE + 2))).toBeUndefined(); // shorter than its length says
  });
});
