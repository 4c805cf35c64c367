// The ring-buffer records of ffi/bpf/tls.bpf.c (struct rec), decoded. Sans-IO: bytes in, records out.
// The Worker (ring-worker.ts) ships records as a batch: repeated [u32 little-endian length][record bytes].

export const HEADER_SIZE = 104;

export const KIND = { data: 1, bind: 2, close: 3, sni: 4, exit: 5, exec: 6 } as const;
export type RecordKind = keyof typeof KIND;
const KIND_NAMES: Record<number, RecordKind> = Object.fromEntries(Object.entries(KIND).map(([k, v]) => [v, k as RecordKind]));

/** Which way the application moved the bytes: into the TLS library (write) or out of it (read). */
export type TlsOp = "write" | "read";

export interface TlsRecord {
  kind: RecordKind;
  /** CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns). */
  tsNs: bigint;
  /** The session: pid + SSL* pointer, as a string key. */
  session: string;
  pid: number;
  tid: number;
  /** data: offset of `data` in its direction's stream; close: bytes written in total. */
  offset: number;
  /** close: bytes read in total; data: bytes the SSL call moved in all. */
  aux: number;
  fd: number;
  op: TlsOp;
  /** Socket of the session, once bound (family 0: not yet). Local end first. */
  family: number;
  local?: { ip: string; port: number };
  remote?: { ip: string; port: number };
  comm: string;
  data: Uint8Array;
}

function ip(bytes: Uint8Array, family: number): string {
  if (family === 2) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const v4mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (v4mapped) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // Longest run of zero groups becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

const latin1 = new TextDecoder("latin1");

/** Decodes one record (a view into `buf`; data is a subarray, copy what outlives the batch). */
export function decodeRecord(buf: Uint8Array): TlsRecord | undefined {
  if (buf.length < HEADER_SIZE) return undefined;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const kind = KIND_NAMES[v.getUint8(48)];
  if (!kind) return undefined;
  const len = v.getUint32(40, true);
  if (HEADER_SIZE + len > buf.length) return undefined;
  const pid = v.getUint32(32, true);
  const family = v.getUint16(50, true);
  const comm = latin1.decode(buf.subarray(88, 104));
  const nul = comm.indexOf("\0");
  const rec: TlsRecord = {
    kind,
    tsNs: v.getBigUint64(0, true),
    session: `${pid}:${v.getBigUint64(8, true).toString(16)}`,
    pid,
    tid: v.getUint32(36, true),
    offset: Number(v.getBigUint64(16, true)),
    aux: Number(v.getBigUint64(24, true)),
    fd: v.getInt32(44, true),
    op: v.getUint8(49) === 1 ? "read" : "write",
    family,
    comm: nul < 0 ? comm : comm.slice(0, nul),
    data: buf.subarray(HEADER_SIZE, HEADER_SIZE + len),
  };
  if (family === 2 || family === 10) {
    rec.local = { ip: ip(buf.subarray(56, 72), family), port: v.getUint16(52, true) };
    rec.remote = { ip: ip(buf.subarray(72, 88), family), port: v.getUint16(54, true) };
  }
  return rec;
}

/** Splits a Worker batch into record byte views. */
export function* batchRecords(batch: Uint8Array): Generator<Uint8Array> {
  const v = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  let at = 0;
  while (at + 4 <= batch.length) {
    const n = v.getUint32(at, true);
    at += 4;
    if (at + n > batch.length) return;
    yield batch.subarray(at, at + n);
    at += n;
  }
}
