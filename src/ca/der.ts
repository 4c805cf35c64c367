// Just enough DER (X.690) to write our certificates (certificate.ts) and to read the parts of the CA
// certificate that signing a leaf needs.

const concat = (parts: Uint8Array[]): Uint8Array<ArrayBuffer> => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

/** One element: tag, definite length, contents. */
export function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const body = concat(contents);
  return concat([Uint8Array.of(tag, ...lengthBytes(body.length)), body]);
}

export const seq = (...items: Uint8Array[]) => tlv(0x30, ...items);
export const set = (...items: Uint8Array[]) => tlv(0x31, ...items);
export const octets = (bytes: Uint8Array) => tlv(0x04, bytes);
export const utf8 = (text: string) => tlv(0x0c, new TextEncoder().encode(text));
/** Context-specific constructed [n] (EXPLICIT). */
export const explicit = (n: number, inner: Uint8Array) => tlv(0xa0 | n, inner);
/** Context-specific primitive [n] (IMPLICIT over a primitive type). */
export const implicit = (n: number, bytes: Uint8Array) => tlv(0x80 | n, bytes);
/** A BIT STRING of whole bytes (no unused bits). */
export const bits = (bytes: Uint8Array) => tlv(0x03, Uint8Array.of(0), bytes);
export const TRUE = Uint8Array.of(0x01, 0x01, 0xff);

/** A non-negative INTEGER from its big-endian magnitude (minimal, with a 0x00 when the top bit is set). */
export function unsignedInt(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const m = magnitude.subarray(start);
  return tlv(0x02, ...(m[0]! & 0x80 ? [Uint8Array.of(0), m] : [m]));
}

export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map(Number);
  const out: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const base128: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift(0x80 | (v & 0x7f));
    out.push(...base128);
  }
  return tlv(0x06, Uint8Array.from(out));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, always in seconds and Z. */
export function time(date: Date): Uint8Array {
  const iso = date.toISOString(); // 2026-12-05T03:31:04.123Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, "") + "Z"; // 20261205033104Z
  const year = date.getUTCFullYear();
  return year < 2050 ? tlv(0x17, new TextEncoder().encode(digits.slice(2))) : tlv(0x18, new TextEncoder().encode(digits));
}

/** WebCrypto's ECDSA signature (r ‖ s, each `size` bytes) as the DER Ecdsa-Sig-Value X.509 wants. */
export function ecdsaSignatureDer(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  return seq(unsignedInt(raw.subarray(0, half)), unsignedInt(raw.subarray(half)));
}

/** An element read from DER: its tag, where it starts (`at`), where its contents are (`start`..`end`). */
export interface Element {
  tag: number;
  at: number;
  start: number;
  end: number;
}

/** Reads the element at `at`; throws on anything that is not well-formed definite-length DER. */
export function readElement(der: Uint8Array, at: number, limit = der.length): Element {
  if (at + 2 > limit) throw new Error("truncated DER");
  const tag = der[at]!;
  if ((tag & 0x1f) === 0x1f) throw new Error("multi-byte DER tags are not supported");
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new Error("bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new Error("truncated DER");
  return { tag, at, start, end };
}

/** The elements inside a constructed one. */
export function childrenOf(der: Uint8Array, parent: Element): Element[] {
  const out: Element[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const e = readElement(der, at, parent.end);
    out.push(e);
    at = e.end;
  }
  return out;
}

export const whole = (der: Uint8Array, e: Element) => der.subarray(e.at, e.end);
export const contents = (der: Uint8Array, e: Element) => der.subarray(e.start, e.end);
