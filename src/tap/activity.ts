// What a capture source saw processes do besides talking to AI hosts: programs started and files written
// (Linux eBPF: the processes that made AI calls and their descendants). Plain data, like the rest of the
// tap contract: it crosses threads and the IPC boundary as JSON, and the sensor turns it into events.

/** A program started (execve) by a watched process. */
export interface ExecActivity {
  kind: "exec";
  /** Epoch milliseconds (fractional). */
  ts: number;
  pid: number;
  ppid: number;
  uid: number;
  /** Kernel's short name of the new program (16 bytes at most). */
  comm: string;
  /** The program's path as given to execve, made absolute against cwd when it was relative. */
  exe: string;
  argv: string[];
  /** The argument block was longer than what the probe copies (4 KiB): argv is its beginning. */
  argvTruncated: boolean;
  cwd?: string;
}

/** Writes by one process to one regular file, merged from write/pwrite64/writev until close, exit or idle. */
export interface FileWriteActivity {
  kind: "file_write";
  /** Epoch milliseconds of the first write merged here. */
  ts: number;
  /** Epoch milliseconds of the last. */
  endTs: number;
  pid: number;
  ppid?: number;
  uid?: number;
  comm?: string;
  exe?: string;
  path: string;
  inode?: number;
  /** Bytes the kernel reported written, over all merged calls. */
  bytes: number;
  writes: number;
  /** pwrite64's offset of the first write, when the first write had one. */
  offset?: number;
  /** "sha256:" + 16 hex digits over the bytes captured, in order (see hashedBytes). */
  contentHash?: string;
  /** Bytes the hash covers: less than `bytes` when a write was larger than the probe copies or a chunk was lost. */
  hashedBytes: number;
  /** The first bytes written, as text (at most 256 characters). Kept in events only in full redaction mode. */
  preview?: string;
  /** Why the merge ended: "close", "exit", "idle", "limit" (too many files open at once), "shutdown". */
  flushedBy: string;
}

export type HostActivity = ExecActivity | FileWriteActivity;
