// `oisp unpin HOST... | --all`: intercept hosts again whose clients once refused our certificate.
// The running proxy lives in another process (often elevated), so the command leaves a request file in
// the private run directory and the proxy picks it up within a second.
import fs from "node:fs";
import path from "node:path";
import { dataDir as defaultDataDir } from "../config/paths.ts";
import { readRoleStatus } from "../control/role-status.ts";
import { statusFilePath } from "../sensor/status-file.ts";
import { parseFlags, UsageError } from "../util/args.ts";
import type { Logger } from "../util/log.ts";
import { everySlowTick } from "../util/slow-tick.ts";

export const unpinHelp = `Usage: oisp unpin HOST... | --all

A client (an executable run by a user) that refuses the OISP certificate twice (certificate pinning, its
own trust store) has its connections to that host passed through untouched for an hour; a process that
hangs up on it twice without an alert (Node) has its own connections passed through for 15 minutes. Other
clients of the host are still intercepted. \`oisp status\` lists the pinned clients. Once the client trusts the CA,
unpin the host so the running proxy intercepts its clients again.

  --all        every pinned client of every host
  -h, --help   this help`;

function requestPath(dataDir: string): string {
  return path.join(dataDir, "run", "unpin-request.json");
}

export async function unpinCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { all: { type: "boolean" }, help: { type: "boolean", short: "h" } }, "unpin", Infinity);
  if (values.help) {
    console.log(unpinHelp);
    return 0;
  }
  if (!values.all && positionals.length === 0) throw new UsageError("oisp unpin: name the hosts to unpin, or --all");
  const dir = defaultDataDir();
  // Pins live in the running proxy's memory: with none running there is nothing to unpin, and a request
  // file left behind would only be picked up by some later start.
  if (!proxyRunning(dir)) {
    console.error(`oisp unpin: no capture is running with data directory ${dir} (no \`oisp up\` or \`oisp redirect\`), so no host is pinned`);
    return 3;
  }
  const file = requestPath(dir);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, JSON.stringify({ hosts: values.all ? null : positionals.map((h) => h.toLowerCase()) }), { mode: 0o600 });
  console.log(`asked the running proxy to intercept ${values.all ? "every pinned host" : positionals.join(", ")} again (see \`oisp status\`)`);
  return 0;
}

/** An `oisp redirect`, or an `oisp up` (its status file lists the proxy role), is running with this data dir. */
function proxyRunning(dir: string): boolean {
  if (readRoleStatus(statusFilePath(dir, "redirect")).running) return true;
  const up = readRoleStatus(statusFilePath(dir, "sensor"));
  return up.running && (up.snapshot?.roles ?? []).includes("proxy");
}

/** Polls for unpin requests while a proxy runs; returns the function that stops polling. */
export function watchUnpinRequests(dataDir: string, proxy: { unpin(hosts?: string[]): string[] }, log: Logger): () => void {
  const file = requestPath(dataDir);
  return everySlowTick(1000, () => {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
      fs.rmSync(file, { force: true });
    } catch {
      return; // no request: the common case
    }
    try {
      const { hosts } = JSON.parse(text) as { hosts: string[] | null };
      const removed = proxy.unpin(hosts ?? undefined);
      log("info", removed.length ? `unpinned ${removed.join(", ")}: intercepted again` : "unpin: none of those hosts was pinned");
    } catch (err) {
      log("warn", `unpin: ignoring a malformed request in ${file}: ${(err as Error).message}`);
    }
  });
}
