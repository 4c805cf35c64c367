// Sans-IO TLS ClientHello peek: feed the first bytes a client sends, learn SNI and the ALPN offer. A wire
// format shared by mitm (the intercept decision) and the eBPF source (which process spoke TLS to whom).
// Handles a ClientHello split across TCP segments and across several TLS handshake records.
// It never consumes anything: the caller replays every byte it pushed (see bytes()).

export interface ClientHello {
  /** server_name (host_name), lower-cased; absent when the client sent none. */
  sni?: string;
  /** ALPN protocols offered, in client preference order; empty when the extension is absent. */
  alpn: string[];
  /** legacy_version from the hello body (0x0303 for TLS 1.2 and 1.3). */
  legacyVersion: number;
  /** supported_versions offered (0x0304 means TLS 1.3 is on offer). */
  supportedVersions: number[];
}

export type ClientHelloResult =
  | { status: "need-more" }
  | { status: "ok"; hello: ClientHello }
  /** The stream does not start like TLS (plain HTTP, SSH, SSLv2...). */
  | { status: "not-tls" }
  /** Starts like TLS but is malformed. */
  | { status: "invalid"; reason: string }
  | { status: "too-large"; limit: number };

export const DEFAULT_MAX_CLIENT_HELLO = 64 * 1024;

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const MAX_RECORD_PAYLOAD = 16384 + 2048;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const EXT_SUPPORTED_VERSIONS = 43;

class Malformed extends Error {}

/** Incremental ClientHello reader. push() chunks until the result is not "need-more". */
export class ClientHelloParser {
  private chunks: Uint8Array[] = [];
  private total = 0;
  private result: ClientHelloResult = { status: "need-more" };
  /** Byte count at which parsing can make progress again (end of the pending record): keeps a slow drip linear. */
  private nextUseful = 2;

  constructor(private readonly maxBytes = DEFAULT_MAX_CLIENT_HELLO) {}

  push(chunk: Uint8Array): ClientHelloResult {
    if (this.result.status !== "need-more") return this.result;
    if (chunk.length === 0) return this.result;
    this.chunks.push(chunk);
    this.total += chunk.length;
    if (this.total > this.maxBytes + 5) return (this.result = { status: "too-large", limit: this.maxBytes });
    if (this.total < this.nextUseful && this.chunks.length > 1) return this.result;
    this.result = this.parse();
    return this.result;
  }

  /** Every byte pushed so far, in order: what must be replayed to whoever handles the stream next. */
  bytes(): Uint8Array {
    if (this.chunks.length !== 1) {
      const all = new Uint8Array(this.total);
      let at = 0;
      for (const c of this.chunks) {
        all.set(c, at);
        at += c.length;
      }
      this.chunks = [all];
    }
    return this.chunks[0] ?? new Uint8Array(0);
  }

  private parse(): ClientHelloResult {
    const buf = this.bytes();
    if (buf[0] !== RECORD_HANDSHAKE) return { status: "not-tls" };
    if (buf.length >= 2 && buf[1] !== 3) return { status: "not-tls" };
    // Reassemble the handshake message from as many complete records as we have.
    const handshake: Uint8Array[] = [];
    let hsLen = 0;
    let at = 0;
    let needed: number | undefined;
    while (at + 5 <= buf.length) {
      if (buf[at] !== RECORD_HANDSHAKE) return { status: "invalid", reason: `record type ${buf[at]} before the ClientHello ended` };
      if (buf[at + 1] !== 3) return { status: "invalid", reason: "bad record version" };
      const len = (buf[at + 3]! << 8) | buf[at + 4]!;
      if (len === 0 || len > MAX_RECORD_PAYLOAD) return { status: "invalid", reason: `bad record length ${len}` };
      if (at + 5 + len > buf.length) {
        this.nextUseful = at + 5 + len;
        break;
      }
      handshake.push(buf.subarray(at + 5, at + 5 + len));
      hsLen += len;
      at += 5 + len;
      if (needed === undefined && hsLen >= 4) {
        const hs = concat(handshake, 4);
        if (hs[0] !== HANDSHAKE_CLIENT_HELLO) return { status: "invalid", reason: `handshake type ${hs[0]} is not ClientHello` };
        needed = 4 + ((hs[1]! << 16) | (hs[2]! << 8) | hs[3]!);
        if (needed > this.maxBytes) return { status: "too-large", limit: this.maxBytes };
      }
      if (needed !== undefined && hsLen >= needed) {
        try {
          return { status: "ok", hello: parseHelloBody(concat(handshake, needed).subarray(4)) };
        } catch (err) {
          return { status: "invalid", reason: (err as Error).message };
        }
      }
    }
    // With one byte only, the second (record version) can already tell "not TLS": look again at two.
    if (at + 5 > buf.length) this.nextUseful = buf.length < 2 ? 2 : at + 5;
    if (this.total > this.maxBytes) return { status: "too-large", limit: this.maxBytes };
    return { status: "need-more" };
  }
}

/** Parses a whole buffer at once (convenience for tests and callers that already hold all bytes). */
export function parseClientHello(bytes: Uint8Array, maxBytes = DEFAULT_MAX_CLIENT_HELLO): ClientHelloResult {
  return new ClientHelloParser(maxBytes).push(bytes);
}

function concat(parts: Uint8Array[], upTo: number): Uint8Array {
  if (parts.length === 1 || parts[0]!.length >= upTo) return parts[0]!.subarray(0, Math.min(upTo, parts[0]!.length));
  const out = new Uint8Array(upTo);
  let at = 0;
  for (const p of parts) {
    const n = Math.min(p.length, upTo - at);
    out.set(p.subarray(0, n), at);
    at += n;
    if (at >= upTo) break;
  }
  return out;
}

/** Bounds-checked big-endian reader over one ClientHello body. */
class Reader {
  constructor(
    private readonly buf: Uint8Array,
    private at = 0,
    private readonly end = buf.length,
  ) {}
  get remaining(): number {
    return this.end - this.at;
  }
  u8(): number {
    this.need(1);
    return this.buf[this.at++]!;
  }
  u16(): number {
    this.need(2);
    const v = (this.buf[this.at]! << 8) | this.buf[this.at + 1]!;
    this.at += 2;
    return v;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  /** A sub-reader over the next n bytes (a length-prefixed vector). */
  sub(n: number): Reader {
    this.need(n);
    const r = new Reader(this.buf, this.at, this.at + n);
    this.at += n;
    return r;
  }
  private need(n: number) {
    if (this.at + n > this.end) throw new Malformed("ClientHello truncated or a length field overruns it");
  }
}

function parseHelloBody(body: Uint8Array): ClientHello {
  const r = new Reader(body);
  const legacyVersion = r.u16();
  r.bytes(32); // random
  r.bytes(r.u8()); // legacy_session_id
  const suites = r.u16();
  if (suites === 0 || suites % 2 !== 0) throw new Malformed("bad cipher_suites length");
  r.bytes(suites);
  const compression = r.u8();
  if (compression === 0) throw new Malformed("empty compression_methods");
  r.bytes(compression);
  const hello: ClientHello = { legacyVersion, alpn: [], supportedVersions: [] };
  if (r.remaining === 0) return hello; // no extensions (old clients)
  const exts = r.sub(r.u16());
  while (exts.remaining > 0) {
    const type = exts.u16();
    const data = exts.sub(exts.u16());
    if (type === EXT_SERVER_NAME) hello.sni = readSni(data);
    else if (type === EXT_ALPN) hello.alpn = readAlpn(data);
    else if (type === EXT_SUPPORTED_VERSIONS) {
      const list = data.sub(data.u8());
      while (list.remaining > 0) hello.supportedVersions.push(list.u16());
    }
  }
  return hello;
}

function readSni(data: Reader): string | undefined {
  if (data.remaining === 0) return undefined;
  const list = data.sub(data.u16());
  while (list.remaining > 0) {
    const nameType = list.u8();
    const name = list.bytes(list.u16());
    if (nameType !== 0) continue;
    const host = new TextDecoder().decode(name);
    if (!/^[a-zA-Z0-9._-]{1,253}$/.test(host)) throw new Malformed("server_name is not a host name");
    return host.toLowerCase();
  }
  return undefined;
}

function readAlpn(data: Reader): string[] {
  const list = data.sub(data.u16());
  const out: string[] = [];
  while (list.remaining > 0) {
    const len = list.u8();
    if (len === 0) throw new Malformed("empty ALPN protocol name");
    out.push(new TextDecoder().decode(list.bytes(len)));
  }
  return out;
}
