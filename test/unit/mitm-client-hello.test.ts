// The ClientHello peek on real ClientHello bytes captured from tls.connect and curl, fed whole, split at
// every byte boundary, re-framed into several TLS records, and on garbage and truncated input.
import { beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import tls from "node:tls";
import { ClientHelloParser, parseClientHello, type ClientHelloResult } from "../../src/wire/tls-client-hello.ts";

/** Starts a TCP server, lets `connect` dial it, and returns the first bytes the client sent (one ClientHello). */
async function captureHello(connect: (port: number) => void | Promise<void>): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let done!: (b: Uint8Array) => void;
  const got = new Promise<Uint8Array>((r) => (done = r));
  const server = net.createServer((s) => {
    s.on("data", (d: Buffer) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      const res = parseClientHello(all);
      // Record-level completeness check independent of the parser under test: 5-byte header + length.
      if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
        done(new Uint8Array(all));
        s.destroy();
      } else if (res.status === "not-tls") {
        done(new Uint8Array(all));
        s.destroy();
      }
    });
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  await connect(port);
  const bytes = await got;
  server.close();
  return bytes;
}

function tlsClient(port: number, servername: string | undefined, ALPNProtocols?: string[]) {
  const s = tls.connect({ host: "127.0.0.1", port, servername, ALPNProtocols, rejectUnauthorized: false });
  s.on("error", () => {});
}

/** Re-frames one ClientHello record's handshake payload into records of at most `size` bytes each. */
function reframe(record: Uint8Array, size: number): Uint8Array {
  const payload = record.subarray(5);
  const out: number[] = [];
  for (let at = 0; at < payload.length; at += size) {
    const part = payload.subarray(at, at + size);
    out.push(0x16, record[1]!, record[2]!, part.length >> 8, part.length & 0xff, ...part);
  }
  return new Uint8Array(out);
}

function feedSplit(bytes: Uint8Array, cut: number): ClientHelloResult {
  const p = new ClientHelloParser();
  const first = p.push(bytes.subarray(0, cut));
  if (first.status !== "need-more") return first;
  return p.push(bytes.subarray(cut));
}

describe("ClientHello parser on real ClientHellos", () => {
  let nodeHello: Uint8Array;
  let curlHello: Uint8Array;
  let noSniHello: Uint8Array;

  beforeAll(async () => {
    nodeHello = await captureHello((port) => tlsClient(port, "api.openai.com", ["h2", "http/1.1"]));
    noSniHello = await captureHello((port) => tlsClient(port, undefined));
    curlHello = await captureHello(async (port) => {
      const p = Bun.spawn(["curl", "-s", "--max-time", "2", "--connect-to", `API.Anthropic.com:443:127.0.0.1:${port}`, "https://API.Anthropic.com/"], {
        stdout: "ignore",
        stderr: "ignore",
      });
      void p.exited;
    });
  });

  test("whole hello: SNI and ALPN from a Bun tls.connect", () => {
    const res = parseClientHello(nodeHello);
    expect(res).toMatchObject({ status: "ok", hello: { sni: "api.openai.com", alpn: ["h2", "http/1.1"] } });
  });

  test("curl's hello: SNI lower-cased, ALPN h2 and http/1.1, TLS 1.3 on offer", () => {
    const res = parseClientHello(curlHello);
    expect(res.status).toBe("ok");
    if (res.status !== "ok") return;
    expect(res.hello.sni).toBe("api.anthropic.com");
    expect(res.hello.alpn).toEqual(["h2", "http/1.1"]);
    expect(res.hello.supportedVersions).toContain(0x0304);
  });

  test("no SNI and no ALPN", () => {
    const res = parseClientHello(noSniHello);
    expect(res).toMatchObject({ status: "ok", hello: { alpn: [] } });
    if (res.status === "ok") expect(res.hello.sni).toBeUndefined();
  });

  test("split at every byte boundary gives the same answer, need-more before the end", () => {
    const whole = parseClientHello(curlHello);
    for (let cut = 1; cut < curlHello.length; cut++) {
      const p = new ClientHelloParser();
      expect(p.push(curlHello.subarray(0, cut)).status).toBe("need-more");
      expect(p.push(curlHello.subarray(cut))).toEqual(whole);
      expect(p.bytes()).toEqual(curlHello);
    }
  });

  test("one byte at a time", () => {
    const p = new ClientHelloParser();
    let res: ClientHelloResult = { status: "need-more" };
    for (let i = 0; i < nodeHello.length; i++) {
      res = p.push(nodeHello.subarray(i, i + 1));
      if (i < nodeHello.length - 1) expect(res.status).toBe("need-more");
    }
    expect(res).toEqual(parseClientHello(nodeHello));
  });

  test("a hello spread over several TLS records, then split at every boundary", () => {
    const whole = parseClientHello(curlHello);
    for (const size of [1, 3, 50, 200]) {
      const multi = reframe(curlHello, size);
      expect(parseClientHello(multi)).toEqual(whole);
      if (size === 50) for (let cut = 1; cut < multi.length; cut++) expect(feedSplit(multi, cut)).toEqual(whole);
    }
  });

  test("plain bytes are not TLS, decided from the first bytes", () => {
    expect(parseClientHello(new TextEncoder().encode("GET / HTTP/1.1\r\n"))).toEqual({ status: "not-tls" });
    expect(parseClientHello(new TextEncoder().encode("SSH-2.0-OpenSSH_9.2\r\n"))).toEqual({ status: "not-tls" });
    expect(new ClientHelloParser().push(new Uint8Array([0x47]))).toEqual({ status: "not-tls" });
    expect(parseClientHello(new Uint8Array([0x16, 0x47, 0x45]))).toEqual({ status: "not-tls" });
  });

  test("truncated hello stays need-more; lying lengths are invalid, never a throw", () => {
    expect(parseClientHello(curlHello.subarray(0, 3)).status).toBe("need-more");
    expect(parseClientHello(curlHello.subarray(0, curlHello.length - 1)).status).toBe("need-more");
    // Handshake length says more than the record carries, inner vectors overrun: corrupt each length byte.
    for (let i = 5; i < Math.min(curlHello.length, 120); i++) {
      const bad = new Uint8Array(curlHello);
      bad[i] = bad[i]! ^ 0xff;
      const res = parseClientHello(bad);
      expect(["ok", "invalid", "need-more", "too-large"]).toContain(res.status);
    }
    const notHello = new Uint8Array(curlHello);
    notHello[5] = 2; // ServerHello type
    expect(parseClientHello(notHello)).toMatchObject({ status: "invalid" });
    expect(parseClientHello(new Uint8Array([0x16, 3, 1, 0, 0]))).toMatchObject({ status: "invalid" });
    // A hello whose body ends inside the cipher suites: complete record, truncated structure.
    const tiny = new Uint8Array([0x16, 3, 1, 0, 10, 1, 0, 0, 6, 3, 3, 0, 0, 0, 0]);
    expect(parseClientHello(tiny)).toMatchObject({ status: "invalid" });
  });

  test("random garbage never throws", () => {
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let n = 0; n < 2000; n++) {
      const len = 1 + Math.floor(rnd() * 300);
      const buf = new Uint8Array(len).map(() => Math.floor(rnd() * 256));
      if (rnd() < 0.5) {
        buf[0] = 0x16;
        if (len > 1) buf[1] = 3;
      }
      expect(() => parseClientHello(buf)).not.toThrow();
    }
  });

  test("size bound: a declared hello larger than the limit is too-large", () => {
    expect(parseClientHello(curlHello, 100)).toEqual({ status: "too-large", limit: 100 });
    const huge = new Uint8Array([0x16, 3, 1, 0x40, 0x00, 1, 0xff, 0xff, 0xff]);
    expect(parseClientHello(new Uint8Array([...huge, ...new Uint8Array(0x4000 - 4)])).status).toBe("too-large");
  });
});
