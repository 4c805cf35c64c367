// The small pure parts of interception: the intercept-or-pass decision, --resolve, pinned hosts, the
// client alert watcher, and the per-connection tap gate (ordering, bounds, a throwing sink).
import { describe, expect, test } from "bun:test";
import type { ConnMeta, TapSink } from "../../src/tap/types.ts";
import type { ClientHelloResult } from "../../src/wire/tls-client-hello.ts";
import { ConnTap, safeTap } from "../../src/mitm/conn-tap.ts";
import { clientIdentity, PinnedClients } from "../../src/mitm/pinned.ts";
import { AlertWatcher, rejectsCertificate } from "../../src/mitm/tls-alert.ts";
import { decide } from "../../src/mitm/tunnel.ts";
import { resolveTarget } from "../../src/mitm/upstream.ts";

const hello = (sni: string | undefined, alpn: string[] = ["h2", "http/1.1"]): ClientHelloResult => ({
  status: "ok",
  hello: { sni, alpn, legacyVersion: 0x0303, supportedVersions: [0x0304] },
});
const issuer = { leafFor: async () => ({ cert: "", key: "" }) };
const policy = (over: Partial<Parameters<typeof decide>[0]> = {}) => ({
  tlsMitm: true,
  allTraffic: false,
  issuer,
  isAiHost: (h: string) => h === "api.openai.com",
  ...over,
});

describe("decide", () => {
  test("AI host with a CA is intercepted, ALPN limited to what we decode", () => {
    expect(decide(policy(), hello("api.openai.com"), "api.openai.com", 443)).toEqual({ intercept: true, name: "api.openai.com", alpn: ["h2", "http/1.1"] });
    expect(decide(policy(), hello("api.openai.com", ["h2"]), "api.openai.com", 443)).toMatchObject({ intercept: true, alpn: ["h2"] });
    expect(decide(policy(), hello("api.openai.com", ["spdy/3", "http/1.1"]), "api.openai.com", 443)).toMatchObject({ intercept: true, alpn: ["http/1.1"] });
    expect(decide(policy(), hello("api.openai.com", []), "api.openai.com", 443)).toEqual({ intercept: true, name: "api.openai.com", alpn: [] });
  });
  test("SNI wins over the CONNECT host; no SNI falls back to it", () => {
    expect(decide(policy(), hello("api.openai.com"), "1.2.3.4", 443)).toMatchObject({ intercept: true });
    expect(decide(policy(), hello(undefined), "api.openai.com", 443)).toMatchObject({ intercept: true, name: "api.openai.com" });
  });
  test("every reason to pass through: a code, and the detail in the reason", () => {
    const r = (p: ReturnType<typeof policy>, h: ClientHelloResult) => decide(p, h, "api.openai.com", 443);
    const code = (d: ReturnType<typeof decide>) => (d.intercept ? "intercept" : d.code);
    expect(code(r(policy(), { status: "not-tls" }))).toBe("not-tls");
    expect(r(policy(), { status: "invalid", reason: "x" })).toEqual({ intercept: false, code: "bad-client-hello", reason: "unparseable ClientHello: x" });
    expect(r(policy(), { status: "too-large", limit: 9 })).toEqual({ intercept: false, code: "bad-client-hello", reason: "ClientHello larger than 9 bytes" });
    expect(code(r(policy(), { status: "need-more" }))).toBe("bad-client-hello");
    expect(code(r(policy({ tlsMitm: false }), hello("api.openai.com")))).toBe("mitm-off");
    expect(code(decide(policy(), hello("example.com"), "example.com", 443))).toBe("not-ai-host");
    expect(decide(policy({ allTraffic: true }), hello("example.com"), "example.com", 443)).toMatchObject({ intercept: true });
    expect(code(r(policy({ issuer: undefined }), hello("api.openai.com")))).toBe("no-ca");
    expect(r(policy(), hello("api.openai.com", ["h3", "spdy/3"]))).toMatchObject({ intercept: false, code: "alpn-unsupported", reason: expect.stringContaining("spdy/3") });
    expect(code(r(policy({ isAiHost: () => { throw new Error("matcher bug"); } }), hello("api.openai.com")))).toBe("not-ai-host");
  });
});

test("resolveTarget: addr, addr:port, v6 with and without port, miss", () => {
  const m = new Map([
    ["a.test:443", "127.0.0.1"],
    ["b.test:443", "127.0.0.1:8443"],
    ["c.test:443", "[::1]:9443"],
    ["d.test:443", "::1"],
  ]);
  expect(resolveTarget(m, "A.test", 443)).toEqual({ host: "127.0.0.1", port: 443 });
  expect(resolveTarget(m, "b.test", 443)).toEqual({ host: "127.0.0.1", port: 8443 });
  expect(resolveTarget(m, "c.test", 443)).toEqual({ host: "::1", port: 9443 });
  expect(resolveTarget(m, "d.test", 443)).toEqual({ host: "::1", port: 443 });
  expect(resolveTarget(m, "b.test", 80)).toEqual({ host: "b.test", port: 80 });
});

describe("pinned clients", () => {
  const curlRoot = clientIdentity({ pid: 10, exe: "/usr/bin/curl", uid: 0, user: "root" }, "127.0.0.1");
  const curlNobody = clientIdentity({ pid: 11, exe: "/usr/bin/curl", uid: 65534, user: "nobody" }, "127.0.0.1");
  test("identity: executable + user, else pid, else address", () => {
    expect(curlRoot.label).toBe("/usr/bin/curl (root)");
    expect(curlRoot.key).not.toBe(curlNobody.key);
    expect(clientIdentity({ pid: 12, exe: "/usr/bin/curl", uid: 0 }, "x").key).toBe(curlRoot.key); // another curl of root
    expect(clientIdentity({ pid: 12, name: "app", uid: 7 }, "x")).toEqual({ key: "pid:12", label: "pid 12 app (uid 7)", process: "pid:12@?", processLabel: "pid 12 app (uid 7)" });
    expect(clientIdentity(undefined, "10.0.0.5")).toEqual({ key: "ip:10.0.0.5", label: "the host 10.0.0.5", process: "addr:10.0.0.5", processLabel: "the host 10.0.0.5" });
    expect(clientIdentity(undefined, "127.0.0.1").key).toBeUndefined(); // never pinned: it would be every unidentified process
    expect(new PinnedClients({ threshold: 1 }).noteRejection("h", clientIdentity(undefined, "::1"), "x")).toEqual({ count: 0 });
  });
  test("a client is pinned at the threshold, for that host only; others are not", () => {
    let now = 1_000;
    const p = new PinnedClients({ threshold: 2, now: () => now });
    expect(p.noteRejection("api.openai.com", curlNobody, "unknown_ca")).toEqual({ count: 1 });
    expect(p.hasPinsFor("api.openai.com")).toBe(false);
    const { pin } = p.noteRejection("api.openai.com", curlNobody, "unknown_ca");
    expect(pin).toMatchObject({ host: "api.openai.com", client: curlNobody, until: 1_000 + p.ttlMs });
    expect(p.hasPinsFor("api.openai.com")).toBe(true);
    expect(p.pinned("api.openai.com", curlNobody)).toBeDefined();
    expect(p.pinned("api.openai.com", curlRoot)).toBeUndefined();
    expect(p.pinned("api.anthropic.com", curlNobody)).toBeUndefined();
    expect(p.list()).toEqual(["api.openai.com: /usr/bin/curl (nobody)"]);
    now += p.ttlMs; // expired
    expect(p.pinned("api.openai.com", curlNobody)).toBeUndefined();
    expect(p.hasPinsFor("api.openai.com")).toBe(false);
  });
  test("old evidence is forgotten; unpin by host; bounded", () => {
    let now = 0;
    const p = new PinnedClients({ threshold: 2, evidenceMs: 100, max: 2, now: () => now });
    p.noteRejection("a", curlRoot, "x");
    now = 200;
    expect(p.noteRejection("a", curlRoot, "x").count).toBe(1); // the first is too old
    for (const h of ["a", "b", "c"]) {
      p.noteRejection(h, curlNobody, "x");
      p.noteRejection(h, curlNobody, "x");
    }
    expect(p.size).toBe(2); // "a" went first
    expect(p.remove(["b"])).toEqual(["b"]);
    expect(p.list()).toEqual(["c: /usr/bin/curl (nobody)"]);
    expect(p.remove()).toEqual(["c"]);
  });
  test("hang-ups after our ServerHello pin that process only (pid + start time), for a shorter time", () => {
    let now = 0;
    const p = new PinnedClients({ threshold: 2, now: () => now });
    const node = (pid: number, startTime?: number) => clientIdentity({ pid, exe: "/usr/bin/node", uid: 0, user: "root", startTime }, "127.0.0.1");
    const app = node(40, 9_000);
    expect(p.noteRejection("h", app, "hung up", "process")).toEqual({ count: 1 });
    expect(p.noteRejection("h", app, "hung up", "client")).toEqual({ count: 1 }); // the two kinds of evidence do not add up
    const { pin } = p.noteRejection("h", app, "hung up", "process");
    expect(pin).toMatchObject({ scope: "process", until: p.processTtlMs });
    expect(p.processTtlMs).toBeLessThan(p.ttlMs);
    expect(p.pinned("h", node(40, 9_000))).toBe(pin!);
    expect(p.pinned("h", node(41, 9_000))).toBeUndefined(); // another run of the same executable and user
    expect(p.pinned("h", node(40, 9_500))).toBeUndefined(); // the pid reused by a later process
    expect(p.pinned("other", app)).toBeUndefined();
    expect(p.list()).toEqual(["h: pid 40 /usr/bin/node (root), this process only"]);
    // Evidence spread wider than the process window does not add up.
    const q = new PinnedClients({ threshold: 2, processEvidenceMs: 100, now: () => now });
    q.noteRejection("h", app, "x", "process");
    now = 200;
    expect(q.noteRejection("h", app, "x", "process").count).toBe(1);
    now = p.processTtlMs;
    expect(p.pinned("h", app)).toBeUndefined();
    // An unidentified local process is never pinned, on either evidence.
    expect(p.noteRejection("h", clientIdentity(undefined, "127.0.0.1"), "x", "process")).toEqual({ count: 0 });
  });
});

describe("alert watcher", () => {
  const alert = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x30];
  test("finds a plaintext alert after other records, split anywhere", () => {
    const stream = new Uint8Array([0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x16, 0x03, 0x03, 0x00, 0x03, 9, 9, 9, ...alert]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const w = new AlertWatcher();
      w.push(stream.subarray(0, cut));
      w.push(stream.subarray(cut));
      expect(w.alert).toEqual({ level: "fatal", description: 48, name: "unknown_ca", afterServerHello: false });
    }
  });
  test("only a certificate alert sent after our ServerHello is evidence of a rejection", () => {
    const seen = (bytes: number[], after: boolean) => {
      const w = new AlertWatcher();
      w.push(new Uint8Array(bytes), after);
      return w;
    };
    expect(rejectsCertificate(seen(alert, true).alert)).toBe(true);
    expect(rejectsCertificate(seen(alert, false).alert)).toBe(false); // pipelined behind the ClientHello
    expect(rejectsCertificate(seen([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32], true).alert)).toBe(false); // decode_error
  });
  test("an encrypted record of alert size is not mistaken for one; bytes are counted", () => {
    const w = new AlertWatcher();
    w.push(new Uint8Array([0x17, 0x03, 0x03, 0x00, 0x02, 0x02, 0x30]));
    expect(w.alert).toBeUndefined();
    expect(w.bytesSeen).toBe(7);
  });
});

describe("ConnTap", () => {
  const meta = (): ConnMeta => ({
    connId: "c1",
    startedAt: 1,
    client: { ip: "127.0.0.1", port: 1 },
    server: { ip: "127.0.0.1", port: 2 },
    host: "h",
    mode: "mitm",
    captureMethod: "mitm_proxy",
  });
  const recorder = () => {
    const log: string[] = [];
    const metas: ConnMeta[] = [];
    const sink: TapSink = {
      open: (m) => {
        metas.push(m);
        log.push("open");
      },
      data: (_id, dir, b) => log.push(`${dir}:${b.length}`),
      close: (_id, _ts, e) => log.push(`close:${e ?? ""}`),
    };
    return { log, metas, sink };
  };

  test("data before the lookup is held, then flushed after open with the process", async () => {
    const r = recorder();
    const t = new ConnTap(r.sink, meta());
    let settle!: (p: { pid: number }) => void;
    t.openAfter(new Promise((res) => (settle = res)), 1000);
    t.data("c2s", new Uint8Array(3));
    t.data("s2c", new Uint8Array(4));
    expect(r.log).toEqual([]);
    settle({ pid: 42 });
    await Bun.sleep(1);
    t.data("c2s", new Uint8Array(5));
    t.close();
    expect(r.log).toEqual(["open", "c2s:3", "s2c:4", "c2s:5", "close:"]);
    expect(r.metas[0]!.process).toEqual({ pid: 42 });
  });

  test("a lookup that never answers opens after the timeout; a close before it waits for it", async () => {
    const r = recorder();
    const t = new ConnTap(r.sink, meta());
    t.openAfter(new Promise(() => {}), 20);
    t.data("c2s", new Uint8Array(1));
    t.close("boom");
    expect(r.log).toEqual([]);
    await Bun.sleep(40);
    expect(r.log).toEqual(["open", "c2s:1", "close:boom"]);
    expect(r.metas[0]!.process).toBeUndefined();
  });

  test("the hold buffer is bounded: past it the connection opens without waiting", () => {
    const r = recorder();
    const t = new ConnTap(r.sink, meta(), { maxBufferedBytes: 10 });
    t.openAfter(new Promise(() => {}), 10_000);
    t.data("c2s", new Uint8Array(6));
    expect(r.log).toEqual([]);
    t.data("c2s", new Uint8Array(6));
    expect(r.log).toEqual(["open", "c2s:6", "c2s:6"]);
  });

  test("safeTap swallows a throwing sink and reports each failure, flagging the first", () => {
    const reported: boolean[] = [];
    const s = safeTap({ open: () => { throw new Error("x"); }, data: () => { throw new Error("x"); }, close: () => { throw new Error("x"); } }, (_e, first) => reported.push(first));
    const t = new ConnTap(s, meta());
    expect(() => {
      t.open();
      t.data("c2s", new Uint8Array(1));
      t.close();
    }).not.toThrow();
    expect(reported).toEqual([true, false, false]);
  });
});
