// Server-sent events (text/event-stream) parser, per the WHATWG HTML "event stream interpretation":
// \r\n, \n and \r line endings; "field: value" with one optional space after the colon; a line
// without a colon is a field with an empty value; ":" lines are comments; a blank line dispatches.
// Sans-IO: push decoded body bytes, get the events they complete.

export interface SseEvent {
  /** The "event" field, when the stream set one (browsers default it to "message"). */
  event?: string;
  /** Data lines joined with "\n". */
  data: string;
  /** Last event ID in effect when this event was dispatched (it persists across events, per the spec). */
  id?: string;
  /** A valid "retry" field seen in this event's block. */
  retry?: number;
  /** Set only by end(): the stream stopped before the blank line that would dispatch this event. */
  incomplete?: true;
}

export interface SseParserOptions {
  /** Longest event (field lines of one block, in characters) kept; longer ones are dropped and counted. Default 4 MiB. */
  maxEventLength?: number;
}

const DEFAULT_MAX_EVENT_LENGTH = 4 * 1024 * 1024;
const LINE_BREAK = /\r\n|\r|\n/g;
/** One options object for every push (decode() is called once per network read). */
const STREAM = { stream: true };

export class SseParser {
  /** Made by the first push(): a parser fed only pushText() (a whole body decoded at once) never needs one. */
  private decoder?: TextDecoder; // strips a leading BOM, keeps split code points across pushes
  private readonly maxEventLength: number;
  /** Text of a line still waiting for its line break. */
  private partialLine = "";
  /** A push ended with "\r": a "\n" opening the next push belongs to that same line break. */
  private skipLeadingLf = false;
  /** The current line outgrew the limit and its text was thrown away; its break must not count as a blank line. */
  private lineDropped = false;
  /** The block's data lines: how many, the first, and the others (an array only for a second line, reused). */
  private dataLines = 0;
  private firstData = "";
  private moreData: string[] = [];
  /** colonAfter's memo: the text searched and the colon found there (a line without one searches on, once). */
  private colonText = "";
  private colonFrom = 0;
  private colonAt = 0;
  private eventType = "";
  private lastEventId = "";
  private retry?: number;
  private blockLength = 0;
  private discarding = false;
  private _dropped = 0;
  private _events = 0;

  constructor(opts: SseParserOptions = {}) {
    this.maxEventLength = opts.maxEventLength ?? DEFAULT_MAX_EVENT_LENGTH;
  }

  /** Events dropped because they exceeded maxEventLength. */
  get droppedEvents(): number {
    return this._dropped;
  }

  get eventCount(): number {
    return this._events;
  }

  push(bytes: Uint8Array): SseEvent[] {
    this.decoder ??= new TextDecoder("utf-8");
    return this.feed(this.decoder.decode(bytes, STREAM));
  }

  /**
   * Like push() of text already decoded (the decoder is bypassed: only for a fresh parser fed nothing else
   * before end()). `at`, when given, gets for each event the offset in `text` of the line break that
   * dispatched it, so a caller that joined several reads can tell which read completed which event.
   */
  pushText(text: string, at?: number[]): SseEvent[] {
    return this.feed(text, at);
  }

  /**
   * The stream ended. Per the spec a block without its closing blank line is not dispatched;
   * an observer still wants to see it, so it is returned marked `incomplete`.
   */
  end(): SseEvent[] {
    const events = this.decoder === undefined ? [] : this.feed(this.decoder.decode());
    if (this.partialLine !== "" && !this.lineDropped) this.processLine(this.partialLine, 0, this.partialLine.length);
    this.partialLine = "";
    this.lineDropped = false;
    if (this.discarding) {
      this._dropped++;
    } else if (this.dataLines > 0) {
      const event = this.buildEvent();
      event.incomplete = true;
      events.push(event);
      this._events++;
    }
    this.resetBlock();
    return events;
  }

  private feed(text: string, eventAt?: number[]): SseEvent[] {
    const events: SseEvent[] = [];
    let offset = 0;
    if (this.skipLeadingLf && text.length > 0) {
      if (text.charCodeAt(0) === 0x0a) {
        text = text.slice(1);
        offset = 1;
      }
      this.skipLeadingLf = false;
    }
    let start = 0;
    // Nearly every stream breaks its lines with "\n" alone: then a plain search finds them (the regex, a
    // third of the SSE parser's time, is for text that holds a "\r").
    const lfOnly = !text.includes("\r");
    LINE_BREAK.lastIndex = 0;
    for (;;) {
      let at: number;
      let breakLength = 1;
      if (lfOnly) {
        at = text.indexOf("\n", start);
        if (at === -1) break;
      } else {
        const m = LINE_BREAK.exec(text);
        if (!m) break;
        at = m.index;
        breakLength = m[0].length;
        // A "\r" that ends this push may be the first half of "\r\n": treat it as the break and
        // swallow a "\n" that opens the next push.
        if (m[0] === "\r" && at === text.length - 1) this.skipLeadingLf = true;
      }
      const lineStart = start;
      const partial = this.partialLine;
      this.partialLine = "";
      start = at + breakLength;
      if (this.lineDropped) {
        this.lineDropped = false;
        continue;
      }
      // A line within this text is read in place; one that began in an earlier push is joined first.
      let event: SseEvent | undefined;
      if (partial === "") event = this.processLine(text, lineStart, at);
      else {
        const line = partial + text.slice(lineStart, at);
        event = this.processLine(line, 0, line.length);
      }
      if (event) {
        events.push(event);
        eventAt?.push(offset + at);
      }
    }
    const rest = text.slice(start);
    if (rest !== "") {
      this.partialLine += rest;
      if (this.blockLength + this.partialLine.length > this.maxEventLength) {
        // A line that never ends must not grow without bound: drop it with its block.
        this.discarding = true;
        this.lineDropped = true;
        this.partialLine = "";
        this.clearData();
      }
    }
    return events;
  }

  /** The line text[start..end) (no line break): only the field's value is cut out of the text. */
  private processLine(text: string, start: number, end: number): SseEvent | undefined {
    if (start === end) return this.dispatch();
    if (this.discarding) return undefined;
    this.blockLength += end - start + 1;
    if (this.blockLength > this.maxEventLength) {
      this.discarding = true;
      this.clearData();
      return undefined;
    }
    if (text.charCodeAt(start) === 0x3a) return undefined; // ":" comment
    const colon = this.colonAfter(text, start);
    const fieldEnd = colon < end ? colon : end;
    let valueStart = colon < end ? colon + 1 : end;
    if (valueStart < end && text.charCodeAt(valueStart) === 0x20) valueStart++;
    const field = fieldEnd - start;
    if (field === 4 && text.startsWith("data", start)) this.addData(text.slice(valueStart, end));
    else if (field === 5 && text.startsWith("event", start)) this.eventType = text.slice(valueStart, end);
    else if (field === 2 && text.startsWith("id", start)) {
      const value = text.slice(valueStart, end);
      if (!value.includes("\0")) this.lastEventId = value;
    } else if (field === 5 && text.startsWith("retry", start)) {
      const value = text.slice(valueStart, end);
      if (/^[0-9]+$/.test(value)) this.retry = Number(value);
    }
    // unknown fields are ignored
    return undefined;
  }

  /**
   * The first ":" at or after `from` in `text` (text.length if none), remembered: lines are read in order.
   * The memo answers only for a `from` between where it searched and what it found, in the same text (equal
   * text from another push included: a line before that search's start is searched anew).
   */
  private colonAfter(text: string, from: number): number {
    if (text !== this.colonText || from < this.colonFrom || from > this.colonAt) {
      const at = text.indexOf(":", from);
      this.colonText = text;
      this.colonFrom = from;
      this.colonAt = at === -1 ? text.length : at;
    }
    return this.colonAt;
  }

  private dispatch(): SseEvent | undefined {
    let event: SseEvent | undefined;
    if (this.discarding) this._dropped++;
    else if (this.dataLines > 0) {
      event = this.buildEvent();
      this._events++;
    }
    this.resetBlock();
    return event;
  }

  private buildEvent(): SseEvent {
    const event: SseEvent = { data: this.dataLines === 1 ? this.firstData : `${this.firstData}\n${this.moreData.join("\n")}` };
    if (this.eventType !== "") event.event = this.eventType;
    if (this.lastEventId !== "") event.id = this.lastEventId;
    if (this.retry !== undefined) event.retry = this.retry;
    return event;
  }

  private addData(line: string): void {
    if (this.dataLines++ === 0) this.firstData = line;
    else this.moreData.push(line);
  }

  /** Forgets the block's data lines (no new array per event: nearly every block has one line). */
  private clearData(): void {
    if (this.dataLines > 1) this.moreData.length = 0;
    this.dataLines = 0;
    this.firstData = "";
  }

  private resetBlock(): void {
    this.clearData();
    this.eventType = "";
    this.retry = undefined;
    this.blockLength = 0;
    this.discarding = false;
  }
}

/** Parses a whole event-stream body at once (for bodies already fully received). */
export function parseSse(body: Uint8Array, opts?: SseParserOptions): SseEvent[] {
  const parser = new SseParser(opts);
  return [...parser.push(body), ...parser.end()];
}
