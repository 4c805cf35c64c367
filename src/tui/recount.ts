// When the terminal view recounts what a pane shows (inventory, processes, the summary panes): not on every
// event while traffic flows, but when asked (a key), when the pane shows something else (another view or
// window), or once its interval is up. Plain state, no timers: startTui schedules, this decides.

export class RecountClock {
  private at = 0;
  private key: string | undefined;

  /** Due when forced, for another key (view or window), or once everyMs have passed since the last count. */
  due(key: string, nowMs: number, everyMs: number, force = false): boolean {
    return force || key !== this.key || nowMs - this.at >= everyMs;
  }

  counted(key: string, nowMs: number): void {
    this.at = nowMs;
    this.key = key;
  }

  /** How long until the same key is due again. */
  waitMs(nowMs: number, everyMs: number): number {
    return everyMs - (nowMs - this.at);
  }
}
