// What /proc says about a process: ppid, exe, name, command line, start time. Shared by the proxy's socket-owner lookup
// (linux.ts) and the eBPF capture, which gets the pid from the probe itself.
import fsSync from "node:fs";
import type { ProcessInfo } from "../../tap/types.ts";

/** Read synchronously at once (four small files): a short-lived client may exit right after. */
export function describeProcess(proc: string, pid: number, uid: number): ProcessInfo {
  const read = (f: string) => {
    try {
      return fsSync.readFileSync(`${proc}/${pid}/${f}`);
    } catch {
      return Buffer.alloc(0);
    }
  };
  const stat = read("stat").toString("utf8");
  const comm = read("comm").toString("utf8");
  const cmdline = read("cmdline");
  let exe = "";
  try {
    exe = fsSync.readlinkSync(`${proc}/${pid}/exe`);
  } catch {
    // kernel thread, exited, or not ours to read
  }
  // stat: "pid (comm) state ppid ..." — comm may hold spaces and parentheses, so split after the last ")".
  const afterComm = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ppid = Number(afterComm[1]);
  const startTime = Number(afterComm[19]); // field 22 of stat
  const info: ProcessInfo = { pid, uid };
  if (Number.isFinite(ppid) && ppid > 0) info.ppid = ppid;
  if (afterComm[19] && Number.isFinite(startTime)) info.startTime = startTime;
  if (exe) info.exe = exe.replace(/ \(deleted\)$/, "");
  if (comm.trim()) info.name = comm.trim();
  const args = cmdline.toString("utf8").replace(/\0+$/, "").replace(/\0/g, " ");
  if (args) info.cmdline = args;
  return info;
}

/** uid → user name from /etc/passwd (a small file), read at most once a minute. */
export class UserNames {
  private map = new Map<number, string>();
  private readAt = 0;

  name(uid: number): string | undefined {
    if (Date.now() - this.readAt > 60_000) {
      this.readAt = Date.now();
      let text = "";
      try {
        text = fsSync.readFileSync("/etc/passwd", "utf8");
      } catch {
        // no passwd file: names stay unknown
      }
      const map = new Map<number, string>();
      for (const line of text.split("\n")) {
        const f = line.split(":");
        if (f.length >= 3 && /^\d+$/.test(f[2]!)) map.set(Number(f[2]), f[0]!);
      }
      this.map = map;
    }
    return this.map.get(uid);
  }
}
