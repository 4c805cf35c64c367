// `oisp watch` in a real terminal: tmux runs it at 80x24 and at 160x48 over a real store; keys go in with
// send-keys and the screen comes back with capture-pane. The main screen's pane figures are computed here
// from the seeded events, independently of the store's queries. Needs tmux (Debian package `tmux`):
// missing tmux fails loudly.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { openStore } from "../../src/store/index.ts";
import { aiExchange, newestFirst, PROCESSES, systemEvent, type FixtureEvent } from "../support/event-fixtures.ts";

setDefaultTimeout(20_000);

const ROOT = path.resolve(import.meta.dir, "../..");
const MIN = 60_000;
const HOUR = 60 * MIN;
const DISPLAY: Record<string, string> = { openai: "OpenAI", anthropic: "Anthropic", xai: "xAI" };

/** The seeded store: calls in the last 5 minutes, the last hour, the last day and before, plus tool, network, exec and file events. */
function seed(now: number): { events: FixtureEvent[]; toolCallId: string } {
  const xaiCall = aiExchange({ tsMs: now - 150_000, model: "grok-3", process: PROCESSES.node, mode: "metadata_only" });
  for (const e of xaiCall.slice(0, 2)) {
    // OISP has no "xai" provider: the sensor writes "other" and the bundle id beside it.
    (e.data as { provider: { name: string } }).provider.name = "other";
    e.attrs = { ...(e.attrs as object), provider_id: "xai" };
  }
  const agentCall = aiExchange({
    tsMs: now - 60_000,
    model: "gpt-4o-mini",
    process: PROCESSES.cursor,
    prompt: "zebra-42: refactor main.rs",
    answer: "Done, main.rs rewritten.",
    toolCalls: [{ name: "write_file", arguments: '{"path":"/src/main.rs"}' }],
  });
  const events = [
    ...agentCall,
    ...aiExchange({ tsMs: now - 120_000, provider: "anthropic", model: "claude-sonnet-4-5", process: PROCESSES.python, mode: "redacted" }),
    ...xaiCall,
    ...aiExchange({ tsMs: now - 180_000, model: "gpt-x", responseModel: "gpt-x-0718", process: PROCESSES.cursor, inputTokens: 1000, outputTokens: 10 }),
    systemEvent("network.connect", now - 30_000, PROCESSES.cursor, { dest: { ip: "104.18.7.192", port: 443, domain: "api.openai.com" }, protocol: "tcp", success: true }),
    systemEvent("process.exec", now - 25_000, { pid: 9001, ppid: PROCESSES.cursor.pid, name: "sh", exe: "/bin/sh", parentName: "cursor" }, {
      exe: "/usr/bin/cargo",
      args: ["cargo", "build", "--release"],
      cwd: "/src",
    }, "full"),
    systemEvent("file.write", now - 20_000, PROCESSES.cursor, { path: "/src/main.rs", bytes_written: 4523 }, "full"),
    // The last hour, the last day, and long ago.
    ...aiExchange({ tsMs: now - 30 * MIN, process: PROCESSES.python }),
    ...aiExchange({ tsMs: now - 31 * MIN, process: PROCESSES.python, mode: "redacted" }),
    ...aiExchange({ tsMs: now - 5 * HOUR, provider: "anthropic", process: PROCESSES.node }),
    ...aiExchange({ tsMs: now - 6 * HOUR, provider: "anthropic", process: PROCESSES.node }),
    ...aiExchange({ tsMs: now - 7 * HOUR, provider: "anthropic", process: PROCESSES.node, mode: "metadata_only" }),
    ...aiExchange({ tsMs: now - 48 * HOUR, process: { pid: 31337, ppid: PROCESSES.bash.pid, name: "agent-zeta" } }),
  ];
  return { events, toolCallId: agentCall[2]!.event_id };
}

type Pair = [string, number];

/** What the panes must say for events since `since`: requests per provider and per app, completeness shares. */
function expectedPanes(events: FixtureEvent[], since: number): { providers: Pair[]; apps: Pair[]; full: number; metadata: number; redacted: number } {
  const inWindow = events.filter((e) => Date.parse(e.ts) >= since);
  const tally = (key: (e: FixtureEvent) => string): Pair[] => {
    const m = new Map<string, number>();
    for (const e of inWindow.filter((x) => x.event_type === "ai.request")) m.set(key(e), (m.get(key(e)) ?? 0) + 1);
    return [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  };
  const providers = tally((e) => {
    const name = (e.data as { provider: { name: string } }).provider.name;
    return DISPLAY[name === "other" ? String((e.attrs as { provider_id: string }).provider_id) : name]!;
  });
  const apps = tally((e) => (e.process as { name: string }).name);
  const ai = inWindow.filter((e) => e.event_type === "ai.request" || e.event_type === "ai.response");
  const share = (c: string) => Math.round((ai.filter((e) => (e.confidence as { completeness: string }).completeness === c).length / ai.length) * 100);
  return { providers, apps, full: share("full"), metadata: share("metadata_only"), redacted: share("redacted") };
}

function startTmux(session: string, cols: number, rows: number, dbPath: string, dir: string) {
  const tmux = (...args: string[]): string => {
    const r = spawnSync("tmux", ["-L", session, ...args], { encoding: "utf8", timeout: 10_000 });
    if (r.error) throw new Error(`tmux ${args[0]}: ${r.error.message} (install the Debian package tmux)`);
    if (r.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const screen = () => tmux("capture-pane", "-p", "-t", session);
  /**
   * Polls the pane until `predicate` holds (the view redraws asynchronously), or fails with the last screen.
   * A large frame reaches tmux in several reads, so a capture can show half of one frame and half of the
   * previous: a screen counts once two captures in a row agree.
   */
  const waitFor = async (predicate: (s: string) => boolean, what: string, timeoutMs = 8000): Promise<string> => {
    const until = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < until) {
      last = screen();
      if (predicate(last)) {
        await Bun.sleep(20);
        if (screen() === last) return last;
      }
      await Bun.sleep(50);
    }
    throw new Error(`timed out waiting for ${what}; screen was:\n${last}`);
  };
  const keys = (...k: string[]) => tmux("send-keys", "-t", session, ...k);
  // The command module itself (src/cli.ts also loads every other command).
  const runner = path.join(dir, "run-watch.ts");
  fs.writeFileSync(runner, `import { watchCommand } from ${JSON.stringify(path.join(ROOT, "src/commands/watch.ts"))};\nprocess.exit(await watchCommand(process.argv.slice(2)));\n`);
  const cmd = `cd ${JSON.stringify(ROOT)} && OISP_HOME=${JSON.stringify(dir)} TERM=xterm-256color ${JSON.stringify(process.execPath)} ${JSON.stringify(runner)} --db ${JSON.stringify(dbPath)}; echo EXITED $?; sleep 30`;
  tmux("new-session", "-d", "-s", session, "-x", String(cols), "-y", String(rows), cmd);
  // Esc must reach the program at once, not wait for tmux's escape-time.
  tmux("set-option", "-s", "escape-time", "0");
  return { tmux, screen, waitFor, keys };
}

/** The pane block: the line starting PROVIDERS and the lines under it, up to the detail line. */
function paneBlock(s: string): string[] {
  const lines = s.split("\n");
  const at = lines.findIndex((l) => l.startsWith("PROVIDERS"));
  if (at < 0) throw new Error(`no panes on screen:\n${s}`);
  return lines.slice(at, lines.length - 3);
}

function expectPanes(s: string, e: ReturnType<typeof expectedPanes>, cols: number): void {
  const block = paneBlock(s);
  const third = Math.floor((cols - 2) / 3) + 1;
  const column = (i: number) => block.slice(1).map((l) => l.slice(i * third, (i + 1) * third).trim()).filter(Boolean);
  expect(block[0]).toMatch(/^PROVIDERS\s+APPS USING AI\s+CONFIDENCE/);
  const rows = block.length - 1;
  const fits = (list: Pair[]) => (list.length > rows ? list.slice(0, rows - 1) : list);
  expect(column(0).slice(0, fits(e.providers).length).map((c) => c.split(/\s{2,}|\s(?=\d+$)/))).toEqual(fits(e.providers).map(([n, c]) => [n, String(c)]));
  expect(column(1).slice(0, fits(e.apps).length).map((c) => c.split(/\s{2,}|\s(?=\d+$)/))).toEqual(fits(e.apps).map(([n, c]) => [n, String(c)]));
  expect(column(2)).toEqual([`Full ${e.full}%`, `Metadata ${e.metadata}%`, `Redacted ${e.redacted}%`].map((x) => expect.stringMatching(new RegExp(`^${x.replace(" ", "\\s+")}$`))));
}

/** True once the panes show `e` (a frame may still be arriving: see waitFor). */
function panesShow(s: string, e: ReturnType<typeof expectedPanes>, cols: number): boolean {
  try {
    expectPanes(s, e, cols);
    return true;
  } catch {
    return false;
  }
}

for (const [cols, rows] of [
  [80, 24],
  [160, 48],
] as const) {
  describe(`oisp watch under tmux (${cols}x${rows})`, () => {
    const session = `oisp-tui-${process.pid}-${cols}`;
    let dir: string;
    let store: ReturnType<typeof openStore>;
    let t: ReturnType<typeof startTmux>;
    const NOW = Date.now();
    const { events, toolCallId } = seed(NOW);

    beforeAll(async () => {
      const probe = spawnSync("tmux", ["-V"], { encoding: "utf8" });
      if (probe.error || probe.status !== 0) throw new Error("tmux is not installed: apt-get install -y tmux (the TUI test drives a real terminal)");
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-tui-"));
      const dbPath = path.join(dir, "oisp.db");
      store = openStore(dbPath);
      store.insertEvents(events);
      t = startTmux(session, cols, rows, dbPath, dir);
      await t.waitFor((s) => s.includes("AI ACTIVITY"), "the main screen to draw", 15_000);
    });

    afterAll(() => {
      try {
        t?.tmux("kill-server");
      } catch {
        // already gone
      }
      store?.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    test("main screen: version in the title, the last 5 minutes' activity, panes with the window's figures", async () => {
      const expected = expectedPanes(events, NOW - 5 * MIN);
      const s = await t.waitFor((x) => x.includes("file.write") && panesShow(x, expected, cols), "activity and the panes' figures");
      const lines = s.split("\n");
      expect(lines[0]).toContain(`OISP Sensor v${pkg.version}`);
      expect(lines[0]).toContain("AI ACTIVITY (last 5 min)");
      for (const l of lines) expect(Bun.stringWidth(l)).toBeLessThanOrEqual(cols);
      expect(lines[rows - 1]).toMatch(/\[T\]imeline \[i\]nventory \[p\]rocess tree \[\/\]filter \[w\]indow \[q\]uit/);
      expectPanes(s, expected, cols);
      // Only the window's events are listed: nothing from half an hour ago.
      const inWindow = events.filter((e) => Date.parse(e.ts) >= NOW - 5 * MIN).length;
      expect(lines[rows - 1]).toMatch(new RegExp(`\\s1/${inWindow}\\s*$`));
    });

    test("rows say what happened: tool name, host, command line with parent→child, path, display names, capture marks", async () => {
      const s = t.screen();
      const type = (full: string, narrow: string) => (cols >= 120 ? full : narrow);
      expect(s).toMatch(/file\.write\s+\/src\/main\.rs \(4523 B\)\s+cursor\s.*\[FULL\]/);
      expect(s).toMatch(/process\.exec\s+cargo build --release\s+cursor→sh\s/);
      expect(s).toMatch(new RegExp(`${type("network\\.connect", "net\\.connect")}\\s+api\\.openai\\.com\\s+cursor\\s.*\\[META\\]`));
      expect(s).toMatch(/tool_call\s+write_file\s+cursor/);
      expect(s).toMatch(/ai\.response\s+OpenAI gpt-4o-mini → 1 tool call\s+cursor/);
      expect(s).toMatch(/ai\.request\s+Anthropic claude-sonnet-4-5\s+python3\s.*\[RED\]/);
      expect(s).toMatch(/ai\.request\s+xAI grok-3\s+node\s.*\[META\]/);
      if (cols >= 120) expect(s).toMatch(/ai\.response\s+OpenAI gpt-4o-mini → 1 tool call\s+cursor\s+1,200\/180\s+\$0\.00029\s+840 ms\s+200\s+\[FULL\]/);
    });

    test("Enter opens the selected event: request and response side by side, tool calls, usage, cost; Esc returns", async () => {
      const order = newestFirst(events.filter((e) => Date.parse(e.ts) >= NOW - 5 * MIN));
      const index = order.indexOf(toolCallId);
      expect(index).toBeGreaterThan(0);
      for (let i = 0; i < index; i++) t.keys("j");
      await t.waitFor((x) => new RegExp(`\\s${index + 1}/\\d+\\s*$`).test(x.split("\n")[rows - 1] ?? ""), `selection on row ${index + 1}`);
      t.keys("Enter");
      const s = await t.waitFor((x) => x.includes("REQUEST") && x.includes("RESPONSE"), "the event view");
      const lines = s.split("\n");
      expect(lines[1]).toMatch(/^tool_call\s+write_file\s+cursor \(pid 777\)/);
      // Side by side: the request's messages on the left, the answer on the right.
      expect(s).toMatch(/^system: You are a careful.*│ assistant: Done, main\.rs rewritten\./m);
      expect(s).toMatch(/^user: zebra-42: refactor main\.rs\s+│/m);
      expect(s).toMatch(/│ → write_file/);
      expect(s).toContain("TOOL CALLS");
      expect(s).toMatch(/tool_call write_file \{"path":"\/src\/main\.rs"\}/);
      expect(s).toContain("USAGE  in 1,200  out 180");
      expect(s).toContain("COST   $0.000288");
      expect(s).not.toContain("AI ACTIVITY (last");
      t.keys("Escape");
      const back = await t.waitFor((x) => x.includes("AI ACTIVITY (last 5 min)"), "the main screen again");
      expect(back).toContain("PROVIDERS");
    });

    test("/ filters by provider, by process and by text; Esc clears the filter", async () => {
      t.keys("/");
      await t.waitFor((x) => x.includes("Enter apply"), "the filter prompt");
      t.keys("-l", "anthropic");
      t.keys("Enter");
      let s = await t.waitFor((x) => x.includes("filter: anthropic"), "the provider filter");
      let list = s.split("\n").slice(2, s.split("\n").findIndex((l) => l.startsWith("PROVIDERS")));
      expect(list.filter((l) => l.trim()).length).toBe(2); // the Anthropic call's request and response
      for (const l of list.filter((x) => x.trim())) expect(l).toContain("Anthropic");

      t.keys("/");
      await t.waitFor((x) => x.includes("Enter apply"), "the filter prompt");
      for (let i = 0; i < "anthropic".length; i++) t.keys("BSpace");
      t.keys("-l", "cursor");
      t.keys("Enter");
      s = await t.waitFor((x) => x.includes("filter: cursor"), "the process filter");
      list = s.split("\n").slice(2, s.split("\n").findIndex((l) => l.startsWith("PROVIDERS"))).filter((l) => l.trim());
      const cursorEvents = events.filter((e) => Date.parse(e.ts) >= NOW - 5 * MIN && (e.process as { name: string }).name === "cursor");
      expect(list.length).toBe(cursorEvents.length);

      t.keys("/");
      await t.waitFor((x) => x.includes("Enter apply"), "the filter prompt");
      for (let i = 0; i < "cursor".length; i++) t.keys("BSpace");
      t.keys("-l", "zebra-42");
      t.keys("Enter");
      s = await t.waitFor((x) => x.includes("filter: zebra-42"), "the text filter");
      list = s.split("\n").slice(2, s.split("\n").findIndex((l) => l.startsWith("PROVIDERS"))).filter((l) => l.trim());
      expect(list.length).toBe(1); // the one full-capture request whose prompt says it
      expect(list[0]).toMatch(/ai\.request\s+OpenAI gpt-4o-mini\s+cursor/);

      t.keys("Escape");
      s = await t.waitFor((x) => !x.includes("filter:") && x.includes("file.write"), "the filter cleared");
      expect(s.split("\n")[0]).toContain("AI ACTIVITY (last 5 min)");
    });

    test("w widens the window: last hour, last 24 h, all time, each with its own figures", async () => {
      for (const [label, since] of [
        ["last hour", NOW - HOUR],
        ["last 24 h", NOW - 24 * HOUR],
        ["all time", 0],
      ] as const) {
        t.keys("w");
        const expected = expectedPanes(events, since);
        const s = await t.waitFor((x) => x.includes(`AI ACTIVITY (${label})`) && panesShow(x, expected, cols), `${label} and its figures`);
        expectPanes(s, expected, cols);
      }
      t.keys("w");
      await t.waitFor((x) => x.includes("AI ACTIVITY (last 5 min)"), "back to 5 min");
    });

    if (cols === 80) {
      test("i shows the inventory: one row for an alias answered by a snapshot", async () => {
        t.keys("i");
        const s = await t.waitFor((x) => x.includes("Apps using AI"), "the inventory");
        expect(s).toContain("[I]nventory");
        expect(s).toMatch(/agent-zeta\s+1\s+0/);
        expect(s).toMatch(/ {2}gpt-x \(gpt-x-0718\)\s+1\s+0\s+1,000\s+10\s/);
        expect(s).not.toMatch(/^ {2}gpt-x-0718/m);
      });

      test("p shows the process tree, with commands run and files written under their process", async () => {
        t.keys("p");
        const s = await t.waitFor((x) => x.includes("[P]rocess tree"), "the process view");
        const lines = s.split("\n");
        const cursor = lines.findIndex((l) => /^cursor\s+777\s+\d+/.test(l));
        expect(cursor).toBeGreaterThan(1);
        const under = lines.slice(cursor + 1, cursor + 6).join("\n");
        expect(under).toMatch(/↳ file\.write \/src\/main\.rs/);
        expect(under).toMatch(/└ sh\s+9001/);
        expect(under).toMatch(/↳ process\.exec cargo build --release/);
        const shell = lines.findIndex((l) => /^\(parent, not seen\)\s+4200/.test(l));
        expect(lines.slice(shell + 1, shell + 5).map((l) => /^[├└] (\S+)\s+(\d+)/.exec(l)?.[1]).filter(Boolean)).toEqual(["python3", "node", "agent-zeta"]);
      });

      test("new events appear while it runs (written by another connection)", async () => {
        t.keys("t");
        await t.waitFor((x) => x.includes("AI ACTIVITY"), "the main screen");
        store.insertEvents(aiExchange({ tsMs: Date.now(), provider: "openai", model: "gpt-5-live", process: { pid: 4444, name: "late-arrival" } }));
        const s = await t.waitFor((x) => x.includes("late-arrival"), "the new event", 5000);
        expect(s.split("\n")[2]).toContain("gpt-5-live");
        // The panes catch up too (they are recounted at most once a second while events flow).
        const after = await t.waitFor((x) => paneBlock(x).some((l) => /late-arrival\s+1\b/.test(l)), "the apps pane to count it", 5000);
        expect(paneBlock(after)[1]).toMatch(/^OpenAI\s+3\s+cursor\s+2\s/);
      });
    }

    test("q quits and restores the terminal", async () => {
      t.keys("q");
      const s = await t.waitFor((x) => x.includes("EXITED 0"), "the command to exit");
      expect(s).not.toContain("AI ACTIVITY");
    });
  });
}
