// Where the two roles meet (a unix socket or a Windows named pipe) and the per-run token that proves
// a redirector runs as the same user as the sensor (it can read the sensor's 0600 token file).
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const PIPE_PREFIX = "\\\\.\\pipe\\";

export function runDir(dataDir: string): string {
  return path.join(dataDir, "run");
}

export function tokenPath(dataDir: string): string {
  return path.join(runDir(dataDir), "ipc.token");
}

export function isWindowsPipePath(p: string): boolean {
  return p.startsWith(PIPE_PREFIX) || p.startsWith("//./pipe/");
}

/** Pipe names are per user so two users' sensors on one machine never meet. */
function userTag(): string {
  let name = "user";
  try {
    name = os.userInfo().username || name;
  } catch {
    // No passwd entry (containers): fall back to a fixed tag; the token still guards the pipe.
  }
  return name.replace(/[^A-Za-z0-9._-]/g, "_");
}

export function defaultPipePath(dataDir: string, platform: NodeJS.Platform = process.platform): string {
  if (platform === "win32") return `${PIPE_PREFIX}oisp-sensor-${userTag()}`;
  return path.join(runDir(dataDir), "oisp.sock");
}

/** `--pipe NAME|PATH`: a bare name maps to the pipe namespace (Windows) or `<dataDir>/run/<name>.sock`. */
export function resolvePipePath(nameOrPath: string, dataDir: string, platform: NodeJS.Platform = process.platform): string {
  if (isWindowsPipePath(nameOrPath)) return nameOrPath;
  const bare = !/[\\/]/.test(nameOrPath);
  if (!bare) return path.resolve(nameOrPath);
  if (platform === "win32") return `${PIPE_PREFIX}${nameOrPath}`;
  return path.join(runDir(dataDir), nameOrPath.endsWith(".sock") ? nameOrPath : `${nameOrPath}.sock`);
}

/** Creates the socket's directory 0700 if missing; our own run dir is forced to 0700 even if it exists. */
export function prepareSocketDir(socketPath: string, dataDir?: string): void {
  if (isWindowsPipePath(socketPath)) return;
  const dir = path.dirname(socketPath);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Only tighten a directory we own by design; a user-chosen path like /tmp/x.sock keeps its directory as is.
  if (dataDir && path.resolve(dir) === path.resolve(runDir(dataDir)) && process.platform !== "win32") fs.chmodSync(dir, 0o700);
}

/** After listen: only the owner may connect. */
export function restrictSocketAccess(socketPath: string): void {
  if (isWindowsPipePath(socketPath)) {
    restrictPipeAccess(socketPath);
    return;
  }
  fs.chmodSync(socketPath, 0o600);
}

/**
 * Windows: the pipe should carry a DACL for the current user + Administrators only. Bun's node:net (libuv
 * uv_pipe_bind → CreateNamedPipeW with no security attributes) offers no way to pass one, so the pipe has
 * Windows' default: full control for LocalSystem, Administrators and the creator owner, read-only for
 * Everyone and Anonymous. A read-only client cannot send the hello, so another non-admin user cannot
 * inject frames; anyone who can write must still present the per-run token, which only readers of this
 * user's data dir have (%LOCALAPPDATA% is private to the user, SYSTEM and Administrators). Not covered:
 * another user creating the pipe name first (squatting) — the sensor then fails to listen (libuv asks for
 * FILE_FLAG_FIRST_PIPE_INSTANCE), but a redirector would still connect to the squatter. Kept here so an
 * FFI version (our own CreateNamedPipeW + ConnectNamedPipe) replaces exactly this function.
 */
function restrictPipeAccess(_pipePath: string): void {}

/** Writes a fresh random token for this sensor run (file 0600, dir 0700) and returns it. */
export function createRunToken(dataDir: string): string {
  const token = crypto.randomBytes(32).toString("base64url");
  const file = tokenPath(dataDir);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Write to a private temp file and rename, so a reader never sees a half-written token.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, token, { mode: 0o600 });
  if (process.platform !== "win32") fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
  return token;
}

/** The sensor's current token, or undefined when no sensor has written one (or it is unreadable). */
export function readRunToken(file: string): string | undefined {
  try {
    const token = fs.readFileSync(file, "utf8").trim();
    return token.length > 0 ? token : undefined;
  } catch {
    return undefined;
  }
}

/** Constant-time token comparison (no early exit on the first differing byte). */
export function tokensEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) return false;
  return crypto.timingSafeEqual(ab, bb);
}
