// A memo keyed by recently seen texts (clients re-send a conversation's history with every call, so the same
// texts come back for hashing and scanning). Bounded by count and by characters, because it keeps those texts
// in memory while the sensor idles; cleared whole when full, the working set refills it on the next call.
export class TextMemo<V> {
  private readonly entries = new Map<string, V>();
  private chars = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxChars: number,
  ) {}

  get(text: string): V | undefined {
    return this.entries.get(text);
  }

  has(text: string): boolean {
    return this.entries.has(text);
  }

  /** Remembers `value` for `text`; a text longer than the whole budget is not kept. */
  set(text: string, value: V): void {
    if (text.length > this.maxChars) return;
    if (this.entries.size >= this.maxEntries || this.chars + text.length > this.maxChars) {
      this.entries.clear();
      this.chars = 0;
    }
    this.entries.set(text, value);
    this.chars += text.length;
  }
}
