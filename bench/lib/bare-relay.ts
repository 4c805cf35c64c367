// The least a TLS-intercepting proxy built on Bun's node:net/node:tls must do, as a yardstick for oisp:
// read CONNECT, answer 200, finish TLS with the client (one fixed leaf for api.openai.com), open TLS to the
// upstream, pipe both ways. No ClientHello peek, no capture, no process lookup, no limits.
// Run: bun bench/lib/bare-relay.ts DIR UPSTREAM_PORT UPSTREAM_CA — writes DIR/bare-relay-ca.pem, prints "PORT <n>".
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import { createTestCa } from "../../test/support/upstream.ts";

const [dir, upstreamPort, upstreamCa] = process.argv.slice(2);
if (!dir || !upstreamPort || !upstreamCa) {
  console.error("usage: bare-relay.ts DIR UPSTREAM_PORT UPSTREAM_CA");
  process.exit(2);
}
const ca = await createTestCa("OISP Bench bare-relay CA");
const leaf = await ca.issue(["api.openai.com"]);
fs.writeFileSync(path.join(dir, "bare-relay-ca.pem"), ca.certPem);
const upstreamCaPem = fs.readFileSync(upstreamCa, "utf8");

const server = net.createServer((raw) => {
  let head = "";
  const onHead = (chunk: Buffer) => {
    head += chunk.toString("latin1");
    if (!head.includes("\r\n\r\n")) return;
    raw.off("data", onHead);
    raw.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    const client = new tls.TLSSocket(raw, { isServer: true, key: leaf.key, cert: leaf.cert, ALPNProtocols: ["http/1.1"] });
    const up = tls.connect({ host: "127.0.0.1", port: Number(upstreamPort), servername: "api.openai.com", ca: upstreamCaPem, ALPNProtocols: ["http/1.1"] });
    client.pipe(up).pipe(client);
    const close = () => (client.destroy(), up.destroy());
    client.on("error", close);
    up.on("error", close);
  };
  raw.on("data", onHead);
  raw.on("error", () => raw.destroy());
});
server.listen(0, "127.0.0.1", () => console.log(`PORT ${(server.address() as net.AddressInfo).port}`));
process.on("SIGTERM", () => process.exit(0));
