// What the HTTP/1.1 and HTTP/2 connection decoders share about a message body once content-decoded:
// the pieces grouped by arrival time, and the body's fate (cut at the size limit, or not decodable).
import type { ContentDecoder } from "./encodings.ts";
import { concatBytes, type HttpRequestRecord, type HttpResponseRecord, type TimedChunk } from "./types.ts";

/** Decoded body pieces with arrival times; pieces arriving at the same time share one chunk (joined once). */
export class TimedChunkCollector {
  private readonly done: TimedChunk[] = [];
  /**
   * The pending chunk: its first piece (none when undefined) and, only when more arrived at the same time, the
   * others. Nearly every chunk is one piece (one network read): no array to fill and empty for each.
   */
  private first?: Uint8Array;
  private more?: Uint8Array[];
  private pendingTs = 0;

  add(pieces: Uint8Array[], ts: number): void {
    for (const piece of pieces) this.addPiece(piece, ts);
  }

  /** One piece (kept as it is: the caller's own copy). */
  addPiece(piece: Uint8Array, ts: number): void {
    if (piece.length === 0) return;
    if (this.first !== undefined) {
      if (ts === this.pendingTs) {
        (this.more ??= []).push(piece);
        return;
      }
      this.flush();
    }
    this.first = piece;
    this.pendingTs = ts;
  }

  /** Every chunk so far, the pending one included. */
  chunks(): TimedChunk[] {
    this.flush();
    return this.done;
  }

  /** The whole body as one array (a request body is kept so): the one chunk itself when there is one. */
  bytes(): Uint8Array {
    const chunks = this.chunks();
    return chunks.length === 1 ? chunks[0]!.data : concatBytes(chunks.map((c) => c.data));
  }

  private flush(): void {
    const first = this.first;
    if (first === undefined) return;
    const more = this.more;
    this.done.push({ ts: this.pendingTs, data: more === undefined ? first : concatBytes([first, ...more]) });
    this.first = undefined;
    this.more = undefined;
  }
}

/** Ends a body's content decoding: its last output is kept when the body arrived whole, else the decoder is abandoned. */
export function endDecoding(decoder: ContentDecoder, body: TimedChunkCollector, ts: number, complete: boolean): void {
  if (complete) body.add(decoder.end(), ts);
  else decoder.abort();
}

/** Records what the content decoder says about a finished body; true when it was cut at the size limit. */
export function settleBody(record: HttpRequestRecord | HttpResponseRecord, decoder: ContentDecoder): boolean {
  record.bodyTruncated = decoder.truncated;
  if (decoder.error !== undefined) record.decodeError = decoder.error;
  return decoder.truncated;
}
