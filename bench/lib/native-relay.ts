// A TLS-terminating relay on Bun's native sockets (Bun.listen + Bun.connect, TLS in uSockets), no CONNECT:
// the client dials it as if it were the upstream. For bench/relay-floor.ts: what a relay costs on this
// machine when it skips node:net/node:tls entirely (oisp accepts on node:net, then runs both legs' TLS natively:
// bench/relay-upgrade.ts).
// Run: bun bench/lib/native-relay.ts DIR UPSTREAM_PORT UPSTREAM_CA — writes DIR/native-relay-ca.pem, prints "PORT <n>".
import fs from "node:fs";
import { createTestCa } from "../../test/support/upstream.ts";
const [dir, upstreamPort, upstreamCa] = process.argv.slice(2);
if (!dir || !upstreamPort || !upstreamCa) {
  console.error("usage: native-relay.ts DIR UPSTREAM_PORT UPSTREAM_CA");
  process.exit(2);
}
const ca = await createTestCa("native relay CA");
const leaf = await ca.issue(["api.openai.com"]);
fs.writeFileSync(`${dir}/native-relay-ca.pem`, ca.certPem);
const upCa = fs.readFileSync(upstreamCa, "utf8");
/** Bytes a socket did not take yet (Bun sockets write what they can and say how much). */
type S = { pending: Uint8Array[] };
function send(sock: any, data: Uint8Array, st: S) {
  if (st.pending.length) return void st.pending.push(data);
  const n = sock.write(data);
  if (n < data.length) st.pending.push(data.subarray(n));
}
function drain(sock: any, st: S) {
  while (st.pending.length) {
    const d = st.pending[0]!;
    const n = sock.write(d);
    if (n < d.length) { st.pending[0] = d.subarray(n); return; }
    st.pending.shift();
  }
}
const server = Bun.listen<{ up?: any; st: S; early: Uint8Array[] }>({
  hostname: "127.0.0.1", port: 0,
  tls: { key: leaf.key, cert: leaf.cert },
  socket: {
    open(c) {
      c.data = { st: { pending: [] }, early: [] };
      Bun.connect<{ st: S }>({ hostname: "127.0.0.1", port: Number(upstreamPort), tls: { serverName: "api.openai.com", ca: upCa }, socket: {
        open(u) { u.data = { st: { pending: [] } }; c.data.up = u; for (const e of c.data.early) send(u, e, u.data.st); c.data.early = []; },
        data(u, d) { send(c, d, c.data.st); },
        drain(u) { drain(u, u.data.st); },
        close() { c.end(); }, error() { c.end(); },
      } }).catch(() => c.end());
    },
    data(c, d) { if (c.data.up) send(c.data.up, d, c.data.up.data.st); else c.data.early.push(new Uint8Array(d)); },
    drain(c) { drain(c, c.data.st); },
    close(c) { c.data.up?.end(); },
  },
});
console.log(`PORT ${server.port}`);
