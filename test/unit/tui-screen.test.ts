// The terminal view's pure parts: key decoding, cursor movement and the rendered frame at 80x24.
import { describe, expect, test } from "bun:test";
import { decodeKeys, filterFor } from "../../src/tui/index.ts";
import { applyKey, initialState, listRows, render, summaryPanes, type TuiData } from "../../src/tui/screen.ts";
import { layout, truncate, width } from "../../src/tui/text.ts";
import type { TimelineRow } from "../../src/store/queries.ts";

const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");
const NOW = Date.UTC(2025, 5, 15, 12, 0, 0);

function timelineRow(i: number, over: Partial<TimelineRow> = {}): TimelineRow {
  return {
    rowid: i, event_id: `E${String(i).padStart(5, "0")}`, ts: new Date(NOW - i * 1000).toISOString(), ts_ms: NOW - i * 1000,
    event_type: i % 2 ? "ai.response" : "ai.request", provider: "openai", model: "gpt-4o-mini", pid: 4242, process_name: "python3",
    request_id: `req_${i}`, success: i % 2 ? 1 : null, input_tokens: i % 2 ? 1200 : null, output_tokens: i % 2 ? 180 : null,
    cost_usd: i % 2 ? 0.000288 : null, completeness: "full", latency_ms: i % 2 ? 840 : null, status_code: i % 2 ? 200 : null,
    tool_name: null, net_host: null, net_port: null, file_path: null, exec_args: null, exec_exe: null, parent_name: null, tool_calls: null, ...over,
  };
}

function data(n: number): TuiData {
  return { timeline: Array.from({ length: n }, (_, i) => timelineRow(i)), timelineMore: false, apps: [], providers: [], models: [], processes: [], nowMs: NOW, source: "live" };
}

describe("keys", () => {
  test("letters, arrows, paging and Ctrl+C decode, several per read", () => {
    expect(decodeKeys("jjk")).toEqual(["j", "j", "k"]);
    expect(decodeKeys("\x1b[A\x1b[B\x1b[5~\x1b[6~")).toEqual(["up", "down", "pageup", "pagedown"]);
    // Characters come through as themselves (commands, or filter text); control keys are named.
    expect(decodeKeys(" bgG\x03")).toEqual([" ", "b", "g", "G", "ctrl-c"]);
    expect(decodeKeys("\x1b[1;5Cq")).toEqual(["other", "q"]);
    expect(decodeKeys("/ab\x7f\r\x1b")).toEqual(["/", "a", "b", "backspace", "enter", "esc"]);
  });

  test("/ types a filter (letters are text, not commands), Enter applies it, Esc clears it", () => {
    let s = initialState();
    for (const k of ["/", "q", "t", "x", "backspace", "p"]) s = applyKey(s, k, 10, 10);
    expect(s.quit).toBe(false);
    expect(s.editing).toBe("qtp");
    s = applyKey(s, "enter", 10, 10);
    expect([s.filter, s.editing]).toEqual(["qtp", null]);
    s = applyKey(s, "esc", 10, 10);
    expect(s.filter).toBe("");
    s = applyKey(applyKey(s, "/", 10, 10), "esc", 10, 10);
    expect([s.filter, s.editing]).toEqual(["", null]);
  });

  test("a filter reads as provider:, process:, a known provider (or its display name), a known process, else text", () => {
    const known = { providers: ["openai", "xai"], processes: ["cursor", "python3"] };
    expect(filterFor("provider:anthropic", known)).toEqual({ provider: "anthropic" });
    expect(filterFor("process: node", known)).toEqual({ process: "node" });
    expect(filterFor("OpenAI", known)).toEqual({ provider: "openai" });
    expect(filterFor("xAI", known)).toEqual({ provider: "xai" });
    expect(filterFor("cursor", known)).toEqual({ process: "cursor" });
    expect(filterFor("parse()", known)).toEqual({ text: "parse()" });
  });

  test("w cycles the window 5 min → 1 h → 24 h → all; Enter is opened by index.ts and Esc returns", () => {
    let s = initialState();
    const seen = [s.window];
    for (let i = 0; i < 4; i++) seen.push((s = applyKey(s, "w", 10, 10)).window);
    expect(seen).toEqual(["5m", "1h", "24h", "all", "5m"]);
    s = { ...s, open: { eventId: "E1", offset: 0 } };
    s = applyKey(s, "j", 40, 10);
    expect(s.open).toEqual({ eventId: "E1", offset: 1 });
    expect(applyKey(s, "esc", 40, 10).open).toBeNull();
  });

  test("j/k and paging stay within the list; views keep their own cursor", () => {
    let s = initialState();
    const page = listRows(24, "timeline");
    for (let i = 0; i < 5; i++) s = applyKey(s, "j", 100, page);
    expect(s.cursors.timeline.selected).toBe(5);
    s = applyKey(s, "pagedown", 100, page);
    expect(s.cursors.timeline.selected).toBe(5 + page);
    expect(s.cursors.timeline.offset).toBe(page); // the view turned a whole page
    s = applyKey(s, "end", 100, page);
    expect(s.cursors.timeline).toEqual({ selected: 99, offset: 100 - page });
    s = applyKey(s, "j", 100, page);
    expect(s.cursors.timeline.selected).toBe(99);
    s = applyKey(s, "i", 100, page);
    expect(s.view).toBe("inventory");
    expect(s.cursors.inventory.selected).toBe(0);
    s = applyKey(s, "k", 10, page);
    expect(s.cursors.inventory.selected).toBe(0);
    s = applyKey(s, "t", 100, page);
    expect(s.cursors.timeline.selected).toBe(99);
    expect(applyKey(s, "q", 100, page).quit).toBe(true);
  });
});

describe("frame", () => {
  test("80x24: exactly 24 lines, none wider than 80 columns, selected row inverse, panes above the footer", () => {
    const d = data(50);
    d.version = "9.8.7";
    d.summary = { providers: [{ provider: "openai", requests: 25 }], apps: [{ process_name: "python3", requests: 25 }], confidence: { full: 40, metadata: 5, redacted: 5, total: 50 } };
    const lines = render(initialState(), d, 80, 24);
    expect(lines.length).toBe(24);
    for (const l of lines) expect(width(strip(l))).toBeLessThanOrEqual(80);
    expect(strip(lines[0]!)).toMatch(/OISP Sensor v9\.8\.7\s+AI ACTIVITY \(last 5 min\)/);
    expect(strip(lines[1]!)).toMatch(/^Time\s+Type\s+What happened\s+Process\s+Capture/);
    expect(lines[2]!.startsWith("\x1b[7m")).toBe(true);
    expect(strip(lines[2]!)).toMatch(/ai\.request\s+OpenAI gpt-4o-mini\s+python3\s+\[FULL\]/);
    expect(strip(lines[3]!)).toMatch(/ai\.response\s+OpenAI gpt-4o-mini/);
    const panes = lines.findIndex((l) => strip(l).startsWith("PROVIDERS"));
    expect(panes).toBe(24 - 2 - 5); // 4 pane rows + title, then the detail line and the footer
    expect(strip(lines[panes + 1]!)).toMatch(/^OpenAI\s+25\s+python3\s+25\s+Full\s+80%/);
    expect(strip(lines[panes + 2]!)).toMatch(/Metadata\s+10%/);
    expect(strip(lines[22]!)).toContain("pid 4242");
    expect(strip(lines[23]!)).toMatch(/\[T\]imeline \[i\]nventory \[p\]rocess tree/);
    expect(strip(lines[23]!)).toContain("1/50");
  });

  test("rows say what happened: tool name, host, command line with parent→child, path", () => {
    const d = data(0);
    d.timeline = [
      timelineRow(1, { event_type: "agent.tool_call", tool_name: "write_file", provider: null, model: null }),
      timelineRow(2, { event_type: "network.connect", net_host: "api.openai.com", net_port: 443, provider: null, model: null, completeness: "metadata_only" }),
      timelineRow(3, { event_type: "process.exec", exec_args: '["cargo","build","--release"]', process_name: "sh", parent_name: "cursor", provider: null, model: null }),
      timelineRow(4, { event_type: "file.write", file_path: "/src/main.rs", process_name: "cursor", provider: null, model: null, completeness: "redacted" }),
    ];
    const at80 = render(initialState(), d, 80, 24).map(strip);
    expect(at80[2]).toMatch(/tool_call\s+write_file\s+python3/);
    expect(at80[3]).toMatch(/net\.connect\s+api\.openai\.com\s+python3\s+\[META\]/);
    expect(at80[4]).toMatch(/process\.exec\s+cargo build --release\s+cursor→sh/);
    expect(at80[5]).toMatch(/file\.write\s+\/src\/main\.rs\s+cursor\s+\[RED\]/);
    // Wide: the full type names and the call's figures in their own columns.
    const at160 = render(initialState(), data(2), 160, 48).map(strip);
    expect(at160[1]).toMatch(/Time\s+Type\s+What happened\s+Process\s+In\/Out\s+Cost\s+Latency\s+St\s+Capture/);
    expect(at160[3]).toMatch(/ai\.response\s+OpenAI gpt-4o-mini\s+python3\s+1,200\/180\s+\$0\.00029\s+840 ms\s+200\s+\[FULL\]/);
  });

  test("panes: a third of the width each, the overflow counted", () => {
    const p = summaryPanes(
      { providers: Array.from({ length: 6 }, (_, i) => ({ provider: `p${i}`, requests: 10 - i })), apps: [], confidence: { full: 1, metadata: 1, redacted: 1, total: 3 } },
      80,
      4,
    );
    expect(p).toHaveLength(5);
    expect(p[4]).toMatch(/^\+3 more/);
    expect(p[1]).toMatch(/^p0\s+10\s+none\s+Full\s+33%/);
  });

  test("captured names cannot inject escape sequences, and long ones are cut", () => {
    const d = data(1);
    d.timeline[0] = timelineRow(1, { process_name: "evil\x1b[2Jname-that-is-very-long-indeed", model: "m".repeat(100) });
    const line = render(initialState(), d, 80, 24)[2]!;
    expect(strip(line)).not.toContain("\x1b");
    expect(strip(line)).toContain("evil?[2J");
    expect(strip(line)).toContain("…");
    expect(width(strip(line))).toBe(80);
  });

  test("empty store shows how to start", () => {
    expect(strip(render(initialState(), data(0), 80, 24)[2]!)).toContain("No AI activity in this window");
  });

  test("wide characters count as two columns", () => {
    expect(width(truncate("模型模型模型", 7))).toBeLessThanOrEqual(7);
    const cols = layout(80, [{ title: "a", width: 10 }, { title: "b", width: 1, flex: true }, { title: "c", width: 1, flex: true }]);
    expect(cols.reduce((a, c) => a + c.width, 0) + cols.length - 1).toBe(80);
  });
});
