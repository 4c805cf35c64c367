// The terminal view owns the screen: log lines written to stderr meanwhile are held, the newest shown in
// the header, and all printed once the view closes. Streams stand in for the terminal here; the real
// terminal is covered by tui-tmux.test.ts.
import { expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { openStore } from "../../src/store/index.ts";
import { startTui } from "../../src/tui/index.ts";
import { LogHold, MAX_HELD_LOG_LINES } from "../../src/tui/log-hold.ts";
import { aiExchange } from "../support/event-fixtures.ts";

test("stderr is held while the view runs and replayed after it closes", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-tui-log-"));
  const dbPath = path.join(dir, "oisp.db");
  const store = openStore(dbPath);
  store.insertEvents(aiExchange({ tsMs: Date.now() }));
  const input = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.ReadStream;
  let screen = "";
  const output = Object.assign(new PassThrough(), { columns: 80, rows: 24, isTTY: true }) as unknown as NodeJS.WriteStream;
  output.on("data", (b: Buffer) => (screen += b.toString()));
  const originalWrite = process.stderr.write;
  const replayed: string[] = [];
  // Where the held lines end up after close: record them instead of printing.
  process.stderr.write = ((chunk: string) => (replayed.push(String(chunk)), true)) as typeof process.stderr.write;
  const recorder = process.stderr.write;
  try {
    const tui = startTui({ dbPath, input, output, captureStderr: true });
    process.stderr.write("sensor: connection from python3\n");
    process.stderr.write("warn: spool is 80% full\n");
    expect(replayed).toEqual([]); // held, not printed over the screen
    await Bun.sleep(400);
    expect(screen).toContain("log: warn: spool is 80% full");
    input.write("q");
    await tui.done;
    expect(process.stderr.write).toBe(recorder); // restored
    expect(replayed.join("")).toBe("sensor: connection from python3\nwarn: spool is 80% full\n");
    expect(screen.endsWith("\x1b[?25h\x1b[?1049l")).toBe(true); // cursor back, main screen back
  } finally {
    process.stderr.write = originalWrite;
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the hold keeps the newest lines, counts the rest, and replays them in order", () => {
  const hold = new LogHold(3);
  expect(hold.push("a\n\nb\n")).toEqual(["a", "b"]); // empty lines are not log lines
  expect(hold.replay()).toEqual(["a\n", "b\n"]);
  expect(hold.push("c\nd\ne")).toEqual(["c", "d", "e"]);
  expect(hold.replay()).toEqual(["(2 earlier log lines not kept)\n", "c\n", "d\n", "e\n"]);
  const big = new LogHold();
  big.push(Array.from({ length: MAX_HELD_LOG_LINES + 5 }, (_, i) => `line ${i}`).join("\n"));
  const replay = big.replay();
  expect(replay).toHaveLength(MAX_HELD_LOG_LINES + 1);
  expect(replay[0]).toBe("(5 earlier log lines not kept)\n");
  expect(replay[1]).toBe("line 5\n");
});
