// Newline-delimited JSON (Ollama's streaming format, application/x-ndjson), sans-IO: push body
// bytes, get one parsed value per complete line. A line that is not JSON is an error item and the
// stream goes on with the next line. Lines are bounded; an over-long line is dropped and reported.

export type NdjsonItem = { type: "value"; value: unknown } | { type: "error"; message: string };

export interface NdjsonParserOptions {
  /** Longest line kept, in characters. Default 4 MiB. */
  maxLineLength?: number;
}

const DEFAULT_MAX_LINE_LENGTH = 4 * 1024 * 1024;

export class NdjsonParser {
  private readonly decoder = new TextDecoder("utf-8");
  private partial = "";
  private dropping = false;
  private readonly maxLineLength: number;

  constructor(opts: NdjsonParserOptions = {}) {
    this.maxLineLength = opts.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
  }

  push(bytes: Uint8Array): NdjsonItem[] {
    return this.feed(this.decoder.decode(bytes, { stream: true }));
  }

  /** The body ended: a last line without its newline still counts. */
  end(): NdjsonItem[] {
    const items = this.feed(this.decoder.decode());
    if (!this.dropping && this.partial.trim() !== "") items.push(parseLine(this.partial));
    this.partial = "";
    this.dropping = false;
    return items;
  }

  private feed(text: string): NdjsonItem[] {
    const items: NdjsonItem[] = [];
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl === -1) break;
      const line = this.partial + text.slice(start, nl);
      start = nl + 1;
      this.partial = "";
      if (this.dropping) {
        this.dropping = false;
        continue;
      }
      if (line.length > this.maxLineLength) items.push(this.tooLong());
      else if (line.trim() !== "") items.push(parseLine(line));
    }
    if (!this.dropping) {
      this.partial += text.slice(start);
      if (this.partial.length > this.maxLineLength) {
        items.push(this.tooLong());
        this.partial = "";
        this.dropping = true;
      }
    }
    return items;
  }

  private tooLong(): NdjsonItem {
    return { type: "error", message: `ndjson: line longer than ${this.maxLineLength} characters dropped` };
  }
}

function parseLine(line: string): NdjsonItem {
  try {
    return { type: "value", value: JSON.parse(line) };
  } catch (err) {
    return { type: "error", message: `ndjson: ${(err as Error).message}` };
  }
}
