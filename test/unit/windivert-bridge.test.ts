// The bridge from the transparent listener to a CONNECT proxy, with real sockets on 127.0.0.1: unknown
// peers are closed, a diverted connection is tunnelled with the SNI as authority, bytes relay both ways,
// and the proxy's process lookup is pointed at the original client.
import { afterAll, expect, test } from "bun:test";
import net from "node:net";
import { startBridge } from "../../src/capture/windivert/bridge.ts";
import type { OriginalDestination } from "../../src/capture/windivert/redirector.ts";
import { silentLogger } from "../../src/util/log.ts";

// A minimal CONNECT endpoint that records the request head and echoes tunnel bytes upper-cased.
const heads: string[] = [];
const proxyPeers: number[] = [];
const proxyServer = net.createServer((s) => {
  proxyPeers.push(s.remotePort!);
  let buf = "";
  const onData = (d: Buffer) => {
    buf += d.toString("latin1");
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) return;
    s.off("data", onData);
    heads.push(buf.slice(0, end));
    s.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    const rest = buf.slice(end + 4);
    if (rest) s.write(rest.toUpperCase());
    s.on("data", (x: Buffer) => s.write(x.toString("latin1").toUpperCase()));
  };
  s.on("data", onData);
});
await new Promise<void>((r) => proxyServer.listen(0, "127.0.0.1", r));
const proxyPort = (proxyServer.address() as net.AddressInfo).port;
afterAll(() => proxyServer.close());

// Non-TLS first bytes make the bridge use the DNS-learned host as the authority (SNI peeking is covered
// by the TUN end-to-end test, where curl's real ClientHello goes through).
test("unknown peers are closed; diverted ones are tunnelled and attributed to the original client", async () => {
  const known = new Map<number, OriginalDestination>();
  let strangerPort = -1;
  const bridge = await startBridge({
    listen: { host: "127.0.0.1", port: 0 }, proxy: { host: "127.0.0.1", port: proxyPort }, log: silentLogger, helloTimeoutMs: 200,
    // Like the real directory, wait a little for the announcement (here: the test's map entry).
    directory: {
      originalDestination: async (peer) => {
        for (let i = 0; i < 20 && !known.has(peer.port) && peer.port !== strangerPort; i++) await Bun.sleep(10);
        return known.get(peer.port);
      },
    },
  });
  try {
    // Not in the directory.
    const stranger = net.connect(bridge.address.port, "127.0.0.1");
    stranger.on("error", () => {});
    await new Promise((r) => stranger.once("connect", r));
    strangerPort = stranger.localPort!;
    await new Promise((r) => stranger.once("close", r));
    expect(bridge.stats().notDiverted).toBe(1);

    const c = net.connect(bridge.address.port, "127.0.0.1");
    await new Promise((r) => c.once("connect", r));
    known.set(c.localPort!, { server: { ip: "203.0.113.10", port: 443 }, client: { ip: "10.0.0.5", port: 50123 }, host: "api.openai.com", pid: 77 });
    let got = "";
    c.on("data", (d: Buffer) => (got += d.toString()));
    c.write("hello ");
    await Bun.sleep(250);
    c.write("world");
    for (let i = 0; i < 100 && got.length < 11; i++) await Bun.sleep(10);
    expect(got).toBe("HELLO WORLD");
    expect(heads.at(-1)).toBe("CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443");

    // The proxy's lookup for the bridge's socket resolves to the original client's PID.
    const fallbackCalls: string[] = [];
    const lookup = bridge.lookupProcess(async (cl) => {
      fallbackCalls.push(`${cl.ip}:${cl.port}`);
      return undefined;
    });
    expect(proxyPeers).toHaveLength(1);
    expect(await lookup({ ip: "127.0.0.1", port: proxyPeers[0]! }, { ip: "127.0.0.1", port: proxyPort })).toEqual({ pid: 77 });
    expect(fallbackCalls).toEqual([]);
    expect(await lookup({ ip: "127.0.0.1", port: 1 }, { ip: "127.0.0.1", port: proxyPort })).toBeUndefined();
    expect(fallbackCalls).toEqual(["127.0.0.1:1"]);
    c.destroy();
  } finally {
    await bridge.close();
  }
});
