// mockttp (npm) as an explicit HTTPS-intercepting proxy that passes every request through to the bench
// upstream, for the side-by-side benchmark. Run: bun bench/lib/mockttp-proxy.ts DIR UPSTREAM_PORT UPSTREAM_CA
// Writes DIR/mockttp-ca.pem (the CA clients must trust) and prints "PORT <n>".
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

// Not a devDependency: mockttp's optional native dependency (tls-impersonate ^0.2) is not on the npm
// registry this project installs from, which makes `npm ci` reject the lock file. Installed on demand.
const moduleName = "mockttp";
const mockttp = await import(moduleName).catch(() => {
  console.error("mockttp is not installed: run `npm install --no-save mockttp` once to include it in bench/load.ts");
  process.exit(3);
});

const [dir, upstreamPort, upstreamCa] = process.argv.slice(2);
if (!dir || !upstreamPort || !upstreamCa) {
  console.error("usage: mockttp-proxy.ts DIR UPSTREAM_PORT UPSTREAM_CA");
  process.exit(2);
}
const ca = await mockttp.generateCACertificate({ subject: { commonName: "OISP Bench mockttp CA" } });
fs.writeFileSync(path.join(dir, "mockttp-ca.pem"), ca.cert);
const server = mockttp.getLocal({ https: { key: ca.key, cert: ca.cert }, recordTraffic: false });
// A free port first: mockttp's own port search wants a range.
const port = await new Promise<number>((resolve) => {
  const probe = net.createServer().listen(0, "127.0.0.1", () => {
    const p = (probe.address() as net.AddressInfo).port;
    probe.close(() => resolve(p));
  });
});
await server.start(port);
await server.forAnyRequest().thenPassThrough({
  // The tunnel's Host is api.openai.com; send it to the local upstream, keeping the Host header.
  transformRequest: { replaceHost: { targetHost: `127.0.0.1:${upstreamPort}`, updateHostHeader: false } },
  additionalTrustedCAs: [{ cert: fs.readFileSync(upstreamCa, "utf8") }],
});
console.log(`PORT ${server.port}`);
process.on("SIGTERM", async () => {
  await server.stop();
  process.exit(0);
});
