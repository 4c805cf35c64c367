// Where OISP keeps its data: the CA, the database, the IPC socket and spool, settings.json.
import os from "node:os";
import path from "node:path";

/** OISP_HOME if set, else %LOCALAPPDATA%\OISP on Windows, else $XDG_DATA_HOME/oisp or ~/.local/share/oisp. */
export function dataDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.OISP_HOME) return path.resolve(env.OISP_HOME);
  if (platform === "win32") {
    const base = env.LOCALAPPDATA ?? path.join(os.homedir(), "AppData", "Local");
    return path.join(base, "OISP");
  }
  const xdg = env.XDG_DATA_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), ".local", "share"), "oisp");
}

export function defaultDbPath(dir: string): string {
  return path.join(dir, "oisp.db");
}

export function settingsPath(dir: string): string {
  return path.join(dir, "settings.json");
}
