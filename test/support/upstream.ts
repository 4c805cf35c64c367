// A local TLS "real host" for tests: a node:https server on 127.0.0.1 with its own test CA, so tests can
// tell whether a client verified the upstream's certificate (passthrough) or the proxy's (interception).
// Also a tiny test CA that mints leaves on demand, standing in for the product CA in proxy tests.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import tls from "node:tls";

x509.cryptoProvider.set(crypto);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export interface TestCa {
  certPem: string;
  /** Mints a leaf for `hosts` (DNS names or IP literals); cert is leaf + CA PEM. */
  issue(hosts: string[]): Promise<{ cert: string; key: string }>;
  /** The LeafIssuer shape the proxy takes (src/mitm/issuer.ts), cached per host. */
  leafFor(host: string): Promise<{ cert: string; key: string }>;
}

let serial = 1;
function nextSerial(): string {
  return (Date.now().toString(16) + (serial++).toString(16).padStart(4, "0")).padStart(16, "0");
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey("pkcs8", key));
  const b64 = der.toString("base64").replace(/(.{64})/g, "$1\n").trim();
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

function isIp(host: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.includes(":");
}

export async function createTestCa(name = "OISP Test Upstream CA"): Promise<TestCa> {
  const caKeys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + 7 * 86400_000);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${name}`,
    notBefore,
    notAfter,
    signingAlgorithm: ALG,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const certPem = `${caCert.toString("pem")}\n`;
  // One leaf key for every leaf: a leaf then costs one signature.
  const leafKeys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const leafKeyPem = await pkcs8Pem(leafKeys.privateKey);
  const cache = new Map<string, Promise<{ cert: string; key: string }>>();

  async function issue(hosts: string[]) {
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: nextSerial(),
      subject: `CN=${hosts[0]}`,
      issuer: caCert.subject,
      notBefore,
      notAfter,
      signingAlgorithm: ALG,
      publicKey: leafKeys.publicKey,
      signingKey: caKeys.privateKey,
      extensions: [
        new x509.SubjectAlternativeNameExtension(hosts.map((h) => ({ type: isIp(h) ? ("ip" as const) : ("dns" as const), value: h }))),
        new x509.BasicConstraintsExtension(false),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
      ],
    });
    return { cert: `${leaf.toString("pem")}\n${certPem}`, key: leafKeyPem };
  }

  return {
    certPem,
    issue,
    leafFor(host: string) {
      let p = cache.get(host);
      if (!p) {
        p = issue([host]);
        cache.set(host, p);
      }
      return p;
    },
  };
}

export interface TlsUpstream {
  port: number;
  caPem: string;
  close(): Promise<void>;
}

/** An HTTPS server on 127.0.0.1:0 whose one certificate lists all `hosts` (and 127.0.0.1, localhost). */
export async function startTlsUpstream(opts: {
  hosts: string[];
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  alpn?: string[];
  /** Default 127.0.0.1:0. */
  listen?: { host: string; port: number };
}): Promise<TlsUpstream> {
  const ca = await createTestCa();
  const { cert, key } = await ca.issue([...opts.hosts, "localhost", "127.0.0.1"]);
  // node:http fed by a tls server, because Bun's https.createServer does not negotiate ALPN.
  const httpServer = http.createServer(opts.handler);
  const sockets = new Set<Socket>();
  const server = tls.createServer({ cert, key, ALPNProtocols: opts.alpn ?? ["http/1.1"] }, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    httpServer.emit("connection", s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.listen?.port ?? 0, opts.listen?.host ?? "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    caPem: ca.certPem,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        httpServer.close();
        server.close(() => resolve());
      }),
  };
}

/**
 * An HTTPS server that negotiates h2 (node:http2) and still serves HTTP/1.1 clients (allowHTTP1), so one
 * upstream shows whether the proxy mirrored ALPN: `protocols` records what each connection chose.
 */
export async function startH2Upstream(opts: {
  hosts: string[];
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  /** Default 127.0.0.1:0. */
  listen?: { host: string; port: number };
}): Promise<TlsUpstream & { protocols: string[] }> {
  const ca = await createTestCa();
  const { cert, key } = await ca.issue([...opts.hosts, "localhost", "127.0.0.1"]);
  const server = http2.createSecureServer({ cert, key, allowHTTP1: true, settings: { maxConcurrentStreams: 1000 } });
  // The compat request/response of node:http2 have the node:http surface the fake providers use.
  server.on("request", opts.handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  const protocols: string[] = [];
  const sockets = new Set<Socket>();
  server.on("secureConnection", (s: tls.TLSSocket) => {
    protocols.push(s.alpnProtocol || "none");
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.listen?.port ?? 0, opts.listen?.host ?? "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    caPem: ca.certPem,
    protocols,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
