// The terminal view's pure parts: key decoding, cursor movement and the rendered frame at 80x24.
import { describe, expect, test } from "bun:test";
import { decodeKeys } from "../../src/tui/index.ts";
import { applyKey, initialState, listRows, render, type TuiData } from "../../src/tui/screen.ts";
import { layout, truncate, width } from "../../src/tui/text.ts";
import type { TimelineRow } from "../../src/store/queries.ts";

const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");
const NOW = Date.UTC(2025, 5, 15, 12, 0, 0);

function timelineRow(i: number, over: Partial<TimelineRow> = {}): TimelineRow {
  return {
    rowid: i, event_id: `E${String(i).padStart(5, "0")}`, ts: new Date(NOW - i * 1000).toISOString(), ts_ms: NOW - i * 1000,
    event_type: i % 2 ? "ai.response" : "ai.request", provider: "openai", model: "gpt-4o-mini", pid: 4242, process_name: "python3",
    request_id: `req_${i}`, success: i % 2 ? 1 : null, input_tokens: i % 2 ? 1200 : null, output_tokens: i % 2 ? 180 : null,
    cost_usd: i % 2 ? 0.000288 : null, completeness: "full", latency_ms: i % 2 ? 840 : null, status_code: i % 2 ? 200 : null, ...over,
  };
}

function data(n: number): TuiData {
  return { timeline: Array.from({ length: n }, (_, i) => timelineRow(i)), timelineMore: false, apps: [], providers: [], models: [], processes: [], nowMs: NOW, source: "live" };
}

describe("keys", () => {
  test("letters, arrows, paging and Ctrl+C decode, several per read", () => {
    expect(decodeKeys("jjk")).toEqual(["j", "j", "k"]);
    expect(decodeKeys("\x1b[A\x1b[B\x1b[5~\x1b[6~")).toEqual(["up", "down", "pageup", "pagedown"]);
    expect(decodeKeys(" bgG\x03")).toEqual(["pagedown", "pageup", "home", "end", "q"]);
    expect(decodeKeys("\x1b[1;5Cq")).toEqual(["other", "q"]);
  });

  test("j/k and paging stay within the list; views keep their own cursor", () => {
    let s = initialState();
    const page = listRows(24);
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
  test("80x24: exactly 24 lines, none wider than 80 columns, selected row inverse", () => {
    const lines = render(initialState(), data(50), 80, 24);
    expect(lines.length).toBe(24);
    for (const l of lines) expect(width(strip(l))).toBeLessThanOrEqual(80);
    expect(strip(lines[0]!)).toContain("[t]imeline");
    expect(strip(lines[1]!)).toMatch(/^Time\s+Type\s+Provider\s+Model/);
    expect(lines[2]!.startsWith("\x1b[7m")).toBe(true);
    expect(strip(lines[2]!)).toContain("request");
    expect(strip(lines[3]!)).toMatch(/response .*openai .*gpt-4o-mini .*python3 .*1,200\/180 .*\$0\.00029 .*200 F/);
    expect(strip(lines[22]!)).toContain("pid 4242");
    expect(strip(lines[23]!)).toContain("1/50");
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
    expect(strip(render(initialState(), data(0), 80, 24)[2]!)).toContain("No AI traffic captured yet");
  });

  test("wide characters count as two columns", () => {
    expect(width(truncate("模型模型模型", 7))).toBeLessThanOrEqual(7);
    const cols = layout(80, [{ title: "a", width: 10 }, { title: "b", width: 1, flex: true }, { title: "c", width: 1, flex: true }]);
    expect(cols.reduce((a, c) => a + c.width, 0) + cols.length - 1).toBe(80);
  });
});
