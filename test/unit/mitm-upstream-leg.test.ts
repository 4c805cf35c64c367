// The upstream leg started in place on a connected TCP socket (upgradeTls), against a real local TLS server: what
// the TCP socket under it holds once TLS runs there.
import { expect, test } from "bun:test";
import net from "node:net";
import tls from "node:tls";
import { upgradeTls, UpstreamTrust, type UpstreamLeg } from "../../src/mitm/upstream.ts";
import { createTestCa } from "../support/upstream.ts";

test("the TCP socket under an upstream leg keeps none of the ciphertext, and closes with the leg", async () => {
  const ca = await createTestCa("upstream leg CA");
  const { cert, key } = await ca.issue(["api.openai.com"]);
  const answer = Buffer.alloc(64 * 1024, 0x61);
  const server = tls.createServer({ cert, key }, (sock) => {
    sock.on("error", () => {});
    sock.on("data", () => sock.write(answer));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const tcp = net.connect(port, "127.0.0.1");
  let up: UpstreamLeg | undefined;
  try {
    await new Promise((r) => tcp.once("connect", r));
    const trust = new UpstreamTrust([ca.certPem]);
    up = await upgradeTls(tcp, { servername: "api.openai.com", verifyHost: "api.openai.com", alpn: [], trust, target: { host: "127.0.0.1", port }, timeoutMs: 5000 });
    let got = 0;
    const exchanges = 32;
    const leg = up.leg;
    const done = new Promise<void>((resolve) =>
      leg.on("data", (d: Buffer) => {
        got += d.length;
        if (got % answer.length === 0 && got < exchanges * answer.length) leg.write(Buffer.from("next\n"));
        if (got === exchanges * answer.length) resolve();
      }),
    );
    up.leg.resume();
    up.leg.write(Buffer.from("first\n"));
    await done;
    // 2 MiB of answers went through: the net.Socket was handed none of their ciphertext to hold.
    expect(tcp.readableLength).toBe(0);
    const tcpClosed = new Promise<void>((r) => tcp.once("close", () => r()));
    up.leg.destroy();
    await tcpClosed;
  } finally {
    up?.leg.destroy();
    tcp.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
