// The sensor's side of one redirector session without a socket (src/ipc/peer-session.ts): frames in as
// bytes, actions out. The socket server (src/ipc/server.ts) only carries the actions out; its own
// behaviour over real sockets is test/integration/ipc*.test.ts.
import { describe, expect, test } from "bun:test";
import { encodeFrame, type IpcFrame } from "../../src/ipc/frames.ts";
import { IpcPeerSession, type PeerAction, type SessionCounters } from "../../src/ipc/peer-session.ts";
import type { ConnMeta } from "../../src/tap/types.ts";

const TOKEN = "t".repeat(43);
const meta = (connId: string): ConnMeta => ({ connId, startedAt: 1, client: { ip: "127.0.0.1", port: 1 }, server: { ip: "127.0.0.1", port: 443 }, host: "api.openai.com", mode: "mitm", captureMethod: "mitm_proxy" });
const hello = (proto?: number, token = TOKEN): IpcFrame => ({ t: "hello", token, version: "0.1.0", pid: 7, runId: "run", ...(proto !== undefined && { proto }) });
const bytes = (...frames: IpcFrame[]) => Buffer.concat(frames.map(encodeFrame));
const kinds = (actions: PeerAction[]) => actions.map((a) => (a.t === "to-peer" ? `to-peer ${a.frame.t}` : a.t === "drop" ? `drop ${a.reason}` : a.t === "close-at-sink" ? `close-at-sink ${a.connId}` : a.t === "ack-when-stored" ? `ack ${a.connId}` : a.t));

function session(maxOpen = 10): { s: IpcPeerSession; counters: SessionCounters } {
  const counters = { framesIn: 0, badFrames: 0, authFailures: 0, connsSeen: 0 };
  return { s: new IpcPeerSession(1, TOKEN, maxOpen, counters), counters };
}

describe("IPC peer session", () => {
  test("hello with the token, then frames to the sink in order; proto 2 gets an ack per close", () => {
    const { s, counters } = session();
    const out = s.push(bytes(hello(2), { t: "open", meta: meta("c1") }, { t: "data", connId: "c1", dir: "c2s", ts: 2, bytes: new Uint8Array([1]) }, { t: "close", connId: "c1", ts: 3 }));
    expect(kinds(out)).toEqual(["to-peer welcome", "open", "data", "close", "ack c1"]);
    expect(s.state).toMatchObject({ s: "authed", pid: 7, acks: true });
    expect(s.label).toBe("redirector pid 7 run run");
    expect(counters).toEqual({ framesIn: 4, badFrames: 0, authFailures: 0, connsSeen: 1 });
  });

  test("activity frames (eBPF process.exec / file.write) go to the sink too", () => {
    const { s } = session();
    expect(kinds(s.push(bytes(hello(3), { t: "activity", items: [{ kind: "exec", ts: 1, pid: 2, ppid: 1, uid: 0, comm: "sh", exe: "/bin/sh", argv: ["sh"], argvTruncated: false }] })))).toEqual(["to-peer welcome", "activity"]);
  });

  test("a proto-1 redirector gets no acks; frames split anywhere give the same actions", () => {
    const all = bytes(hello(), { t: "open", meta: meta("c1") }, { t: "close", connId: "c1", ts: 3 });
    for (let cut = 1; cut < all.length; cut += 7) {
      const { s } = session();
      expect(kinds([...s.push(all.subarray(0, cut)), ...s.push(all.subarray(cut))])).toEqual(["to-peer welcome", "open", "close"]);
    }
  });

  test("no token, the wrong token, or no hello in time: dropped as an auth failure", () => {
    const a = session();
    expect(kinds(a.s.push(bytes({ t: "open", meta: meta("c1") })))).toEqual(["drop expected hello, got open"]);
    const b = session();
    expect(kinds(b.s.push(bytes(hello(2, "x".repeat(43)))))).toEqual(["drop wrong token from pid 7"]);
    const c = session();
    expect(kinds(c.s.helloTimeout(5000))).toEqual(["drop no hello within 5000 ms"]);
    for (const x of [a, b, c]) expect([x.counters.authFailures, x.s.gone]).toEqual([1, true]);
    // Gone is gone: later bytes and timers do nothing.
    expect(a.s.push(bytes(hello()))).toEqual([]);
    expect(a.s.helloTimeout(1)).toEqual([]);
  });

  test("past the open-connection bound, or a bad frame after hello: dropped, and its connections closed at the sink", () => {
    const { s, counters } = session(2);
    const out = s.push(bytes(hello(2), { t: "open", meta: meta("c1") }, { t: "open", meta: meta("c2") }, { t: "open", meta: meta("c3") }, { t: "data", connId: "c1", dir: "c2s", ts: 2, bytes: new Uint8Array([1]) }));
    expect(kinds(out)).toEqual(["to-peer welcome", "open", "open", "drop more than 2 open connections", "close-at-sink c1", "close-at-sink c2"]);
    expect(counters.badFrames).toBe(1);
    const g = session();
    expect(kinds(g.s.push(bytes(hello(2), { t: "welcome", version: "x" })))).toEqual(["to-peer welcome", "drop unexpected welcome frame after hello"]);
    const garbage = session();
    const bad = garbage.s.push(Buffer.from("GET / HTTP/1.1\r\n\r\n"));
    expect(bad.at(-1)?.t).toBe("drop");
    expect(garbage.counters.authFailures).toBe(1);
  });

  test("end(): open connections closed at the sink, unless the redirector resends them (acks)", () => {
    const { s } = session();
    s.push(bytes(hello(2), { t: "open", meta: meta("c1") }, { t: "open", meta: meta("c2") }, { t: "close", connId: "c1", ts: 3 }));
    expect(s.end("ipc: redirector disconnected")).toEqual([{ t: "close-at-sink", connId: "c2", reason: "ipc: redirector disconnected" }]);
    expect(s.end("again")).toEqual([]);
    const kept = session();
    kept.s.push(bytes(hello(2), { t: "open", meta: meta("c1") }));
    expect(kept.s.end("ipc: sensor stopped", false)).toEqual([]);
  });
});
