// A fixed-rate AI-call client on Node's OpenSSL (so eBPF's uprobes see it; Bun's BoringSSL they cannot):
// keep-alive raw HTTP/1.1 over node:tls, directly or through an HTTP CONNECT proxy. Calls are started on a
// fixed schedule (open loop) over `conns` connections; prints one JSON line with the latencies.
//   node node-rate-client.cjs '{"port":N,"ca":"PEM","rate":100,"seconds":5,"conns":4,"proxy":{"port":P}}'
"use strict";
const net = require("node:net");
const tls = require("node:tls");

const o = JSON.parse(process.argv[2]);
const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hello to the benchmark." }] });
const request = Buffer.from(
  `POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer sk-bench-0000000000000000000000\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
);

function open() {
  return new Promise((resolve, reject) => {
    const secure = (socket) => {
      const s = tls.connect({ socket, host: socket ? undefined : "127.0.0.1", port: socket ? undefined : o.port, servername: "api.openai.com", ca: o.ca }, () => resolve(s));
      s.on("error", reject);
    };
    if (!o.proxy) return secure(undefined);
    const raw = net.connect(o.proxy.port, "127.0.0.1", () => raw.write(`CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n`));
    raw.once("data", (d) => {
      if (!/^HTTP\/1\.[01] 200/.test(d.toString("latin1"))) return reject(new Error(`CONNECT: ${d.toString("latin1").split("\r\n")[0]}`));
      secure(raw);
    });
    raw.on("error", reject);
  });
}

/** One connection: a queue of calls, each resolved when its whole response (Content-Length) arrived. */
function conn(sock) {
  const waiting = [];
  let buf = Buffer.alloc(0);
  sock.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const len = Number(/content-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString("latin1"))?.[1] ?? 0);
      if (buf.length < end + 4 + len) return;
      buf = buf.subarray(end + 4 + len);
      waiting.shift()?.();
    }
  });
  return {
    busy: () => waiting.length,
    call: () => new Promise((resolve) => { waiting.push(resolve); sock.write(request); }),
  };
}

(async () => {
  const conns = [];
  for (let i = 0; i < (o.conns || 1); i++) conns.push(conn(await open()));
  for (const c of conns) await c.call(); // warm
  const lat = [];
  const start = process.hrtime.bigint();
  const total = Math.round(o.rate * o.seconds);
  let late = 0;
  const pending = [];
  for (let i = 0; i < total; i++) {
    const due = start + BigInt(Math.round((i * 1e9) / o.rate));
    const now = process.hrtime.bigint();
    if (due > now) await new Promise((r) => setTimeout(r, Number(due - now) / 1e6));
    else if (now - due > 50_000_000n) late++;
    const c = conns.reduce((a, b) => (b.busy() < a.busy() ? b : a));
    const t0 = process.hrtime.bigint();
    pending.push(c.call().then(() => lat.push(Number(process.hrtime.bigint() - t0) / 1e6)));
  }
  await Promise.all(pending);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  console.log(JSON.stringify({ calls: lat.length, seconds, rate: lat.length / seconds, p50: q(0.5), p90: q(0.9), p99: q(0.99), late }));
  process.exit(0);
})().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
