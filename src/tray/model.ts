// What the tray shows and offers, as plain data: the state (icon + tooltip), the menu, and the balloons
// to raise when the state changes. No FFI and no I/O: src/tray/win32-tray.ts draws it, tests check it.

/** What the tray knows each tick (read from the status files, the CA, the database, the Run key). */
export interface TrayFacts {
  sensor: { running: boolean; pid?: number; dashboardUrl?: string };
  capture: {
    /** A capture process (`oisp redirect`, or `oisp up`) runs. */
    running: boolean;
    pid?: number;
    /** `oisp up`: capture inside the sensor, stopped where it was started. */
    inSensor?: boolean;
    /** The tray asked it to stop and it has not yet. */
    stopping?: boolean;
    /** Handshakes in which a client refused our certificate (proxy stats), to notice new ones. */
    clientRejected: number;
    /** Hosts passed through because of that. */
    pinnedHosts: string[];
  };
  paused: boolean;
  ca: { exists: boolean; trusted: boolean | undefined };
  callsToday: number;
  lastProvider?: string;
  startWithWindows: boolean;
}

export type TrayState = "sensor-not-running" | "ca-not-trusted" | "paused" | "capturing" | "not-capturing";

/** Most urgent first: a missing sensor records nothing at all; an untrusted CA breaks interception. */
export function trayState(f: TrayFacts): TrayState {
  if (!f.sensor.running) return "sensor-not-running";
  if (f.ca.exists && f.ca.trusted === false) return "ca-not-trusted";
  if (f.paused) return "paused";
  if (f.capture.running) return "capturing";
  return "not-capturing";
}

const STATE_TEXT: Record<TrayState, string> = {
  "sensor-not-running": "sensor not running",
  "ca-not-trusted": "CA not trusted",
  paused: "paused",
  capturing: "capturing",
  "not-capturing": "not capturing",
};

/** szTip holds 128 UTF-16 units including the terminator. */
export const MAX_TOOLTIP = 127;

export function tooltip(f: TrayFacts): string {
  const parts = [`OISP: ${STATE_TEXT[trayState(f)]}`];
  if (f.paused && trayState(f) !== "paused") parts.push("paused");
  parts.push(`${f.callsToday} ${f.callsToday === 1 ? "call" : "calls"} today`);
  if (f.lastProvider) parts.push(`last: ${f.lastProvider}`);
  const text = parts.join(" · ");
  return text.length > MAX_TOOLTIP ? `${text.slice(0, MAX_TOOLTIP - 1)}…` : text;
}

export type TrayAction =
  | "start-capture"
  | "stop-capture"
  | "pause"
  | "resume"
  | "install-ca"
  | "remove-ca"
  | "open-dashboard"
  | "view-logs"
  | "settings"
  | "toggle-autostart"
  | "quit";

export type MenuItem =
  | { kind: "item"; id: number; action: TrayAction; label: string; enabled: boolean; checked?: boolean; default?: boolean }
  | { kind: "separator" }
  | { kind: "label"; label: string };

/** Menu command ids start at 1 (TrackPopupMenu returns 0 for "dismissed"). */
export const ACTION_IDS: Record<TrayAction, number> = {
  "start-capture": 1,
  "stop-capture": 2,
  pause: 3,
  resume: 4,
  "install-ca": 5,
  "remove-ca": 6,
  "open-dashboard": 7,
  "view-logs": 8,
  settings: 9,
  "toggle-autostart": 10,
  quit: 11,
};

export function actionForId(id: number): TrayAction | undefined {
  return (Object.keys(ACTION_IDS) as TrayAction[]).find((a) => ACTION_IDS[a] === id);
}

/** `&` marks the access key (the underlined letter) of a Win32 menu item. */
export function trayMenu(f: TrayFacts): MenuItem[] {
  const item = (action: TrayAction, label: string, enabled = true, extra: { checked?: boolean; default?: boolean } = {}): MenuItem => ({
    kind: "item",
    id: ACTION_IDS[action],
    action,
    label,
    enabled,
    ...extra,
  });
  const c = f.capture;
  return [
    { kind: "label", label: tooltip(f) },
    { kind: "separator" },
    item("start-capture", "&Start Capture", !c.running),
    item("stop-capture", c.stopping ? "Stopping Capture…" : "S&top Capture", c.running && !c.inSensor && !c.stopping),
    f.paused ? item("resume", "&Resume Recording") : item("pause", "&Pause Recording"),
    { kind: "separator" },
    f.ca.trusted ? item("remove-ca", "Remove &CA Certificate") : item("install-ca", "Install &CA Certificate"),
    { kind: "separator" },
    item("open-dashboard", "Open &Dashboard", true, { default: true }),
    item("view-logs", "View &Logs"),
    item("settings", "S&ettings…"),
    item("toggle-autostart", "Start with &Windows", true, { checked: f.startWithWindows }),
    { kind: "separator" },
    item("quit", "&Quit"),
  ];
}

export interface Balloon {
  title: string;
  text: string;
  kind: "info" | "warning" | "error";
}

/**
 * Balloons for what changed between two ticks. `prev` undefined: the first tick, which only warns about
 * an untrusted CA. `stopRequested`: the tray asked capture to stop, so its end is not "unexpected".
 */
export function balloonsFor(prev: TrayFacts | undefined, next: TrayFacts, stopRequested: boolean): Balloon[] {
  const out: Balloon[] = [];
  if (prev?.capture.running && !next.capture.running && !stopRequested && prev.capture.pid === (next.capture.pid ?? prev.capture.pid)) {
    out.push({ kind: "error", title: "OISP capture stopped", text: "Capture stopped unexpectedly. AI calls are no longer recorded; see View Logs, then Start Capture." });
  }
  if (prev && next.capture.running && next.capture.clientRejected > prev.capture.clientRejected) {
    const hosts = next.capture.pinnedHosts.filter((h) => !prev.capture.pinnedHosts.includes(h));
    out.push({
      kind: "warning",
      title: "A client rejected the OISP certificate",
      text: `${hosts.length ? hosts.join(", ") : "A host"} is now passed through without recording. Trust the CA in that app, then run \`oisp unpin\`.`,
    });
  }
  const untrusted = (f: TrayFacts) => f.ca.exists && f.ca.trusted === false;
  if (untrusted(next) && (!prev || !untrusted(prev))) {
    out.push({ kind: "warning", title: "OISP CA not trusted", text: "HTTPS calls cannot be decoded until the CA is trusted: choose Install CA Certificate." });
  }
  return out;
}

/** The per-user Run value: starts the tray at logon with this data directory. */
export function runKeyCommand(exePath: string, scriptArgs: string[], dataDir: string): string {
  return quoteWindowsArgs([exePath, ...scriptArgs, "--data-dir", dataDir, "tray", "--at-logon"]);
}

/** Windows command-line quoting (CommandLineToArgvW rules) for ShellExecuteExW's lpParameters. */
export function quoteWindowsArgs(args: string[]): string {
  return args
    .map((a) => {
      if (a !== "" && !/[\s"]/.test(a)) return a;
      // Backslashes double only before a quote (or the closing quote).
      return `"${a.replace(/(\\*)"/g, '$1$1\\"').replace(/(\\+)$/, "$1$1")}"`;
    })
    .join(" ");
}

/** 16x16 icon, BGRA top-down: a filled circle in the state's colour with a dark rim. */
export const ICON_SIZE = 16;

const STATE_COLOURS: Record<TrayState, [number, number, number]> = {
  capturing: [0x2e, 0xa0, 0x43], // green
  paused: [0xd4, 0xa0, 0x17], // amber
  "not-capturing": [0x8c, 0x95, 0x9f], // grey
  "ca-not-trusted": [0xe0, 0x6c, 0x00], // orange
  "sensor-not-running": [0xcf, 0x22, 0x2e], // red
};

export function iconPixels(state: TrayState): { bgra: Uint8Array; andMask: Uint8Array } {
  const n = ICON_SIZE;
  const bgra = new Uint8Array(n * n * 4);
  // AND mask: 1 bit per pixel, rows of 2 bytes (WORD-aligned), 1 = transparent where there is no alpha.
  const andMask = new Uint8Array((n * n) / 8);
  const [r, g, b] = STATE_COLOURS[state];
  const c = (n - 1) / 2;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const d = Math.hypot(x - c, y - c);
      const o = (y * n + x) * 4;
      if (d > n / 2 - 0.5) {
        andMask[(y * n + x) >> 3]! |= 0x80 >> (x & 7);
        continue;
      }
      const rim = d > n / 2 - 2;
      bgra[o] = rim ? b >> 1 : b;
      bgra[o + 1] = rim ? g >> 1 : g;
      bgra[o + 2] = rim ? r >> 1 : r;
      bgra[o + 3] = 0xff;
    }
  }
  return { bgra, andMask };
}
