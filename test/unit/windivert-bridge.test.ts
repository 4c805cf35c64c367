// The divert listener on real sockets (127.0.0.1): peers the directory does not know are closed, known
// ones are handed to the proxy's transparent entry with the original destination, the --resolve style
// override, and a process lookup aimed at the original client socket. The real proxy behind it is
// exercised end to end in test/windows/tun-e2e.test.ts.
import { expect, test } from "bun:test";
import net from "node:net";
import { destinationFor, resolveOverride, startBridge } from "../../src/capture/windivert/bridge.ts";
import type { TransparentDestination } from "../../src/capture/proxy/server.ts";
import type { OriginalDestination } from "../../src/capture/windivert/redirector.ts";
import type { Endpoint } from "../../src/tap/types.ts";
import { silentLogger } from "../../src/util/log.ts";

test("unknown peers are closed; diverted ones are handed over, still readable", async () => {
  const known = new Map<number, OriginalDestination>();
  const handed: { dest: TransparentDestination; first: string }[] = [];
  let strangerPort = -1;
  const bridge = await startBridge({
    listen: { host: "127.0.0.1", port: 0 },
    log: silentLogger,
    lookupProcess: async () => undefined,
    directory: {
      // Like the real directory, wait a little for the announcement (here: the test's map entry).
      originalDestination: async (peer) => {
        for (let i = 0; i < 50 && !known.has(peer.port) && peer.port !== strangerPort; i++) await Bun.sleep(5);
        return known.get(peer.port);
      },
    },
    proxy: {
      handleTransparent(sock, dest) {
        sock.once("data", (d: Buffer) => {
          handed.push({ dest, first: d.toString() });
          sock.end("bye");
        });
        sock.resume();
      },
    },
  });
  try {
    const stranger = net.connect(bridge.address.port, "127.0.0.1");
    stranger.on("error", () => {});
    await new Promise((r) => stranger.once("connect", r));
    strangerPort = stranger.localPort!;
    await new Promise((r) => stranger.once("close", r));
    expect(bridge.stats()).toMatchObject({ accepted: 1, notDiverted: 1, handedOver: 0 });

    const c = net.connect(bridge.address.port, "127.0.0.1");
    await new Promise((r) => c.once("connect", r));
    known.set(c.localPort!, { server: { ip: "203.0.113.10", port: 443 }, client: { ip: "10.0.0.5", port: 50123 }, host: "api.openai.com", pid: 77 });
    c.write("\x16\x03\x01hello"); // bytes sent before the hand-over are not lost (the socket was paused)
    const reply = await new Promise<string>((r) => { let t = ""; c.on("data", (d: Buffer) => (t += d)); c.once("close", () => r(t)); });
    expect(reply).toBe("bye");
    expect(handed).toHaveLength(1);
    expect(handed[0]!.first).toBe("\x16\x03\x01hello");
    expect(handed[0]!.dest).toMatchObject({ ip: "203.0.113.10", port: 443, host: "api.openai.com", captureMethod: "windivert", client: { ip: "10.0.0.5", port: 50123 } });
    expect(await handed[0]!.dest.lookup!()).toEqual({ pid: 77 });
  } finally {
    await bridge.close();
  }
});

test("destination: --resolve overrides, and without a PID the owner of the original client socket is asked", async () => {
  const asked: [Endpoint, Endpoint][] = [];
  const d: OriginalDestination = { server: { ip: "2001:db8::10", port: 443 }, client: { ip: "2001:db8::5", port: 50200 }, host: "api.anthropic.com" };
  const dest = destinationFor(d, {
    lookupProcess: async (c, s) => { asked.push([c, s]); return { pid: 9, name: "curl" }; },
    resolve: new Map([["api.anthropic.com:443", "127.0.0.1:9443"]]),
  });
  expect(dest).toMatchObject({ ip: "127.0.0.1", port: 9443, host: "api.anthropic.com" });
  expect(await dest.lookup!()).toEqual({ pid: 9, name: "curl" });
  expect(asked).toEqual([[d.client, d.server]]);
  expect(resolveOverride(new Map([["203.0.113.10:443", "::1"]]), undefined, { ip: "203.0.113.10", port: 443 })).toEqual({ ip: "::1", port: 443 });
  expect(resolveOverride(new Map([["x:443", "[::1]:8443"]]), "x", { ip: "1.1.1.1", port: 443 })).toEqual({ ip: "::1", port: 8443 });
  expect(resolveOverride(undefined, "x", { ip: "1.1.1.1", port: 443 })).toEqual({ ip: "1.1.1.1", port: 443 });
});
