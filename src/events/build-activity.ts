// process.exec and file.write events from what a capture source saw processes do (src/tap/activity.ts).
// Pure like build.ts: same activity → same event, id included. Command lines and previews are raw here;
// redactEvent masks credentials in every string and keeps a file's content only in full mode.
import path from "node:path";
import type { ExecActivity, FileWriteActivity } from "../tap/activity.ts";
import { formatTimestamp } from "./build.ts";
import type { HostInfo } from "./host.ts";
import { stableEventId } from "./ids.ts";
import type { FileWriteEvent, ProcessExecEvent } from "./schema.ts";

export interface ActivityContext {
  collectorVersion: string;
  host: HostInfo;
}

type RelatedEvent = NonNullable<ProcessExecEvent["related_events"]>[number];

const SHELLS = new Set(["sh", "bash", "dash", "zsh", "ksh", "fish", "ash", "busybox"]);
const INTERPRETER_RE = /^(?:python[0-9.]*|node|nodejs|bun|deno|ruby|perl[0-9.]*|php[0-9.]*|lua[0-9.]*|Rscript)$/;

export function buildProcessExec(ctx: ActivityContext, a: ExecActivity, causedBy?: string): ProcessExecEvent {
  const name = path.basename(a.exe) || a.comm;
  // A copy: the pipeline redacts the event in place, and the argv belongs to the activity record.
  const data: ProcessExecEvent["data"] = { exe: a.exe, args: [...a.argv] };
  if (a.cwd !== undefined) data.cwd = a.cwd;
  const isShell = SHELLS.has(name);
  data.is_shell = isShell;
  // `python3 tool.py`, `sh -c ...` is a shell, not a script; `sh build.sh` is both.
  const script = a.argv.slice(1).find((arg) => !arg.startsWith("-"));
  const runsScript = (isShell || INTERPRETER_RE.test(name)) && script !== undefined && !a.argv.includes("-c");
  data.is_script = runsScript;
  if (runsScript) {
    data.interpreter = a.exe;
    data.script_path = a.cwd !== undefined && !path.isAbsolute(script!) ? path.join(a.cwd, script!) : script!;
  }
  const event: ProcessExecEvent = {
    oisp_version: "0.1",
    event_id: stableEventId(a.ts, `exec/${a.pid}/${a.ts}`),
    ts: formatTimestamp(a.ts),
    host: { ...ctx.host },
    actor: { uid: a.uid },
    process: {
      pid: a.pid,
      ppid: a.ppid,
      exe: a.exe,
      name: a.comm || name,
      cmdline: a.argv.join(" "),
      ...(a.cwd !== undefined && { cwd: a.cwd }),
    },
    source: source(ctx, "sched_process_exec"),
    confidence: {
      level: "high",
      completeness: a.argvTruncated ? "partial" : "full",
      reasons: ["kernel_tracepoint", ...(a.argvTruncated ? ["argv_truncated"] : [])],
      process_attribution: "direct",
    },
    event_type: "process.exec",
    data,
  };
  if (causedBy !== undefined) event.related_events = [caused(causedBy)];
  return event;
}

export function buildFileWrite(ctx: ActivityContext, a: FileWriteActivity, causedBy?: string): FileWriteEvent {
  const name = path.basename(a.path);
  // ".env", ".bashrc": a dot file's name is its kind
  const ext = path.extname(name).slice(1) || (name.startsWith(".") ? name.slice(1) : "");
  const complete = a.hashedBytes === a.bytes;
  const data: FileWriteEvent["data"] = {
    path: a.path,
    bytes_written: a.bytes,
    ...(a.offset !== undefined && { offset: a.offset }),
    file: { path: a.path, name, ...(ext && { extension: ext }), ...(a.inode !== undefined && { inode: a.inode }) },
    // A hash of part of the content would be taken for the file's: only a whole one goes here.
    ...(complete && a.contentHash !== undefined && { content_hash: a.contentHash }),
    ...(a.preview !== undefined && { content_preview: a.preview.slice(0, 256) }),
  };
  const type = detectedType(ext, a.preview);
  if (type) data.detected_type = type;
  const event: FileWriteEvent = {
    oisp_version: "0.1",
    event_id: stableEventId(a.ts, `write/${a.pid}/${a.path}/${a.ts}`),
    ts: formatTimestamp(a.ts),
    host: { ...ctx.host },
    ...(a.uid !== undefined && { actor: { uid: a.uid } }),
    process: {
      pid: a.pid,
      ...(a.ppid !== undefined && { ppid: a.ppid }),
      ...(a.exe !== undefined && { exe: a.exe }),
      ...(a.comm !== undefined && { name: a.comm }),
    },
    source: source(ctx, "sys_enter_write"),
    confidence: {
      level: "high",
      completeness: complete ? "full" : "partial",
      reasons: ["kernel_tracepoint", complete ? "content_hashed" : "content_partly_captured"],
      process_attribution: "direct",
    },
    event_type: "file.write",
    data,
    attrs: {
      writes: a.writes,
      duration_ms: Math.max(0, Math.round(a.endTs - a.ts)),
      flushed_by: a.flushedBy,
      ...(!complete && { hashed_bytes: a.hashedBytes, ...(a.contentHash !== undefined && { partial_content_hash: a.contentHash }) }),
    },
  };
  if (causedBy !== undefined) event.related_events = [caused(causedBy)];
  return event;
}

function source(ctx: ActivityContext, capturePoint: string): ProcessExecEvent["source"] {
  return { collector: "oisp-sensor", collector_version: ctx.collectorVersion, capture_method: "ebpf_tracepoint", capture_point: capturePoint };
}

function caused(eventId: string): RelatedEvent {
  return { event_id: eventId, relationship: "caused_by" };
}

const SOURCE_EXT = new Set(["py", "js", "mjs", "cjs", "ts", "tsx", "jsx", "go", "rs", "c", "h", "cc", "cpp", "java", "kt", "rb", "php", "sh", "swift", "cs"]);
const CONFIG_EXT = new Set(["json", "yaml", "yml", "toml", "ini", "cfg", "conf", "env", "xml"]);
const IMAGE_EXT = new Set(["png", "jpg", "jpeg", "gif", "webp", "svg", "bmp", "ico"]);

/** OISP's detected_type from the extension, else from the first bytes (text unless it holds NULs). */
function detectedType(ext: string, preview: string | undefined): string | undefined {
  const e = ext.toLowerCase();
  if (SOURCE_EXT.has(e)) return "source_code";
  if (CONFIG_EXT.has(e)) return "config";
  if (IMAGE_EXT.has(e)) return "image";
  if (preview === undefined) return undefined;
  return preview.includes("\u0000") || preview.includes("\uFFFD") ? "binary" : "text";
}
