// Log lines written while the terminal view owns the screen would scribble over it: they are held here
// (the newest MAX_HELD_LOG_LINES, the rest counted) and printed once the view closes. Text in, lines out.

export const MAX_HELD_LOG_LINES = 200;

export class LogHold {
  private readonly held: string[] = [];
  private dropped = 0;

  constructor(private readonly max = MAX_HELD_LOG_LINES) {}

  /** One stderr write: its non-empty lines, in order (the last is the newest to show). */
  push(text: string): string[] {
    const lines = text.split("\n").filter((l) => l !== "");
    for (const line of lines) {
      this.held.push(line);
      if (this.held.length > this.max) {
        this.held.shift();
        this.dropped++;
      }
    }
    return lines;
  }

  /** What to print after the view closes: a note of the lines not kept, then the kept ones, each with its newline. */
  replay(): string[] {
    const out = this.dropped ? [`(${this.dropped} earlier log lines not kept)\n`] : [];
    return out.concat(this.held.map((l) => `${l}\n`));
  }
}
