// The terminal view's core without a terminal: keys in, store reads and actions out, over a real store.
// startTui (tui-stderr, tui-tmux) only adds the terminal, the timers and the stderr hold around this.
import { afterEach, beforeEach, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore, type Store } from "../../src/store/index.ts";
import { openWebQueries, type WebQueries } from "../../src/store/queries.ts";
import { TIMELINE_PAGE, TuiSession } from "../../src/tui/session.ts";
import { aiExchange, PROCESSES } from "../support/event-fixtures.ts";
import { decodeKeys } from "../../src/tui/index.ts";

let dir: string;
let store: Store;
let queries: WebQueries;
let clock: number;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-tui-session-"));
  store = openStore(path.join(dir, "oisp.db"));
  queries = openWebQueries(path.join(dir, "oisp.db"));
  clock = Date.now();
});
afterEach(() => {
  queries.close();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const session = () => new TuiSession(queries, "watching db", () => clock);
const type = (s: TuiSession, text: string) => s.keys(decodeKeys(text), 100, 30);

test("the first refresh loads the window's events and panes; a filter narrows by process", () => {
  store.insertEvents(aiExchange({ tsMs: clock - 10_000, process: PROCESSES.python }));
  store.insertEvents(aiExchange({ tsMs: clock - 5_000, process: PROCESSES.node }));
  store.insertEvents(aiExchange({ tsMs: clock - 3_600_000, process: PROCESSES.node })); // outside 5 min
  const s = session();
  expect(s.refresh(true)).toEqual([]);
  expect(s.data.timeline.map((r) => r.process_name).sort()).toEqual(["node", "node", "python3", "python3"]);
  expect(s.data.summary).toBeDefined();
  expect(s.data.source).toBe("watching db");

  expect(type(s, "/node\r")).toEqual([]);
  expect(s.state.filter).toBe("node");
  expect(s.data.timeline.map((r) => r.process_name)).toEqual(["node", "node"]);
  type(s, "\x1b"); // Esc drops the filter
  expect(s.data.timeline).toHaveLength(4);
});

test("Enter opens the selected event with its call; Esc closes it", () => {
  store.insertEvents(aiExchange({ tsMs: clock - 1000 }));
  const s = session();
  s.refresh(true);
  const selected = s.data.timeline[0]!.event_id;
  type(s, "\r");
  expect(s.state.open?.eventId).toBe(selected);
  expect(s.data.detail?.row.event_id).toBe(selected);
  expect(s.data.detail?.related).toHaveLength(1); // the other half of the request/response pair
  type(s, "\x1b");
  expect(s.state.open).toBeNull();
  expect(s.data.detail).toBeUndefined();
});

test("other views load their aggregates; q quits and stops reading keys", () => {
  store.insertEvents(aiExchange({ tsMs: clock - 1000, provider: "anthropic" }));
  const s = session();
  s.refresh(true);
  type(s, "i");
  expect(s.data.providers.map((p) => p.provider)).toEqual(["anthropic"]);
  type(s, "p");
  expect(s.data.processes.map((p) => p.node.name)).toContain("python3");
  expect(type(s, "qt")).toEqual([{ kind: "quit" }]);
  expect(s.state.view).toBe("processes"); // the "t" after q was not read
});

test("the summary panes recount at most once a second; a skipped recount asks to be called back", () => {
  store.insertEvents(aiExchange({ tsMs: clock - 1000 }));
  const s = session();
  s.refresh(true);
  const before = s.data.summary;
  store.insertEvents(aiExchange({ tsMs: clock - 500 }));
  clock += 300;
  expect(s.refresh(false)).toEqual([{ kind: "recount-in", ms: 700 }]);
  expect(s.data.summary).toBe(before); // panes kept, list already shows the new call
  expect(s.data.timeline).toHaveLength(4);
  clock += 700;
  expect(s.refresh(false)).toEqual([]);
  expect(s.data.summary).not.toBe(before);
});

test("moving past the last loaded row loads the next page", () => {
  for (let i = 0; i < 120; i++) store.insertEvents(aiExchange({ tsMs: clock - 100_000 + i * 100 }));
  const s = session();
  s.refresh(true);
  expect(s.data.timeline).toHaveLength(TIMELINE_PAGE);
  expect(s.data.timelineMore).toBe(true);
  type(s, "G");
  expect(s.data.timeline).toHaveLength(240);
  expect(s.data.timelineMore).toBe(false);
});

test("a log line shows in the footer until a read fails; the error until a read succeeds", () => {
  const s = session();
  s.log("warn: spool is 80% full");
  s.refresh(true);
  expect(s.data.source).toBe("log: warn: spool is 80% full");
  queries.close();
  s.refresh(true);
  expect(s.data.source).toStartWith("error: ");
  queries = openWebQueries(path.join(dir, "oisp.db")); // afterEach closes this one
  expect(s.frame(80, 24).join("\n")).toContain("error: ");
});
