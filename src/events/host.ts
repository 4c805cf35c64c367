// The OISP `host` block: who this machine is. Computed once; none of it changes while we run.
import fs from "node:fs";
import os from "node:os";

export interface HostInfo {
  hostname: string;
  os: "linux" | "darwin" | "windows" | "other";
  os_version: string;
  arch: "x86_64" | "aarch64" | "other";
  kernel_version?: string;
}

let cached: HostInfo | undefined;

export function hostInfo(): HostInfo {
  cached ??= Object.freeze(detectHost()) as HostInfo;
  return cached;
}

function detectHost(): HostInfo {
  const osFamily = mapOs(process.platform);
  const info: HostInfo = {
    hostname: safe(() => os.hostname(), "unknown"),
    os: osFamily,
    os_version: osVersion(osFamily),
    arch: mapArch(process.arch),
  };
  const kernel = safe(() => os.release(), "");
  if (kernel) info.kernel_version = kernel;
  return info;
}

export function mapOs(platform: string): HostInfo["os"] {
  if (platform === "linux" || platform === "darwin") return platform;
  if (platform === "win32") return "windows";
  return "other";
}

export function mapArch(arch: string): HostInfo["arch"] {
  if (arch === "x64") return "x86_64";
  if (arch === "arm64") return "aarch64";
  return "other";
}

function osVersion(family: HostInfo["os"]): string {
  if (family === "linux") {
    // "Debian GNU/Linux 12 (bookworm)" says more than the kernel release.
    const pretty = safe(() => /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(fs.readFileSync("/etc/os-release", "utf8"))?.[1], undefined);
    return pretty || `Linux ${safe(() => os.release(), "")}`.trim();
  }
  if (family === "darwin") return `Darwin ${safe(() => os.release(), "")}`.trim();
  // os.version() is "Windows 10 Pro" / "Windows 11 Home" on Windows.
  return safe(() => os.version(), "") || `${process.platform} ${safe(() => os.release(), "")}`.trim();
}

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn() ?? fallback;
  } catch {
    return fallback;
  }
}
