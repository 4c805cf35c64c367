// Proxy request heads and the plain-HTTP request framer: split at every byte boundary, keep-alive,
// chunked bodies with extensions and trailers, upgrade, and malformed input.
import { describe, expect, test } from "bun:test";
import { rewriteRequestLine } from "../../src/capture/proxy/plain.ts";
import { ProxyRequestReader } from "../../src/capture/proxy/proxy-request.ts";
import { RequestFramer, type FramerEvent } from "../../src/capture/proxy/request-framer.ts";
import { classifyRequest, HeadReader, parseAuthority, parseRequestHead } from "../../src/capture/proxy/request-head.ts";
import { Http1Parser } from "../../src/decode/http1.ts";

const enc = (s: string) => Buffer.from(s, "latin1");
const dec = (b: Uint8Array) => Buffer.from(b).toString("latin1");

/** Framer output normalised: heads as their request lines, body bytes merged per request. */
function summarize(events: FramerEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.kind === "head") out.push(`HEAD ${e.head.method} ${e.head.target} | ${dec(e.raw).length}`);
    else if (e.kind === "error") out.push(`ERROR ${e.reason}`);
    else if (out.length && out[out.length - 1]!.startsWith("BODY ")) out[out.length - 1] += dec(e.bytes);
    else out.push(`BODY ${dec(e.bytes)}`);
  }
  return out;
}

function feedAll(bytes: Uint8Array, cuts: number[]): string[] {
  const f = new RequestFramer();
  const events: FramerEvent[] = [];
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    events.push(...f.push(bytes.subarray(at, c)));
    at = c;
  }
  return summarize(events);
}

const head1 = "POST http://localhost:11434/api/chat HTTP/1.1\r\nHost: localhost:11434\r\nContent-Length: 13\r\n\r\n";
const head2 = "POST http://localhost:11434/api/generate HTTP/1.1\r\nHost: localhost:11434\r\nTransfer-Encoding: chunked\r\n\r\n";
const head3 = "GET http://localhost:11434/api/tags HTTP/1.1\r\nHost: localhost:11434\r\n\r\n";
const stream = head1 + '{"model":"x"}' + head2 + "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n" + head3;

describe("request framer", () => {
  const expected = [
    `HEAD POST http://localhost:11434/api/chat | ${head1.length}`,
    'BODY {"model":"x"}',
    `HEAD POST http://localhost:11434/api/generate | ${head2.length}`,
    "BODY 5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
    `HEAD GET http://localhost:11434/api/tags | ${head3.length}`,
  ];

  test("keep-alive stream: Content-Length, chunked with extension and trailer, no body", () => {
    expect(feedAll(enc(stream), [])).toEqual(expected);
  });

  test("same events split at every byte boundary, and byte by byte", () => {
    const bytes = enc(stream);
    for (let cut = 1; cut < bytes.length; cut++) expect(feedAll(bytes, [cut])).toEqual(expected);
    expect(feedAll(bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1))).toEqual(expected);
  });

  test("every byte comes out exactly once, in order", () => {
    const bytes = enc(stream);
    for (const cuts of [[], [7, 90, 91, 150, 200, 260]]) {
      const f = new RequestFramer();
      const out: Uint8Array[] = [];
      let at = 0;
      for (const c of [...cuts, bytes.length]) {
        for (const e of f.push(bytes.subarray(at, c))) if (e.kind !== "error") out.push(e.kind === "head" ? e.raw : e.bytes);
        at = c;
      }
      expect(dec(Buffer.concat(out))).toBe(stream);
    }
  });

  test("upgrade makes the rest opaque", () => {
    const h = "GET http://h/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    const s = `${h}\x81\x05hello GET / HTTP/1.1\r\n\r\n`;
    expect(feedAll(enc(s), [])).toEqual([`HEAD GET http://h/ws | ${h.length}`, "BODY \x81\x05hello GET / HTTP/1.1\r\n\r\n"]);
  });

  test("malformed framing is an error, not a guess", () => {
    expect(feedAll(enc("POST http://h/ HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"), [])).toEqual(['ERROR invalid Content-Length: "1x"']);
    expect(feedAll(enc("POST http://h/ HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"), [])).toEqual(['ERROR invalid Content-Length: "2, 3"']);
    expect(feedAll(enc("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), [])).toEqual(["ERROR request Transfer-Encoding does not end with chunked"]);
    const ch = "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    // Bytes consumed up to the error are reported as body; nothing after it.
    expect(feedAll(enc(`${ch}zz\r\nmore`), [])).toEqual([`HEAD POST http://h/ | ${ch.length}`, "BODY zz\r\n", 'ERROR chunked body: invalid chunk size "zz"']);
    expect(feedAll(enc("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab"), [])[2]).toBe("ERROR chunked body: missing CRLF after chunk data");
    const big = new RequestFramer(100).push(enc(`GET http://h/ HTTP/1.1\r\nX: ${"a".repeat(200)}\r\n\r\n`));
    expect(big).toEqual([{ kind: "error", reason: "request head larger than 100 bytes", tooLarge: true }]);
  });
});

describe("the proxy and the sensor split requests alike (one set of rules, src/wire/http1.ts)", () => {
  /** Heads and the first error, as the proxy's framer sees a request stream. */
  function viaFramer(s: string): string[] {
    return new RequestFramer().push(enc(s)).flatMap((e) => (e.kind === "head" ? [`${e.head.method} ${e.head.target}`] : e.kind === "error" ? [`ERROR ${e.reason}`] : []));
  }
  /** The same, as the sensor's request parser sees it; a pause (possible protocol switch) ends the stream. */
  function viaDecoder(s: string): string[] {
    const p = new Http1Parser("request");
    const out = p.push(enc(s), 1).flatMap((i) => (i.type === "head" && i.head.role === "request" ? [`${i.head.method} ${i.head.target}`] : i.type === "error" ? [`ERROR ${i.message}`] : []));
    return p.paused ? [...out, "SWITCH?"] : out;
  }
  const cases: Array<[name: string, stream: string, framer: string[]]> = [
    ["13 hex digits of chunk size are read", "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0000000000001\r\na\r\n0\r\n\r\nGET http://h/n HTTP/1.1\r\n\r\n", ["POST http://h/", "GET http://h/n"]],
    ["14 are an error in both", "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000001\r\na\r\n0\r\n\r\n", ["POST http://h/", 'ERROR chunked body: invalid chunk size "00000000000001"']],
    ["Upgrade without Connection: upgrade may switch too", "GET http://h/ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x05hello", ["GET http://h/ws"]],
    ["a body before the switch is framed first", "POST http://h/u HTTP/1.1\r\nUpgrade: x\r\nContent-Length: 3\r\n\r\nabcGET http://h/ HTTP/1.1\r\n\r\n", ["POST http://h/u"]],
    ["obsolete line folding is refused", "GET http://h/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n", ["ERROR obsolete line folding in header section"]],
    ["a control byte in a head is refused", "GET http://h/ HTTP/1.1\r\nX: a\x01b\r\n\r\n", ["ERROR not HTTP/1.x: binary byte 0x01 in request head"]],
    ["differing Content-Lengths", "POST http://h/ HTTP/1.1\r\nContent-Length: 2, 3\r\n\r\nab", ['ERROR invalid Content-Length: "2, 3"']],
  ];
  for (const [name, stream, framer] of cases) {
    test(name, () => {
      expect(viaFramer(stream)).toEqual(framer);
      // The decoder names the head differently ("message head") and waits where the proxy goes opaque.
      const decoder = viaDecoder(stream).map((l) => l.replace("in message head", "in request head"));
      const switches = decoder.at(-1) === "SWITCH?";
      expect(switches ? decoder.slice(0, -1) : decoder).toEqual(framer);
      expect(switches).toBe(/Upgrade/.test(stream));
    });
  }

  test("after a possible switch the proxy relays the rest opaquely", () => {
    const h = "GET http://h/ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
    expect(feedAll(enc(`${h}\x81\x05hello`), [])).toEqual([`HEAD GET http://h/ws | ${h.length}`, "BODY \x81\x05hello"]);
  });
});

describe("request heads", () => {
  test("CONNECT authority-form, absolute-form, origin-form", () => {
    const head = (s: string) => {
      const r = parseRequestHead(enc(s));
      if (r.status !== "ok") throw new Error(r.status);
      return r.head;
    };
    expect(classifyRequest(head("CONNECT api.openai.com:443 HTTP/1.1\r\n\r\n"))).toEqual({ kind: "connect", host: "api.openai.com", port: 443 });
    expect(classifyRequest(head("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n"))).toEqual({ kind: "connect", host: "::1", port: 8443 });
    expect(classifyRequest(head("CONNECT API.OpenAI.com HTTP/1.1\r\n\r\n")).kind).toBe("reject");
    expect(classifyRequest(head("CONNECT h:70000 HTTP/1.1\r\n\r\n")).kind).toBe("reject");
    expect(classifyRequest(head("GET http://LocalHost:11434/api/chat?a=1 HTTP/1.1\r\n\r\n"))).toEqual({ kind: "absolute", host: "localhost", port: 11434, path: "/api/chat?a=1" });
    expect(classifyRequest(head("GET http://h HTTP/1.0\r\n\r\n"))).toEqual({ kind: "absolute", host: "h", port: 80, path: "/" });
    expect(classifyRequest(head("GET http://h?q HTTP/1.1\r\n\r\n"))).toEqual({ kind: "absolute", host: "h", port: 80, path: "/?q" });
    expect(classifyRequest(head("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))).toMatchObject({ kind: "reject", status: 400 });
    expect(classifyRequest(head("GET https://h/ HTTP/1.1\r\n\r\n"))).toMatchObject({ kind: "reject", status: 400 });
    expect(classifyRequest(head("GET http://u:p@h/ HTTP/1.1\r\n\r\n"))).toMatchObject({ kind: "reject", status: 400 });
  });

  test("malformed heads and bounds", () => {
    expect(parseRequestHead(enc("GET /\r\n\r\n"))).toMatchObject({ status: "bad" });
    expect(parseRequestHead(enc("GET / HTTP/2\r\n\r\n"))).toMatchObject({ status: "bad" });
    expect(parseRequestHead(enc("GET / HTTP/1.1\r\nno colon\r\n\r\n"))).toMatchObject({ status: "bad" });
    expect(parseRequestHead(enc("GET / HTTP/1.1\r\nHost: x\r\n"))).toEqual({ status: "need-more" });
    expect(parseRequestHead(enc(`GET / HTTP/1.1\r\nX: ${"a".repeat(100)}`), 50)).toEqual({ status: "too-large", limit: 50 });
    expect(parseAuthority("h:0")).toBeUndefined();
  });

  test("HeadReader: slow drip stays correct", () => {
    const s = enc("CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n\x16\x03\x01");
    const r = new HeadReader();
    let last;
    for (let i = 0; i < s.length; i++) {
      last = r.push(s.subarray(i, i + 1));
      if (last.status === "ok") {
        expect(i).toBe(s.length - 4);
        expect(last.head.length).toBe(s.length - 3);
        break;
      }
      expect(last.status).toBe("need-more");
    }
    expect(last?.status).toBe("ok");
  });

  test("request line rewrite keeps every other byte", () => {
    const raw = enc("\r\nPOST http://localhost:11434/api/chat HTTP/1.1\r\nHost: localhost:11434\r\nX-Bin: \x80\xff\r\n\r\n");
    expect(dec(rewriteRequestLine(raw, "/api/chat"))).toBe("\r\nPOST /api/chat HTTP/1.1\r\nHost: localhost:11434\r\nX-Bin: \x80\xff\r\n\r\n");
    expect(dec(rewriteRequestLine(enc("GET http://h/x HTTP/1.0\n\n"), "/x"))).toBe("GET /x HTTP/1.0\n\n");
  });
});

describe("the proxy's first decision, without a socket (capture/proxy/proxy-request.ts)", () => {
  const reader = (loops = false) => new ProxyRequestReader(1024, () => loops);
  test("CONNECT: host, port and what followed the head, at any split", () => {
    const s = enc("CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n\x16\x03\x01");
    for (let cut = 1; cut < s.length; cut++) {
      const r = reader();
      const first = r.push(s.subarray(0, cut));
      const d = first.kind === "need-more" ? r.push(s.subarray(cut)) : first;
      expect(d).toMatchObject({ kind: "connect", host: "api.openai.com", port: 443 });
      // The rest is what arrived with the head; later bytes stay on the socket for the tunnel.
      const headLength = s.length - 3;
      if (d.kind === "connect") expect([...d.rest]).toEqual([0x16, 0x03, 0x01].slice(0, first.kind === "need-more" ? 3 : Math.max(0, cut - headLength)));
    }
  });
  test("absolute-form goes to a plain session with every byte read; TLS, bad heads, loops are refused", () => {
    const plain = enc("GET http://localhost:11434/api/tags HTTP/1.1\r\n\r\nGET http://h/ HTTP/1.1\r\n");
    const d = reader().push(plain);
    expect(d.kind).toBe("plain");
    if (d.kind === "plain") expect(dec(d.bytes)).toBe(dec(plain));
    expect(reader().push(enc("\x16\x03\x01\x02\x00"))).toEqual({ kind: "tls" });
    expect(reader().push(enc("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))).toMatchObject({ kind: "bad", status: 400 });
    expect(reader().push(enc(`GET http://h/ HTTP/1.1\r\nX: ${"a".repeat(2000)}`))).toEqual({ kind: "bad", status: 431, reason: "request head larger than 1024 bytes" });
    expect(reader(true).push(enc("CONNECT 127.0.0.1:8080 HTTP/1.1\r\n\r\n"))).toEqual({ kind: "bad", status: 400, reason: "127.0.0.1:8080 is this proxy; the request would loop" });
  });
});
