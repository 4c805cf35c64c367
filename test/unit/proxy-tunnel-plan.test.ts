// startProxy's decisions around a tunnel, without sockets: the metadata a tunnel starts with, what a
// failed upstream connect means for the client and the tap, loop detection, the TLS-on-proxy-port warning
// rate. test/integration/proxy.test.ts drives the same paths through real sockets.
import { describe, expect, test } from "bun:test";
import { UpstreamError } from "../../src/mitm/upstream.ts";
import { connectFailure, isOwnAddress, tunnelMeta, unmapV4, WarnEvery } from "../../src/capture/proxy/tunnel-plan.ts";

const client = { ip: "127.0.0.1", port: 50_000 };

describe("tunnel metadata", () => {
  test("passthrough through the proxy until the tunnel decides; the asked port kept only when resolved elsewhere", () => {
    const direct = tunnelMeta({ connId: "c1", startedAt: 5, client, host: "api.openai.com", port: 443, target: { host: "10.0.0.7", port: 443 } });
    expect(direct).toEqual({ connId: "c1", startedAt: 5, client, server: { ip: "10.0.0.7", port: 443 }, host: "api.openai.com", mode: "passthrough", captureMethod: "mitm_proxy" });
    const resolved = tunnelMeta({ connId: "c2", startedAt: 5, client, host: "api.openai.com", port: 443, target: { host: "127.0.0.1", port: 8443 } });
    expect(resolved.port).toBe(443);
    expect(resolved.server).toEqual({ ip: "127.0.0.1", port: 8443 });
    const transparent = tunnelMeta({ connId: "c3", startedAt: 5, client, host: "api.openai.com", port: 443, target: { host: "1.2.3.4", port: 443 }, captureMethod: "windivert" });
    expect(transparent.captureMethod).toBe("windivert");
  });
});

describe("upstream connect failure", () => {
  test("explicit proxy: 504 for a timeout, 502 for anything else; the tap gets a code and the error", () => {
    const timeout = connectFailure(new UpstreamError("timeout", "connect to x:443 timed out after 15000 ms"), false);
    expect(timeout.reply).toEqual({ kind: "http-error", status: 504, reason: "connect to x:443 timed out after 15000 ms" });
    expect(timeout.meta).toEqual({ upstreamError: "connect to x:443 timed out after 15000 ms", passthroughCode: "upstream-connect-failed", passthroughReason: "upstream connect failed" });
    expect(connectFailure(new UpstreamError("refused", "refused"), false).reply).toMatchObject({ status: 502 });
    expect(connectFailure(new Error("boom"), false).reply).toMatchObject({ status: 502, reason: "boom" });
  });

  test("transparent capture: the client sees a dropped connection, the tap still the code", () => {
    const f = connectFailure(new UpstreamError("timeout", "t"), true);
    expect(f.reply).toEqual({ kind: "drop" });
    expect(f.meta.passthroughCode).toBe("upstream-connect-failed");
  });
});

describe("loops and addresses", () => {
  test("loopback names, the listen address, and the wildcard's own forms reach this proxy", () => {
    expect(isOwnAddress("localhost", "127.0.0.1")).toBe(true);
    expect(isOwnAddress("127.9.9.9", "127.0.0.1")).toBe(true);
    expect(isOwnAddress("::1", "::")).toBe(true);
    expect(isOwnAddress("::ffff:10.0.0.5", "10.0.0.5")).toBe(true);
    expect(isOwnAddress("0.0.0.0", "0.0.0.0")).toBe(true);
    expect(isOwnAddress("0.0.0.0", "10.0.0.5")).toBe(false);
    expect(isOwnAddress("api.openai.com", "0.0.0.0")).toBe(false);
    expect(isOwnAddress("10.0.0.6", "10.0.0.5")).toBe(false);
  });

  test("mapped IPv4 is unmapped, anything else kept", () => {
    expect(unmapV4("::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(unmapV4("::FFFF:10.1.2.3")).toBe("10.1.2.3");
    expect(unmapV4("::1")).toBe("::1");
    expect(unmapV4("::ffff:abcd")).toBe("::ffff:abcd");
  });
});

test("a warning at most once per interval", () => {
  const w = new WarnEvery(60_000);
  expect(w.due(1_000)).toBe(true);
  expect(w.due(30_000)).toBe(false);
  expect(w.due(60_999)).toBe(false);
  expect(w.due(61_000)).toBe(true);
});
