// `oisp sensor --tui` and `oisp watch`: the terminal view over the event store, in plain ANSI/VT
// sequences (which Windows Terminal and every Unix terminal speak). Reads through its own read-only
// connection; redraws when the sensor reports new events (LiveOutput) or, from another process, when
// the database changes (PRAGMA data_version, polled).
import { openWebQueries } from "../store/queries.ts";
import type { LiveSource } from "../view/live.ts";
import { LogHold } from "./log-hold.ts";
import type { Key } from "./screen.ts";
import { TuiSession, type TuiAction } from "./session.ts";

export { filterFor } from "./session.ts";

export interface TuiOptions {
  dbPath: string;
  live?: LiveSource;
  input?: NodeJS.ReadStream;
  output?: NodeJS.WriteStream;
  /** Called once when the user quits (q / Ctrl+C). */
  onQuit?: () => void;
  /** How often to look for changes when there is no live feed (default 1000 ms). */
  pollMs?: number;
  /**
   * Hold what the process writes to stderr (the sensor's log) while the view owns the terminal, show the
   * newest line in the header, and print it all after the view closes. Default: when stderr is a terminal.
   */
  captureStderr?: boolean;
}

export interface RunningTui {
  /** Resolves when the user quits or close() is called. */
  done: Promise<void>;
  close(): void;
}

const MIN_REDRAW_MS = 250;

/**
 * Terminal input → keys. One read can hold several keys (pasted text, key repeat). Sequences and control
 * keys get names; any other character comes through as itself (a command, or text while typing a filter).
 */
export function decodeKeys(data: string): Key[] {
  const keys: Key[] = [];
  const seqs: Array<[string, Key]> = [
    ["\x1b[A", "up"], ["\x1bOA", "up"], ["\x1b[B", "down"], ["\x1bOB", "down"],
    ["\x1b[5~", "pageup"], ["\x1b[6~", "pagedown"],
    ["\x1b[H", "home"], ["\x1bOH", "home"], ["\x1b[1~", "home"], ["\x1b[F", "end"], ["\x1bOF", "end"], ["\x1b[4~", "end"],
    ["\r\n", "enter"], ["\r", "enter"], ["\n", "enter"], ["\x7f", "backspace"], ["\b", "backspace"], ["\x03", "ctrl-c"],
  ];
  let i = 0;
  outer: while (i < data.length) {
    for (const [seq, key] of seqs) {
      if (data.startsWith(seq, i)) {
        keys.push(key);
        i += seq.length;
        continue outer;
      }
    }
    const ch = String.fromCodePoint(data.codePointAt(i)!);
    i += ch.length;
    if (ch === "\x1b") {
      // Esc alone (or before a plain character); else an unknown escape sequence: skip its parameter and final bytes.
      const m = /^[[O][0-9;]*[A-Za-z~]?/.exec(data.slice(i));
      if (m) {
        i += m[0].length;
        keys.push("other");
      } else keys.push("esc");
      continue;
    }
    keys.push(ch < " " ? "other" : ch);
  }
  return keys;
}

export function startTui(o: TuiOptions): RunningTui {
  const input = o.input ?? process.stdin;
  const output = o.output ?? process.stdout;
  const queries = openWebQueries(o.dbPath);
  const session = new TuiSession(queries, o.live ? "live" : "watching db");
  let dirty = true;
  let closed = false;
  let lastDraw = 0;
  let drawTimer: ReturnType<typeof setTimeout> | undefined;
  let summaryTimer: ReturnType<typeof setTimeout> | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  const size = () => ({ cols: Math.max(20, output.columns || 80), rows: Math.max(6, output.rows || 24) });

  const act = (actions: TuiAction[]) => {
    for (const a of actions) {
      if (a.kind === "quit") {
        finish();
        o.onQuit?.();
      } else if (!summaryTimer) {
        // The panes skipped a recount: recount when the interval is up, so they catch up with the list.
        summaryTimer = setTimeout(() => {
          summaryTimer = undefined;
          changed();
        }, a.ms);
      }
    }
  };

  const draw = () => {
    drawTimer = undefined;
    if (closed) return;
    if (dirty) act(session.refresh(false));
    dirty = false;
    lastDraw = Date.now();
    const { cols, rows } = size();
    // Home, each line then clear-to-end-of-line, clear below: no flicker, no leftovers after a resize.
    output.write(`\x1b[H${session.frame(cols, rows).join("\x1b[K\r\n")}\x1b[K\x1b[J`);
  };

  const schedule = () => {
    if (closed || drawTimer) return;
    drawTimer = setTimeout(draw, Math.max(0, MIN_REDRAW_MS - (Date.now() - lastDraw)));
  };

  const changed = () => {
    dirty = true;
    schedule();
  };

  const onKeys = (chunk: Buffer | string) => {
    const { cols, rows } = size();
    act(session.keys(decodeKeys(chunk.toString()), cols, rows));
    if (!closed) draw();
  };

  const onResize = () => draw();

  let unsubscribe: (() => void) | undefined;
  let poller: ReturnType<typeof setInterval> | undefined;
  if (o.live) unsubscribe = o.live.subscribe(changed);
  else {
    let version = queries.dataVersion();
    poller = setInterval(() => {
      try {
        const v = queries.dataVersion();
        if (v !== version) {
          version = v;
          changed();
        }
      } catch {
        // the file went away or is locked for a moment: try again next tick
      }
    }, o.pollMs ?? 1000);
  }
  // The clock in "3m ago" columns moves even without traffic.
  const tick = setInterval(changed, 30_000);

  function finish() {
    if (closed) return;
    closed = true;
    unsubscribe?.();
    if (poller) clearInterval(poller);
    clearInterval(tick);
    if (drawTimer) clearTimeout(drawTimer);
    if (summaryTimer) clearTimeout(summaryTimer);
    input.off("data", onKeys);
    output.off("resize", onResize);
    if (input.isTTY) input.setRawMode(false);
    input.pause();
    output.write("\x1b[?25h\x1b[?1049l");
    if (captureStderr) {
      process.stderr.write = originalStderrWrite;
      for (const line of held.replay()) process.stderr.write(line);
    }
    queries.close();
    resolveDone();
  }

  // Log lines would scribble over the screen: hold them (bounded) and show the newest in the header.
  const held = new LogHold();
  const originalStderrWrite = process.stderr.write;
  const captureStderr = o.captureStderr ?? (process.stderr.isTTY === true && output.isTTY === true);
  if (captureStderr) {
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
      for (const line of held.push(text)) session.log(line);
      changed();
      const done = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      done?.();
      return true;
    }) as typeof process.stderr.write;
  }

  output.write("\x1b[?1049h\x1b[?25l");
  if (input.isTTY) input.setRawMode(true);
  input.setEncoding("utf8");
  input.on("data", onKeys);
  input.resume();
  output.on("resize", onResize);
  act(session.refresh(true));
  dirty = false;
  draw();

  return { done, close: finish };
}
