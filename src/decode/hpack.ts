// HPACK header decompression (RFC 7541) for a passive HTTP/2 observer: one decoder per direction
// of a connection. Integers, string literals (plain or Huffman), the static table, the dynamic
// table with size updates and eviction. Errors are returned as values: after one, the
// compression context is lost (RFC 7541 §2.2 makes that a connection error) and the decoder
// refuses further blocks. A header list larger than maxHeaderListSize is still decoded to keep
// the dynamic table in sync, but the fields past the limit are dropped and `truncated` is set.
import { HUFFMAN_CODES, HUFFMAN_EOS } from "./hpack-huffman-table.ts";
import type { HeaderList } from "./types.ts";

/** RFC 7541 Appendix A. Index 1 is STATIC_TABLE[0]. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"], [":path", "/index.html"],
  [":scheme", "http"], [":scheme", "https"], [":status", "200"], [":status", "204"], [":status", "206"],
  [":status", "304"], [":status", "400"], [":status", "404"], [":status", "500"], ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"], ["accept-language", ""], ["accept-ranges", ""], ["accept", ""],
  ["access-control-allow-origin", ""], ["age", ""], ["allow", ""], ["authorization", ""], ["cache-control", ""],
  ["content-disposition", ""], ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""], ["date", ""], ["etag", ""],
  ["expect", ""], ["expires", ""], ["from", ""], ["host", ""], ["if-match", ""], ["if-modified-since", ""],
  ["if-none-match", ""], ["if-range", ""], ["if-unmodified-since", ""], ["last-modified", ""], ["link", ""],
  ["location", ""], ["max-forwards", ""], ["proxy-authenticate", ""], ["proxy-authorization", ""], ["range", ""],
  ["referer", ""], ["refresh", ""], ["retry-after", ""], ["server", ""], ["set-cookie", ""],
  ["strict-transport-security", ""], ["transfer-encoding", ""], ["user-agent", ""], ["vary", ""], ["via", ""],
  ["www-authenticate", ""],
];

/** Per-entry overhead counted in the table size (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;
export const DEFAULT_HEADER_TABLE_SIZE = 4096;
const DEFAULT_MAX_HEADER_LIST_SIZE = 256 * 1024;

// Binary trie of the Huffman code: node i has children at trie[2i] (bit 0) and trie[2i+1] (bit 1).
// A child value >= 0 is another node; -1 - symbol is a leaf; EMPTY means no such code.
const EMPTY = 0x7fffffff;
const EOS_SYMBOL = 256;
const HUFFMAN_TRIE = buildTrie();

function buildTrie(): Int32Array {
  const trie = new Int32Array(2 * 512).fill(EMPTY);
  let nodes = 1;
  const add = (code: number, bits: number, symbol: number) => {
    let node = 0;
    for (let i = bits - 1; i >= 0; i--) {
      const slot = 2 * node + ((code >>> i) & 1);
      if (i === 0) trie[slot] = -1 - symbol;
      else {
        if (trie[slot] === EMPTY) trie[slot] = nodes++;
        node = trie[slot]!;
      }
    }
  };
  HUFFMAN_CODES.forEach(([code, bits], symbol) => add(code, bits, symbol));
  add(HUFFMAN_EOS.code, HUFFMAN_EOS.bits, EOS_SYMBOL);
  return trie;
}

export class HpackError extends Error {}

/** Decodes a Huffman-coded string (RFC 7541 §5.2): padding must be < 8 bits, all ones; EOS is an error. */
export function huffmanDecode(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil((input.length * 8) / 5));
  let n = 0;
  let node = 0;
  let depth = 0; // bits since the last symbol
  let allOnes = true;
  for (const byte of input) {
    for (let i = 7; i >= 0; i--) {
      const bit = (byte >> i) & 1;
      const next = HUFFMAN_TRIE[2 * node + bit]!;
      depth++;
      if (bit === 0) allOnes = false;
      if (next === EMPTY) throw new HpackError("invalid Huffman code");
      if (next < 0) {
        const symbol = -1 - next;
        if (symbol === EOS_SYMBOL) throw new HpackError("Huffman string contains EOS");
        out[n++] = symbol;
        node = 0;
        depth = 0;
        allOnes = true;
      } else node = next;
    }
  }
  if (depth > 7) throw new HpackError("Huffman padding longer than 7 bits");
  if (!allOnes) throw new HpackError("Huffman padding is not a prefix of EOS");
  return out.subarray(0, n);
}

const latin1 = new TextDecoder("latin1");

export interface HpackDecoderOptions {
  /** SETTINGS_HEADER_TABLE_SIZE the decoding side advertised (the most the encoder may use). Default 4096. */
  maxTableSize?: number;
  /** Largest decoded header list (names + values + 32 per field) kept. Default 256 KiB. */
  maxHeaderListSize?: number;
}

export type HpackResult =
  | { ok: true; headers: HeaderList; /** Fields dropped because the list exceeded maxHeaderListSize. */ truncated: boolean }
  | { ok: false; error: string };

export class HpackDecoder {
  /** Dynamic table, newest first. */
  private entries: Array<[string, string]> = [];
  private size = 0;
  private capacity: number;
  private protocolMax: number;
  private readonly maxHeaderListSize: number;
  private failed?: string;

  constructor(opts: HpackDecoderOptions = {}) {
    this.protocolMax = opts.maxTableSize ?? DEFAULT_HEADER_TABLE_SIZE;
    this.capacity = this.protocolMax;
    this.maxHeaderListSize = opts.maxHeaderListSize ?? DEFAULT_MAX_HEADER_LIST_SIZE;
  }

  /** Current dynamic table size in RFC 7541 units (octets + 32 per entry). */
  get tableSize(): number {
    return this.size;
  }

  get tableCapacity(): number {
    return this.capacity;
  }

  /** Dynamic table entries, newest first (index 62 is the first). */
  get dynamicEntries(): ReadonlyArray<readonly [string, string]> {
    return this.entries;
  }

  /**
   * The decoding side advertised a SETTINGS_HEADER_TABLE_SIZE. A passive observer cannot know
   * exactly when the peer acknowledged it, so the largest value seen so far bounds size updates.
   * The table itself keeps its size until the encoder sends a size update (RFC 7541 §4.2, §6.3),
   * as nghttp2's decoder assumes too.
   */
  setProtocolMaxTableSize(size: number): void {
    this.protocolMax = Math.max(this.protocolMax, size);
  }

  decode(block: Uint8Array): HpackResult {
    if (this.failed !== undefined) return { ok: false, error: `compression context lost earlier: ${this.failed}` };
    try {
      return this.decodeBlock(block);
    } catch (err) {
      this.failed = err instanceof HpackError ? err.message : `internal error: ${(err as Error).message}`;
      return { ok: false, error: this.failed };
    }
  }

  private decodeBlock(block: Uint8Array): HpackResult {
    const headers: HeaderList = [];
    let listSize = 0;
    let truncated = false;
    let pos = 0;
    let fieldSeen = false;
    const readInt = (prefixBits: number): number => {
      const r = decodeInteger(block, pos, prefixBits);
      pos = r.next;
      return r.value;
    };
    const readString = (): string => {
      const r = decodeString(block, pos);
      pos = r.next;
      return r.value;
    };
    const emit = (name: string, value: string) => {
      fieldSeen = true;
      const fieldSize = name.length + value.length + ENTRY_OVERHEAD;
      if (truncated || listSize + fieldSize > this.maxHeaderListSize) {
        truncated = true;
        return;
      }
      listSize += fieldSize;
      headers.push([name, value]);
    };
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        // Indexed header field (§6.1).
        const index = readInt(7);
        if (index === 0) throw new HpackError("indexed header field with index 0");
        const [name, value] = this.lookup(index);
        emit(name, value);
      } else if (b & 0x40) {
        // Literal with incremental indexing (§6.2.1).
        const index = readInt(6);
        const name = index === 0 ? readString() : this.lookup(index)[0];
        const value = readString();
        this.insert(name, value);
        emit(name, value);
      } else if (b & 0x20) {
        // Dynamic table size update (§6.3): only at the start of a block.
        if (fieldSeen) throw new HpackError("dynamic table size update after a header field");
        const size = readInt(5);
        if (size > this.protocolMax) throw new HpackError(`table size update ${size} above the advertised ${this.protocolMax}`);
        this.capacity = size;
        this.evict(0);
      } else {
        // Literal without indexing (0000) or never indexed (0001) (§6.2.2, §6.2.3).
        const index = readInt(4);
        const name = index === 0 ? readString() : this.lookup(index)[0];
        const value = readString();
        emit(name, value);
      }
    }
    return { ok: true, headers, truncated };
  }

  private lookup(index: number): readonly [string, string] {
    if (index <= STATIC_TABLE.length) {
      const entry = STATIC_TABLE[index - 1];
      if (entry) return entry;
    }
    const entry = this.entries[index - STATIC_TABLE.length - 1];
    if (!entry) throw new HpackError(`header index ${index} outside the tables`);
    return entry;
  }

  private insert(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    // An entry larger than the table empties it and is not added (§4.4).
    this.evict(entrySize);
    if (entrySize <= this.capacity) {
      this.entries.unshift([name, value]);
      this.size += entrySize;
    }
  }

  /** Evicts oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    while (this.entries.length > 0 && this.size + room > this.capacity) {
      const [name, value] = this.entries.pop()!;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }
}

/** Prefixed integer (§5.1). Values beyond 2^31 are refused: no real header needs them. */
export function decodeInteger(buf: Uint8Array, pos: number, prefixBits: number): { value: number; next: number } {
  if (pos >= buf.length) throw new HpackError("truncated integer");
  const max = (1 << prefixBits) - 1;
  let value = buf[pos]! & max;
  pos++;
  if (value < max) return { value, next: pos };
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new HpackError("truncated integer");
    const b = buf[pos++]!;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (value > 0x7fffffff) throw new HpackError("integer overflow");
    if ((b & 0x80) === 0) return { value, next: pos };
  }
}

/** String literal (§5.2); octets map 1:1 to chars (latin1) so table sizes stay in octets. */
function decodeString(buf: Uint8Array, pos: number): { value: string; next: number } {
  if (pos >= buf.length) throw new HpackError("truncated string literal");
  const huffman = (buf[pos]! & 0x80) !== 0;
  const { value: length, next } = decodeInteger(buf, pos, 7);
  if (next + length > buf.length) throw new HpackError("string literal longer than the header block");
  const raw = buf.subarray(next, next + length);
  return { value: latin1.decode(huffman ? huffmanDecode(raw) : raw), next: next + length };
}
