// Capture-less CONNECT relays that peek the ClientHello before starting the client's TLS, the way oisp must,
// each built on a different way of starting server-side TLS after the peek. For bench/relay-upgrade.ts.
//
//   bun bench/lib/peek-relay.ts MODE DIR UPSTREAM_PORT UPSTREAM_CA — writes DIR/peek-relay-MODE-ca.pem, prints "PORT <n>".
//
// MODE:
//   duplex         node:net accept, node:tls TLSSocket over a Duplex replaying the peeked bytes (oisp before),
//                  node:tls upstream, src/mitm/relay.ts
//   adopt          node:net accept, the peeked bytes unshifted back into the net.Socket, node:tls TLSSocket over
//                  that socket: Bun adopts it natively (upgradeTLS with initialData), node:tls upstream, relay.ts
//   duplex-bunup   as duplex, but the upstream leg on Bun.connect TLS (option c)
//   handle         node:net accept (as oisp), then the accepted socket's native handle upgraded in place
//                  (`_handle.upgradeTLS({ isServer, initialData })`), Bun.connect TLS upstream, callback relay
//                  (what oisp does now, with its upstream upgraded in place on the connected socket)
//   handle-nodeup  as handle, but the upstream leg on node:tls (a TLSSocket stream)
//   handoff        as handle, the upstream handshaken by node:tls (as oisp verifies it), then its native handle
//                  taken over (`_handle.reload`) for the relay
//   native         Bun.listen accept, socket.upgradeTLS({ isServer, initialData }), Bun.connect TLS upstream
//   hop            Bun.listen accept, the peeked and later bytes handed over a unix socket to an internal
//                  Bun.listen TLS listener (one config: Bun.listen takes no per-serverName array), Bun.connect TLS
//                  upstream (option a)
//   handle-quiet   as handle, the raw side's ciphertext no longer handed to the net.Socket after the upgrade
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { createTestCa } from "../../test/support/upstream.ts";
import { relay } from "../../src/mitm/relay.ts";
import { ReplayDuplex } from "./replay-duplex.ts";
import { ClientHelloParser } from "../../src/wire/tls-client-hello.ts";

const [mode, dir, upstreamPortArg, upstreamCaFile] = process.argv.slice(2);
if (!mode || !dir || !upstreamPortArg || !upstreamCaFile) {
  console.error("usage: peek-relay.ts MODE DIR UPSTREAM_PORT UPSTREAM_CA");
  process.exit(2);
}
const upstreamPort = Number(upstreamPortArg);
const HOST = "api.openai.com";
const ca = await createTestCa(`peek relay ${mode} CA`);
const leaf = await ca.issue([HOST]);
fs.writeFileSync(path.join(dir, `peek-relay-${mode}-ca.pem`), ca.certPem);
const upstreamCa = fs.readFileSync(upstreamCaFile, "utf8");
const context = tls.createSecureContext({ key: leaf.key, cert: leaf.cert });
const ESTABLISHED = Buffer.from("HTTP/1.1 200 Connection Established\r\n\r\n");
/** ALPN in wire format for Bun's native TLS options (a plain string is taken as wire bytes). */
const ALPN_HTTP1 = Buffer.from("\x08http/1.1");

// ---- node:net based modes ----

/** Reads the CONNECT head and the ClientHello on a node:net socket; resolves with the peeked bytes. */
function nodePeek(client: net.Socket): Promise<Uint8Array> {
  return new Promise((resolve) => {
    let head = "";
    const parser = new ClientHelloParser(16 * 1024);
    let inHello = false;
    const onData = (d: Buffer) => {
      if (!inHello) {
        head += d.toString("latin1");
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        inHello = true;
        client.write(ESTABLISHED);
        const rest = Buffer.from(head.slice(end + 4), "latin1");
        if (!rest.length) return;
        d = rest;
      }
      if (parser.push(d).status === "need-more") return;
      client.off("data", onData);
      client.pause();
      resolve(parser.bytes());
    };
    client.on("data", onData);
  });
}

function nodeUpstream(): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const tcp = net.connect({ host: "127.0.0.1", port: upstreamPort, allowHalfOpen: true });
    tcp.setNoDelay(true);
    tcp.once("error", reject);
    tcp.once("connect", () => {
      const up = tls.connect({ socket: tcp, servername: HOST, ca: upstreamCa, ALPNProtocols: ["http/1.1"] });
      up.once("error", reject);
      up.once("secureConnect", () => resolve(up));
    });
  });
}

/** The upstream leg on Bun.connect TLS, wrapped as just enough of a Duplex for relay(): see BunLeg. */
function bunUpstream(): Promise<BunLeg> {
  const leg = new BunLeg();
  return Bun.connect({
    hostname: "127.0.0.1",
    port: upstreamPort,
    tls: { serverName: HOST, ca: upstreamCa, ALPNProtocols: ALPN_HTTP1 },
    socket: leg.handlers(),
  }).then((s) => {
    leg.sock = s;
    return leg;
  });
}

function nodeServer(onClient: (client: net.Socket) => Promise<void>) {
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    client.setNoDelay(true);
    client.on("error", () => {});
    onClient(client).catch(() => client.destroy());
  });
  server.listen(0, "127.0.0.1", () => console.log(`PORT ${(server.address() as net.AddressInfo).port}`));
}

if (mode === "duplex" || mode === "adopt" || mode === "duplex-bunup") {
  nodeServer(async (client) => {
    const peeked = await nodePeek(client);
    // As oisp does: the upstream is verified first, then the client's handshake is finished.
    const up = await (mode === "duplex-bunup" ? bunUpstream() : nodeUpstream());
    let clientTls: tls.TLSSocket;
    if (mode === "adopt") {
      client.unshift(Buffer.from(peeked));
      clientTls = new tls.TLSSocket(client, { isServer: true, secureContext: context, ALPNProtocols: ["http/1.1"] });
    } else {
      const duplex = new ReplayDuplex(client, peeked);
      clientTls = new tls.TLSSocket(duplex as unknown as net.Socket, { isServer: true, secureContext: context, ALPNProtocols: ["http/1.1"] });
    }
    clientTls.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      clientTls.once("secure", resolve);
      clientTls.once("close", reject);
    });
    if (up instanceof BunLeg) return void bunRelayMixed(clientTls, up);
    up.on("error", () => {});
    await relay(clientTls, up, { onData: () => {} });
  });
}

// ---- Bun native socket modes ----

/** Bytes a Bun socket did not take yet: Bun sockets write what they can and say how much. */
class Outbox {
  pending: Uint8Array[] = [];
  send(sock: { write(d: Uint8Array): number }, data: Uint8Array): void {
    if (this.pending.length) return void this.pending.push(data);
    const n = sock.write(data);
    if (n < data.length) this.pending.push(data.subarray(n));
  }
  drain(sock: { write(d: Uint8Array): number }): void {
    while (this.pending.length) {
      const d = this.pending[0]!;
      const n = sock.write(d);
      if (n < d.length) return void (this.pending[0] = d.subarray(n));
      this.pending.shift();
    }
  }
}

/** A Bun socket leg: data goes to `onData`, writes are queued when the kernel buffer is full. */
class BunLeg {
  sock?: any;
  out = new Outbox();
  onData?: (d: Uint8Array) => void;
  onEnd?: () => void;
  early: Uint8Array[] = [];
  handlers() {
    return {
      data: (_s: unknown, d: Uint8Array) => (this.onData ? this.onData(d) : void this.early.push(new Uint8Array(d))),
      drain: (s: any) => this.out.drain(s),
      end: () => this.onEnd?.(),
      close: () => this.onEnd?.(),
      error: () => this.onEnd?.(),
    };
  }
  write(d: Uint8Array) {
    this.out.send(this.sock, d);
  }
}

/** Client on node:tls, upstream a Bun socket. */
function bunRelayMixed(client: tls.TLSSocket, up: BunLeg) {
  up.onData = (d) => client.write(d);
  up.onEnd = () => client.destroy();
  for (const e of up.early) client.write(e);
  client.on("data", (d: Buffer) => up.write(d));
  client.on("close", () => up.sock.end());
  client.resume();
}

type RawState = { head: string; parser: ClientHelloParser; phase: "head" | "hello" | "relay" | "upgraded"; hop?: any; hopOut: Outbox; clientOut: Outbox; early: Uint8Array[] };

function bunServer(onHello: (s: any, peeked: Uint8Array) => void) {
  const server = Bun.listen<RawState>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.setNoDelay(true);
        s.data = { head: "", parser: new ClientHelloParser(16 * 1024), phase: "head", hopOut: new Outbox(), clientOut: new Outbox(), early: [] };
      },
      data(s, d) {
        const st = s.data;
        if (st.phase === "upgraded") return; // the raw side of an upgraded socket still sees the ciphertext
        if (st.phase === "relay") {
          if (st.hop) st.hopOut.send(st.hop, d);
          else st.early.push(new Uint8Array(d));
          return;
        }
        if (st.phase === "head") {
          st.head += Buffer.from(d).toString("latin1");
          const end = st.head.indexOf("\r\n\r\n");
          if (end < 0) return;
          st.phase = "hello";
          s.write(ESTABLISHED);
          d = Buffer.from(st.head.slice(end + 4), "latin1");
          if (!d.length) return;
        }
        if (st.parser.push(d).status === "need-more") return;
        st.phase = "relay";
        onHello(s, st.parser.bytes());
      },
      drain(s) {
        s.data.clientOut.drain(s);
      },
      close(s) {
        s.data.hop?.end();
      },
      error() {},
    },
  });
  console.log(`PORT ${server.port}`);
}

/** Relays between a TLS client socket (server side) and a new Bun.connect TLS upstream. */
function nativeHandlers(upstream?: Promise<BunLeg>) {
  type T = { up?: BunLeg; out: Outbox; early: Uint8Array[] };
  return {
    open(t: any) {
      const st: T = { out: new Outbox(), early: [] };
      t.data = st;
      (upstream ?? bunUpstream())
        .then((up) => {
          st.up = up;
          up.onData = (d) => st.out.send(t, d);
          up.onEnd = () => t.end();
          for (const e of up.early) st.out.send(t, e);
          for (const e of st.early) up.write(e);
        })
        .catch(() => t.end());
    },
    data(t: any, d: Uint8Array) {
      const st = t.data as T;
      if (st.up) st.up.write(d);
      else st.early.push(new Uint8Array(d));
    },
    drain(t: any) {
      (t.data as T).out.drain(t);
    },
    close(t: any) {
      (t.data as T)?.up?.sock?.end();
    },
    error() {},
  };
}

if (mode === "native") {
  bunServer((s, peeked) => {
    (s.data as RawState).phase = "upgraded";
    s.upgradeTLS({ isServer: true, initialData: peeked, tls: { key: leaf.key, cert: leaf.cert, ALPNProtocols: ALPN_HTTP1 }, socket: nativeHandlers() });
  });
}

if (mode === "handle" || mode === "handle-quiet") {
  nodeServer(async (client) => {
    const peeked = await nodePeek(client);
    // The raw side keeps delivering the ciphertext to the net.Socket (what spots a client's alert); drop it.
    client.on("data", () => {});
    const handlers = nativeHandlers();
    const [raw] = (client as any)._handle.upgradeTLS({
      isServer: true,
      initialData: peeked,
      tls: { key: leaf.key, cert: leaf.cert, ALPNProtocols: ALPN_HTTP1 },
      socket: mode === "handle" ? handlers : { ...handlers, close: (t: any) => (handlers.close(t), client.destroy()) },
    });
    // handle-quiet: the raw side (the first of upgradeTLS's pair) hands its ciphertext to no net.Socket. Its `data`
    // is cleared, which the net.Server's handlers take as "no socket": reloading its handlers would change the
    // listener's, for every later connection too. The net.Socket is destroyed with the TLS side instead.
    if (mode === "handle-quiet") raw.data = null;
    client.resume();
  });
}

if (mode === "handle-nodeup") {
  nodeServer(async (client) => {
    const peeked = await nodePeek(client);
    const up = await nodeUpstream();
    up.on("error", () => {});
    client.on("data", () => {});
    const out = new Outbox();
    (client as any)._handle.upgradeTLS({
      isServer: true,
      initialData: peeked,
      tls: { key: leaf.key, cert: leaf.cert, ALPNProtocols: ALPN_HTTP1 },
      socket: {
        open(t: any) {
          up.on("data", (d: Buffer) => {
            out.send(t, d);
            if (out.pending.length) up.pause();
          });
          up.on("close", () => t.end());
        },
        data(_t: any, d: Uint8Array) {
          up.write(d);
        },
        drain(t: any) {
          out.drain(t);
          if (!out.pending.length) up.resume();
        },
        close() {
          up.destroy();
        },
        error() {},
      },
    });
    client.resume();
  });
}

if (mode === "handoff") {
  nodeServer(async (client) => {
    const peeked = await nodePeek(client);
    const up = await nodeUpstream();
    up.on("error", () => {});
    const leg = new BunLeg();
    const early = up.readableLength ? (up.read(up.readableLength) as Buffer) : null;
    if (early) leg.early.push(early);
    const h = (up as any)._handle;
    h.reload({ socket: leg.handlers() });
    leg.sock = h;
    client.on("data", () => {});
    const handlers = nativeHandlers(Promise.resolve(leg));
    (client as any)._handle.upgradeTLS({ isServer: true, initialData: peeked, tls: { key: leaf.key, cert: leaf.cert, ALPNProtocols: ALPN_HTTP1 }, socket: handlers });
    client.resume();
  });
}

if (mode === "hop") {
  // Bun.listen (1.4.5) takes one TLS config, not Bun.serve's per-serverName array ("TLSOptions must be an
  // object"): a real one would need a listener per name. One name is all this bench needs.
  const sock = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "peek-hop-")), "tls.sock");
  Bun.listen({
    unix: sock,
    tls: { key: leaf.key, cert: leaf.cert, ALPNProtocols: ALPN_HTTP1 },
    socket: nativeHandlers(),
  });
  bunServer((s, peeked) => {
    const st = s.data as RawState;
    Bun.connect({
      unix: sock,
      socket: {
        open(h) {
          st.hop = h;
          st.hopOut.send(h, peeked);
          for (const e of st.early) st.hopOut.send(h, e);
        },
        data(_h, d) {
          st.clientOut.send(s, d);
        },
        drain(h) {
          st.hopOut.drain(h);
        },
        close() {
          s.end();
        },
        error() {},
      },
    }).catch(() => s.end());
  });
}

process.on("SIGTERM", () => process.exit(0));
