// The tray's state, tooltip, menu and balloons, with no FFI: what src/tray/win32-tray.ts draws.
import { describe, expect, test } from "bun:test";
import {
  ACTION_IDS,
  actionForId,
  balloonsFor,
  iconPixels,
  MAX_TOOLTIP,
  quoteWindowsArgs,
  runKeyCommand,
  tooltip,
  trayMenu,
  trayState,
  type MenuItem,
  type TrayFacts,
} from "../../src/tray/model.ts";

const facts = (over: Partial<TrayFacts> = {}): TrayFacts => ({
  sensor: { running: true, pid: 10, dashboardUrl: "http://127.0.0.1:7777/" },
  capture: { running: true, pid: 20, clientRejected: 0, pinnedHosts: [] },
  paused: false,
  ca: { exists: true, trusted: true },
  callsToday: 12,
  lastProvider: "openai",
  startWithWindows: false,
  ...over,
});

const items = (m: MenuItem[]) => m.filter((i): i is Extract<MenuItem, { kind: "item" }> => i.kind === "item");
const byAction = (m: MenuItem[], a: string) => items(m).find((i) => i.action === a);

describe("state and tooltip", () => {
  test("most urgent state wins: no sensor, then untrusted CA, then paused, capturing, not capturing", () => {
    expect(trayState(facts())).toBe("capturing");
    expect(trayState(facts({ capture: { running: false, clientRejected: 0, pinnedHosts: [] } }))).toBe("not-capturing");
    expect(trayState(facts({ paused: true }))).toBe("paused");
    expect(trayState(facts({ paused: true, ca: { exists: true, trusted: false } }))).toBe("ca-not-trusted");
    expect(trayState(facts({ paused: true, ca: { exists: true, trusted: false }, sensor: { running: false } }))).toBe("sensor-not-running");
    // No CA yet is not "not trusted": it is created on first capture.
    expect(trayState(facts({ ca: { exists: false, trusted: undefined } }))).toBe("capturing");
  });

  test("tooltip: state, calls today and the last provider, within szTip's 127 characters", () => {
    expect(tooltip(facts())).toBe("OISP: capturing · 12 calls today · last: openai");
    expect(tooltip(facts({ callsToday: 1, lastProvider: undefined, paused: true }))).toBe("OISP: paused · 1 call today");
    // Paused is still said when a more urgent state is shown.
    expect(tooltip(facts({ paused: true, ca: { exists: true, trusted: false } }))).toBe("OISP: CA not trusted · paused · 12 calls today · last: openai");
    const long = tooltip(facts({ lastProvider: "x".repeat(300) }));
    expect(long.length).toBe(MAX_TOOLTIP);
    expect(long.endsWith("…")).toBe(true);
  });

  test("one icon per state, a filled circle with transparent corners", () => {
    const states = ["capturing", "paused", "not-capturing", "ca-not-trusted", "sensor-not-running"] as const;
    const centres = states.map((s) => Array.from(iconPixels(s).bgra.subarray((8 * 16 + 8) * 4, (8 * 16 + 8) * 4 + 4)).join(","));
    expect(new Set(centres).size).toBe(5);
    const { bgra, andMask } = iconPixels("capturing");
    expect(bgra[3]).toBe(0); // corner pixel: transparent
    expect(andMask[0]! & 0x80).toBe(0x80);
    expect(bgra[(8 * 16 + 8) * 4 + 3]).toBe(0xff);
    expect(andMask[(8 * 16 + 8) >> 3]! & (0x80 >> 0)).toBe(0);
  });
});

describe("menu", () => {
  test("capturing: Stop enabled, Start disabled, Pause offered, Remove CA offered, Open Dashboard default", () => {
    const m = trayMenu(facts());
    expect(byAction(m, "start-capture")?.enabled).toBe(false);
    expect(byAction(m, "stop-capture")?.enabled).toBe(true);
    expect(byAction(m, "pause")?.label).toBe("&Pause Recording");
    expect(byAction(m, "resume")).toBeUndefined();
    expect(byAction(m, "remove-ca")).toBeDefined();
    expect(byAction(m, "open-dashboard")?.default).toBe(true);
    expect(byAction(m, "toggle-autostart")?.checked).toBe(false);
    expect(m[0]).toEqual({ kind: "label", label: "OISP: capturing · 12 calls today · last: openai" });
    expect(items(m).map((i) => i.action)).toEqual([
      "start-capture", "stop-capture", "pause", "remove-ca", "open-dashboard", "view-logs", "settings", "toggle-autostart", "quit",
    ]);
  });

  test("not capturing, paused, CA untrusted, autostart on", () => {
    const m = trayMenu(facts({ capture: { running: false, clientRejected: 0, pinnedHosts: [] }, paused: true, ca: { exists: true, trusted: false }, startWithWindows: true }));
    expect(byAction(m, "start-capture")?.enabled).toBe(true);
    expect(byAction(m, "stop-capture")?.enabled).toBe(false);
    expect(byAction(m, "resume")?.label).toBe("&Resume Recording");
    expect(byAction(m, "install-ca")?.label).toBe("Install &CA Certificate");
    expect(byAction(m, "toggle-autostart")?.checked).toBe(true);
  });

  test("capture inside `oisp up` cannot be stopped from the tray; a stop in progress says so", () => {
    expect(byAction(trayMenu(facts({ capture: { running: true, inSensor: true, clientRejected: 0, pinnedHosts: [] } })), "stop-capture")?.enabled).toBe(false);
    const stopping = byAction(trayMenu(facts({ capture: { running: true, stopping: true, clientRejected: 0, pinnedHosts: [] } })), "stop-capture");
    expect(stopping).toMatchObject({ enabled: false, label: "Stopping Capture…" });
  });

  test("command ids are unique, non-zero, and map back to their action", () => {
    const ids = Object.values(ACTION_IDS);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((i) => i > 0)).toBe(true);
    for (const [a, id] of Object.entries(ACTION_IDS)) expect(actionForId(id)).toBe(a as never);
    expect(actionForId(0)).toBeUndefined();
  });
});

describe("balloons", () => {
  const stopped = facts({ capture: { running: false, clientRejected: 0, pinnedHosts: [] } });

  test("capture that ends without the tray asking is 'stopped unexpectedly'; asked-for stops are silent", () => {
    expect(balloonsFor(facts(), stopped, false).map((b) => b.title)).toEqual(["OISP capture stopped"]);
    expect(balloonsFor(facts(), stopped, true)).toEqual([]);
    expect(balloonsFor(stopped, stopped, false)).toEqual([]);
  });

  test("a new certificate rejection names the newly pinned host", () => {
    const next = facts({ capture: { running: true, pid: 20, clientRejected: 1, pinnedHosts: ["api.anthropic.com"] } });
    const b = balloonsFor(facts(), next, false);
    expect(b).toHaveLength(1);
    expect(b[0]!.title).toBe("A client rejected the OISP certificate");
    expect(b[0]!.text).toStartWith("api.anthropic.com is now passed through");
    expect(balloonsFor(next, next, false)).toEqual([]);
  });

  test("an untrusted CA is said once: at start and when it becomes untrusted", () => {
    const untrusted = facts({ ca: { exists: true, trusted: false } });
    expect(balloonsFor(undefined, untrusted, false).map((b) => b.title)).toEqual(["OISP CA not trusted"]);
    expect(balloonsFor(untrusted, untrusted, false)).toEqual([]);
    expect(balloonsFor(facts(), untrusted, false)).toHaveLength(1);
    expect(balloonsFor(undefined, facts(), false)).toEqual([]);
  });
});

test("Run key command and Windows quoting (CommandLineToArgvW rules)", () => {
  expect(quoteWindowsArgs(["a", "b c", 'say "hi"', "C:\\dir\\", ""])).toBe('a "b c" "say \\"hi\\"" C:\\dir\\ ""');
  expect(quoteWindowsArgs(["C:\\a b\\"])).toBe('"C:\\a b\\\\"');
  expect(runKeyCommand("C:\\Program Files\\OISP\\oisp.exe", [], "C:\\Users\\a b\\AppData\\Local\\OISP")).toBe(
    '"C:\\Program Files\\OISP\\oisp.exe" --data-dir "C:\\Users\\a b\\AppData\\Local\\OISP" tray --at-logon',
  );
});
