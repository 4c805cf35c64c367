// `oisp watch` in a real terminal: tmux runs it at 80x24 over a real store; keys go in with send-keys and
// the screen comes back with capture-pane. Needs tmux (Debian package `tmux`): missing tmux fails loudly.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore } from "../../src/store/index.ts";
import { aiExchange, PROCESSES, sampleTraffic } from "../support/event-fixtures.ts";

setDefaultTimeout(15_000);

const ROOT = path.resolve(import.meta.dir, "../..");
const SESSION = `oisp-tui-${process.pid}`;

function tmux(...args: string[]): string {
  const r = spawnSync("tmux", ["-L", SESSION, ...args], { encoding: "utf8", timeout: 10_000 });
  if (r.error) throw new Error(`tmux ${args[0]}: ${r.error.message} (install the Debian package tmux)`);
  if (r.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

const screen = () => tmux("capture-pane", "-p", "-t", SESSION);

/** Polls the pane until `predicate` holds (the view redraws asynchronously), or fails with the last screen. */
async function waitFor(predicate: (s: string) => boolean, what: string, timeoutMs = 5000): Promise<string> {
  const until = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < until) {
    last = screen();
    if (predicate(last)) return last;
    await Bun.sleep(50);
  }
  throw new Error(`timed out waiting for ${what}; screen was:\n${last}`);
}

const keys = (...k: string[]) => tmux("send-keys", "-t", SESSION, ...k);

describe("oisp watch under tmux (80x24)", () => {
  let dir: string;
  let dbPath: string;
  let store: ReturnType<typeof openStore>;
  const NOW = Date.now();

  beforeAll(async () => {
    const probe = spawnSync("tmux", ["-V"], { encoding: "utf8" });
    if (probe.error || probe.status !== 0) throw new Error("tmux is not installed: apt-get install -y tmux (the TUI test drives a real terminal)");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-tui-"));
    dbPath = path.join(dir, "oisp.db");
    store = openStore(dbPath);
    store.insertEvents(sampleTraffic(NOW - 60_000, 40, 24));
    // Two calls to an alias answered by a dated snapshot: one inventory row.
    for (const t of [NOW - 50_000, NOW - 45_000]) store.insertEvents(aiExchange({ tsMs: t, model: "gpt-x", responseModel: "gpt-x-0718", inputTokens: 1000, outputTokens: 10 }));
    // The newest event: a call from a process with a distinctive name.
    store.insertEvents(aiExchange({ tsMs: NOW - 30_000, provider: "anthropic", model: "claude-opus-4", process: { pid: 31337, ppid: PROCESSES.bash.pid, name: "agent-zeta" } }));
    // The command module itself (src/cli.ts also loads every other command).
    const runner = path.join(dir, "run-watch.ts");
    fs.writeFileSync(runner, `import { watchCommand } from ${JSON.stringify(path.join(ROOT, "src/commands/watch.ts"))};\nprocess.exit(await watchCommand(process.argv.slice(2)));\n`);
    const cmd = `cd ${JSON.stringify(ROOT)} && OISP_HOME=${JSON.stringify(dir)} TERM=xterm-256color ${JSON.stringify(process.execPath)} ${JSON.stringify(runner)} --db ${JSON.stringify(dbPath)}; echo EXITED $?; sleep 30`;
    tmux("new-session", "-d", "-s", SESSION, "-x", "80", "-y", "24", cmd);
    await waitFor((s) => s.includes("[t]imeline"), "the timeline to draw", 15_000);
  });

  afterAll(() => {
    try {
      tmux("kill-server");
    } catch {
      // already gone
    }
    store?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("timeline: newest first, columns fit 80 columns, footer shows the position", async () => {
    const s = await waitFor((x) => x.includes("agent-zeta"), "the newest event");
    const lines = s.split("\n");
    expect(lines[0]).toContain("OISP Sensor");
    expect(lines[1]).toMatch(/^Time\s+Type\s+Provider\s+Model\s+Process\s+In\/Out\s+Cost/);
    // The newest event is the response, then its request.
    expect(lines[2]).toMatch(/response\s+anthropic\s+claude-opus-4\s+agent-zeta/);
    expect(lines[3]).toMatch(/request\s+anthropic/);
    for (const l of lines) expect(Bun.stringWidth(l)).toBeLessThanOrEqual(80);
    expect(lines[23]).toMatch(new RegExp(`\\s1/${store.count()}\\s*$`));
  });

  test("j/k move the selection; the detail line follows it", async () => {
    const footerAt = (n: number) => (x: string) => new RegExp(`\\s${n}/\\d+\\s*$`).test(x.split("\n")[23] ?? "");
    keys("j", "j");
    let s = await waitFor(footerAt(3), "selection on row 3");
    keys("k");
    s = await waitFor(footerAt(2), "selection on row 2");
    expect(s.split("\n")[22]).toContain("pid 31337");
  });

  test("space pages down, b pages back, G goes to the end of what is loaded", async () => {
    keys("g");
    await waitFor((x) => /\s1\/\d+/.test(x.split("\n")[23]!), "top");
    keys("Space");
    const paged = await waitFor((x) => /\s21\/\d+/.test(x.split("\n")[23]!), "one page down (20 rows)");
    expect(paged).not.toContain("agent-zeta"); // the newest rows scrolled off
    keys("b");
    await waitFor((x) => /\s1\/\d+/.test(x.split("\n")[23]!) && x.includes("agent-zeta"), "back to the top");
  });

  test("i shows the inventory: apps using AI, providers, models", async () => {
    keys("i");
    const s = await waitFor((x) => x.includes("Apps using AI"), "the inventory");
    expect(s).toContain("[i]nventory");
    expect(s).toMatch(/agent-zeta\s+1\s+0/);
    expect(s).toMatch(/Providers \(2\)/);
    expect(s).toContain("claude-opus-4");
    // One call, one row: the alias with both requests and both responses' tokens, the snapshot beside it.
    expect(s).toMatch(/ {2}gpt-x \(gpt-x-0718\)\s+2\s+0\s+2,000\s+20\s/);
    expect(s).not.toMatch(/^ {2}gpt-x-0718/m);
  });

  test("p shows the process tree: agent-zeta, python3 and node under their shell (4200)", async () => {
    keys("p");
    const s = await waitFor((x) => x.includes("[p]rocesses"), "the process view");
    const lines = s.split("\n");
    const shell = lines.findIndex((l) => /^\(parent, not seen\)\s+4200/.test(l));
    expect(shell).toBeGreaterThan(1);
    const children = lines.slice(shell + 1, shell + 4).map((l) => /^[├└] (\S+)\s+(\d+)/.exec(l)?.slice(1, 3));
    expect(children).toEqual([["agent-zeta", "31337"], ["python3", "4242"], ["node", "5151"]]);
    expect(lines[shell + 3]).toStartWith("└");
    expect(lines.some((l) => /^cursor\s+777\s+\d+/.test(l))).toBe(true);
  });

  test("new events appear while it runs (written by another connection)", async () => {
    keys("t");
    await waitFor((x) => x.includes("[t]imeline"), "the timeline");
    store.insertEvents(aiExchange({ tsMs: Date.now(), provider: "openai", model: "gpt-5-live", process: { pid: 4444, name: "late-arrival" } }));
    const s = await waitFor((x) => x.includes("late-arrival"), "the new event", 5000);
    expect(s.split("\n")[2]).toContain("gpt-5-live");
  });

  test("q quits and restores the terminal", async () => {
    keys("q");
    const s = await waitFor((x) => x.includes("EXITED 0"), "the command to exit");
    expect(s).not.toContain("[t]imeline"); // back on the normal screen
  });
});
