// startProxy's connection state, without sockets: admission and its counts (capture/proxy/admission.ts),
// the head phase's events and actions (head-phase.ts), a tunnel's branch after its upstream connect
// (tunnel-phase.ts), and a transparent connection's plan (tunnel-plan.ts). The same paths run through
// real sockets in test/integration/proxy.test.ts, pause.test.ts and proxy-upstream-idle.test.ts.
import { describe, expect, test } from "bun:test";
import { newProxyStats } from "../../src/mitm/stats.ts";
import { UpstreamError } from "../../src/mitm/upstream.ts";
import { ConnectionGate } from "../../src/capture/proxy/admission.ts";
import { HeadPhase, type HeadPhaseDeps } from "../../src/capture/proxy/head-phase.ts";
import { TunnelPhase } from "../../src/capture/proxy/tunnel-phase.ts";
import { transparentPlan, WarnEvery } from "../../src/capture/proxy/tunnel-plan.ts";

const client = { ip: "127.0.0.1", port: 50_000 };
const bytes = (s: string) => new TextEncoder().encode(s);
const CLIENT_HELLO_START = Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00]);

describe("admission", () => {
  test("counts in and out; past the limit refused (503 explicit, dropped transparent) and counted", () => {
    const stats = newProxyStats();
    const gate = new ConnectionGate(stats, 2);
    expect(gate.open("explicit")).toEqual({ kind: "admit" });
    expect(gate.open("transparent")).toEqual({ kind: "admit" });
    expect(gate.open("explicit")).toEqual({ kind: "refuse", status: 503, reason: "too many connections (limit 2)" });
    expect(gate.open("transparent")).toEqual({ kind: "drop" });
    expect(stats).toMatchObject({ connectionsTotal: 4, connectionsActive: 4, refusedOverLimit: 2 });
    // The refused ones close too, and then there is room again.
    gate.closed();
    gate.closed();
    gate.closed();
    expect(stats.connectionsActive).toBe(1);
    expect(gate.open("explicit")).toEqual({ kind: "admit" });
    expect(stats).toMatchObject({ connectionsTotal: 5, connectionsActive: 2, refusedOverLimit: 2 });
  });
});

function headPhase(over: Partial<HeadPhaseDeps> = {}) {
  const stats = newProxyStats();
  const phase = new HeadPhase({ client, maxHeadBytes: 1024, loops: () => false, paused: () => false, tlsWarning: new WarnEvery(60_000), stats, ...over });
  return { phase, stats };
}

describe("head phase", () => {
  test("CONNECT split over chunks: wait, then connect with what followed the head; later events ignored", () => {
    const { phase, stats } = headPhase();
    expect(phase.data(bytes("CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api"), 0)).toEqual({ kind: "wait" });
    expect(phase.state).toEqual({ phase: "reading" });
    const a = phase.data(bytes(".openai.com:443\r\n\r\n\x16\x03\x01"), 1);
    expect(a).toMatchObject({ kind: "connect", host: "api.openai.com", port: 443 });
    expect(a.kind === "connect" && [...a.rest]).toEqual([0x16, 0x03, 0x01]);
    expect(phase.state).toEqual({ phase: "done", by: "connect" });
    expect(phase.timeout()).toEqual({ kind: "ignore" });
    expect(phase.data(bytes("more"), 2)).toEqual({ kind: "ignore" });
    expect(stats.badRequests).toBe(0);
  });

  test("the head timer: a 400, counted, and nothing read after it is acted on", () => {
    const { phase, stats } = headPhase();
    expect(phase.data(bytes("CONNECT a:443 HTTP/1.1\r\n"), 0)).toEqual({ kind: "wait" });
    expect(phase.timeout()).toEqual({ kind: "reply-error", status: 400, reason: "no complete request head in time" });
    expect(phase.data(bytes("\r\n"), 1)).toEqual({ kind: "ignore" });
    expect(stats.badRequests).toBe(1);
  });

  test("bad and looping requests: HTTP error, counted, with a debug line naming the client", () => {
    const { phase, stats } = headPhase({ loops: (h, p) => h === "127.0.0.1" && p === 8080 });
    const a = phase.data(bytes("CONNECT 127.0.0.1:8080 HTTP/1.1\r\n\r\n"), 0);
    expect(a).toMatchObject({ kind: "reply-error", status: 400 });
    expect(a.kind === "reply-error" && a.debug).toContain("127.0.0.1:50000");
    expect(headPhase().phase.data(bytes("GET /x HTTP/1.1\r\n\r\n"), 0)).toMatchObject({ kind: "reply-error" });
    const big = headPhase({ maxHeadBytes: 64 });
    expect(big.phase.data(bytes(`CONNECT a:443 HTTP/1.1\r\nX: ${"y".repeat(100)}`), 0)).toMatchObject({ kind: "reply-error", status: 431 });
    expect(stats.badRequests).toBe(1);
    expect(big.stats.badRequests).toBe(1);
  });

  test("TLS on the proxy port: refused and counted every time, warned at most once a minute across connections", () => {
    const stats = newProxyStats();
    const tlsWarning = new WarnEvery(60_000);
    const refuse = (now: number) => headPhase({ stats, tlsWarning }).phase.data(CLIENT_HELLO_START, now);
    const first = refuse(0);
    expect(first.kind).toBe("refuse-tls");
    expect(first.kind === "refuse-tls" && first.warn).toContain("must start with http://");
    expect(refuse(30_000)).toEqual({ kind: "refuse-tls" });
    const later = refuse(61_000);
    expect(later.kind === "refuse-tls" && later.warn).toContain("3 such connection(s)");
    expect(stats.tlsToProxyPort).toBe(3);
  });

  test("plain HTTP takes every byte read; pause is read when the session starts and counted", () => {
    let paused = false;
    const { phase, stats } = headPhase({ paused: () => paused });
    const head = "GET http://localhost:11434/api/tags HTTP/1.1\r\nHost: localhost:11434\r\n\r\n";
    expect(phase.data(bytes(head.slice(0, 10)), 0)).toEqual({ kind: "wait" });
    paused = true;
    const a = phase.data(bytes(head.slice(10)), 0);
    expect(a.kind === "plain" && new TextDecoder().decode(a.bytes)).toBe(head);
    expect(a).toMatchObject({ kind: "plain", paused: true });
    expect(stats.paused).toBe(1);
    expect(headPhase().phase.data(bytes(head), 0)).toMatchObject({ kind: "plain", paused: false });
  });
});

describe("tunnel phase", () => {
  test("explicit proxy: connected → 200 then the tunnel; a crash tears down once", () => {
    const stats = newProxyStats();
    const t = new TunnelPhase(false, false, stats);
    expect(t.connected(false)).toEqual({ kind: "tunnel", established: true });
    expect(t.state).toEqual({ phase: "tunnel" });
    expect(t.connected(false)).toEqual({ kind: "ignore" });
    expect(t.tunnelThrew(new Error("bug"))).toEqual({ kind: "teardown", tapClose: "bug" });
    expect(t.state).toEqual({ phase: "crashed", error: "bug" });
    expect(t.tunnelThrew(new Error("again"))).toEqual({ kind: "ignore" });
    expect(stats).toMatchObject({ paused: 0, passthrough: 0, upstreamErrors: 0 });
  });

  test("paused when it started: blind relay, counted as paused and passthrough; transparent sends no 200", () => {
    const stats = newProxyStats();
    const t = new TunnelPhase(true, true, stats);
    expect(t.paused).toBe(true);
    expect(t.connected(false)).toEqual({ kind: "blind-relay", established: false });
    expect(t.state).toEqual({ phase: "blind" });
    expect(t.tunnelThrew(new Error("x"))).toEqual({ kind: "ignore" });
    expect(stats).toMatchObject({ paused: 1, passthrough: 1 });
  });

  test("the client left while connecting: abandon, close the tap with the reason", () => {
    const t = new TunnelPhase(false, false, newProxyStats());
    expect(t.connected(true)).toEqual({ kind: "abandon", tapClose: "client closed before the tunnel was up" });
    expect(t.state).toEqual({ phase: "abandoned" });
  });

  test("upstream unreachable: 504/502 explicit, drop transparent; counted; the tap gets the code", () => {
    const stats = newProxyStats();
    const explicit = new TunnelPhase(false, false, stats);
    const a = explicit.connectFailed(new UpstreamError("timeout", "timed out"));
    expect(a).toEqual({ kind: "fail", reply: { kind: "http-error", status: 504, reason: "timed out" }, meta: { upstreamError: "timed out", passthroughCode: "upstream-connect-failed", passthroughReason: "upstream connect failed" }, tapClose: "timed out" });
    expect(explicit.state).toEqual({ phase: "failed", error: "timed out" });
    expect(explicit.connected(false)).toEqual({ kind: "ignore" });
    const transparent = new TunnelPhase(false, true, stats);
    expect(transparent.connectFailed(new Error("refused"))).toMatchObject({ kind: "fail", reply: { kind: "drop" } });
    expect(stats.upstreamErrors).toBe(2);
  });
});

describe("transparent plan", () => {
  test("the capture layer's client and name win; the target is the original address; windivert by default", () => {
    const peer = { ip: "10.0.0.2", port: 40_000 };
    expect(transparentPlan({ ip: "1.2.3.4", port: 443, host: "API.OpenAI.com" }, peer)).toEqual({
      client: peer,
      host: "api.openai.com",
      port: 443,
      target: { host: "1.2.3.4", port: 443 },
      captureMethod: "windivert",
    });
    const real = { ip: "192.168.1.5", port: 51_000 };
    expect(transparentPlan({ ip: "1.2.3.4", port: 8443, client: real, captureMethod: "ebpf_uprobe" }, peer)).toMatchObject({ client: real, host: "1.2.3.4", captureMethod: "ebpf_uprobe" });
  });
});
