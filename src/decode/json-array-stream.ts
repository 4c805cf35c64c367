// A JSON array streamed element by element (Gemini streamGenerateContent without alt=sse sends
// "[{...}\r\n,\r\n{...}\r\n]" as the response is generated). Sans-IO: push body bytes, get each
// top-level element as soon as its closing bracket arrives. Only string/escape state and nesting
// depth are tracked while scanning; each finished element is handed to JSON.parse. Bounded.

export type JsonArrayItem = { type: "value"; value: unknown } | { type: "error"; message: string; fatal: boolean };

export interface JsonArrayStreamOptions {
  /** Longest element kept, in characters. Default 8 MiB. */
  maxElementLength?: number;
}

const DEFAULT_MAX_ELEMENT_LENGTH = 8 * 1024 * 1024;

export class JsonArrayStreamParser {
  private readonly decoder = new TextDecoder("utf-8");
  private readonly maxElementLength: number;
  /** before: waiting for "["; between: waiting for an element, "," or "]"; element: inside one; after: "]" seen. */
  private state: "before" | "between" | "element" | "after" | "failed" = "before";
  private depth = 0;
  private inString = false;
  private escaped = false;
  private element = "";
  /** An element dropped for its size: scan on to its end without keeping it. */
  private dropping = false;
  private _complete = false;

  constructor(opts: JsonArrayStreamOptions = {}) {
    this.maxElementLength = opts.maxElementLength ?? DEFAULT_MAX_ELEMENT_LENGTH;
  }

  /** True once the closing "]" was seen. */
  get complete(): boolean {
    return this._complete;
  }

  push(bytes: Uint8Array): JsonArrayItem[] {
    return this.feed(this.decoder.decode(bytes, { stream: true }));
  }

  end(): JsonArrayItem[] {
    const items = this.feed(this.decoder.decode());
    if (this.state === "element" || this.state === "between") {
      items.push({ type: "error", message: "json array: body ended before the closing bracket", fatal: true });
    }
    return items;
  }

  private feed(text: string): JsonArrayItem[] {
    const items: JsonArrayItem[] = [];
    let elementStart = this.state === "element" ? 0 : -1;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      switch (this.state) {
        case "before":
          if (c === 0x5b /* [ */) this.state = "between";
          else if (c === 0xfeff || isSpace(c)) continue;
          else return this.fail(items, "json array: body does not start with [");
          break;
        case "between":
          if (isSpace(c) || c === 0x2c /* , */) continue;
          if (c === 0x5d /* ] */) {
            this.state = "after";
            this._complete = true;
            continue;
          }
          this.state = "element";
          this.depth = 0;
          this.inString = false;
          this.escaped = false;
          elementStart = i;
          i--; // scan this character as part of the element
          break;
        case "element": {
          if (this.inString) {
            if (this.escaped) this.escaped = false;
            else if (c === 0x5c /* \ */) this.escaped = true;
            else if (c === 0x22 /* " */) this.inString = false;
            continue;
          }
          let ended = false;
          if (c === 0x22) this.inString = true;
          else if (c === 0x7b || c === 0x5b) this.depth++;
          else if (c === 0x7d || c === 0x5d) {
            if (this.depth === 0) {
              // A "}" with nothing open: re-scanning it from "between" would loop forever.
              if (c === 0x7d) return this.fail(items, "json array: unbalanced }");
              // "]" closing the array right after a scalar element.
              this.emit(text.slice(elementStart, i), items);
              this.state = "between";
              i--;
              continue;
            }
            this.depth--;
            ended = this.depth === 0;
          } else if (this.depth === 0 && (c === 0x2c || isSpace(c))) {
            this.emit(text.slice(elementStart, i), items);
            this.state = "between";
            continue;
          }
          if (ended) {
            this.emit(text.slice(elementStart, i + 1), items);
            this.state = "between";
          }
          break;
        }
        case "after":
          if (!isSpace(c)) return this.fail(items, "json array: data after the closing bracket");
          break;
        case "failed":
          return items;
      }
    }
    if (this.state === "element") this.keep(text.slice(Math.max(elementStart, 0)), items);
    return items;
  }

  /** Part of an element that continues in the next push. */
  private keep(piece: string, items: JsonArrayItem[]): void {
    if (this.dropping) return;
    this.element += piece;
    if (this.element.length > this.maxElementLength) {
      this.element = "";
      this.dropping = true;
      items.push({ type: "error", message: `json array: element longer than ${this.maxElementLength} characters dropped`, fatal: false });
    }
  }

  private emit(tail: string, items: JsonArrayItem[]): void {
    const dropping = this.dropping;
    const textOf = this.element + tail;
    this.element = "";
    this.dropping = false;
    if (dropping) return;
    if (textOf.length > this.maxElementLength) {
      items.push({ type: "error", message: `json array: element longer than ${this.maxElementLength} characters dropped`, fatal: false });
      return;
    }
    try {
      items.push({ type: "value", value: JSON.parse(textOf) });
    } catch (err) {
      items.push({ type: "error", message: `json array: ${(err as Error).message}`, fatal: false });
    }
  }

  private fail(items: JsonArrayItem[], message: string): JsonArrayItem[] {
    this.state = "failed";
    items.push({ type: "error", message, fatal: true });
    return items;
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
