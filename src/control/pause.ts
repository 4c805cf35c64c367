// Pause / resume capture: the one implementation behind `oisp pause` / `oisp resume`, the dashboard's
// Control page and the tray menu. Writes the state file (src/config/pause.ts) and waits, briefly, until
// every running capture process (`oisp redirect`, `oisp up`) reports the new state in its status snapshot,
// so the answer says what is true now rather than what was asked.
import { readPauseState, writePauseState, type PauseState } from "../config/pause.ts";
import { readRoleStatus } from "./role-status.ts";
import { statusFilePath } from "../sensor/status-file.ts";

export interface ControlResult {
  ok: boolean;
  message: string;
}

/** The running processes that capture (a redirector, or a sensor with the proxy inside), by pid. */
export function captureProcesses(dataDir: string): Array<{ pid: number; role: string; paused?: boolean }> {
  const out: Array<{ pid: number; role: string; paused?: boolean }> = [];
  const rd = readRoleStatus(statusFilePath(dataDir, "redirect"));
  if (rd.running && rd.snapshot) out.push({ pid: rd.snapshot.pid, role: "oisp redirect", paused: rd.snapshot.capture?.paused });
  const s = readRoleStatus(statusFilePath(dataDir, "sensor"));
  // `oisp up` captures inside the sensor: through its proxy, or with eBPF (`--capture ebpf`).
  if (s.running && s.snapshot && (s.snapshot.roles.includes("proxy") || s.snapshot.roles.includes("ebpf"))) {
    out.push({ pid: s.snapshot.pid, role: "oisp up", paused: s.snapshot.capture?.paused });
  }
  return out;
}

export function currentPauseState(dataDir: string): PauseState & { error?: string } {
  try {
    return readPauseState(dataDir);
  } catch (err) {
    return { paused: false, error: (err as Error).message };
  }
}

export async function setCapturePaused(dataDir: string, paused: boolean, by: string, opts: { confirmMs?: number; pollMs?: number } = {}): Promise<ControlResult> {
  const verb = paused ? "paused" : "resumed";
  try {
    writePauseState(dataDir, { paused, since: new Date().toISOString(), by });
  } catch (err) {
    return { ok: false, message: `could not write the capture state: ${(err as Error).message}` };
  }
  const deadline = Date.now() + (opts.confirmMs ?? 3000);
  for (;;) {
    const procs = captureProcesses(dataDir);
    if (procs.length === 0) {
      return { ok: true, message: `Capture ${verb}. No capture process is running; the next one starts ${paused ? "paused" : "capturing"}.` };
    }
    const pending = procs.filter((p) => p.paused !== paused);
    const names = procs.map((p) => `${p.role} pid ${p.pid}`).join(", ");
    if (pending.length === 0) {
      return { ok: true, message: paused ? `Capture paused (${names}): traffic is relayed, nothing is decrypted or recorded.` : `Capture resumed (${names}).` };
    }
    if (Date.now() >= deadline) {
      return { ok: false, message: `Capture ${verb} in the state file, but ${pending.map((p) => `${p.role} pid ${p.pid}`).join(", ")} has not confirmed it yet (an older oisp version?).` };
    }
    await Bun.sleep(opts.pollMs ?? 100);
  }
}

export const pauseCapture = (dataDir: string, by: string, opts?: { confirmMs?: number }) => setCapturePaused(dataDir, true, by, opts);
export const resumeCapture = (dataDir: string, by: string, opts?: { confirmMs?: number }) => setCapturePaused(dataDir, false, by, opts);
