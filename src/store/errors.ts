// Store failures as one error type with a message a user can act on.

export type StoreErrorKind = "locked" | "disk-full" | "readonly" | "corrupt" | "cannot-open" | "io" | "closed" | "other";

export class StoreError extends Error {
  override name = "StoreError";
  constructor(
    message: string,
    readonly kind: StoreErrorKind,
    /** The SQLite result code, e.g. "SQLITE_BUSY". */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Maps a bun:sqlite / fs error to a StoreError saying what failed and what to do. */
export function toStoreError(err: unknown, doing: string, busyTimeoutMs: number): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as { code?: string; message?: string };
  const code = typeof e?.code === "string" ? e.code : undefined;
  const detail = e?.message ?? String(err);
  // Extended codes (SQLITE_BUSY_SNAPSHOT, SQLITE_IOERR_WRITE...) share their primary code's meaning.
  const base = code?.startsWith("SQLITE_") ? code.split("_").slice(0, 2).join("_") : code;
  switch (base) {
    case "SQLITE_BUSY":
    case "SQLITE_LOCKED":
      return new StoreError(`database is locked: ${doing}: another process held it for more than ${busyTimeoutMs} ms (${detail})`, "locked", code);
    case "SQLITE_FULL":
    case "ENOSPC":
      return new StoreError(`disk full: ${doing} (${detail})`, "disk-full", code);
    case "SQLITE_IOERR":
      return new StoreError(`disk I/O error: ${doing} (${detail}); is the disk full or failing?`, "io", code);
    case "SQLITE_READONLY":
    case "SQLITE_PERM":
    case "EACCES":
    case "EROFS":
      return new StoreError(`database not writable: ${doing} (${detail})`, "readonly", code);
    case "SQLITE_CORRUPT":
    case "SQLITE_NOTADB":
      return new StoreError(`database file is damaged or not a database: ${doing} (${detail})`, "corrupt", code);
    case "SQLITE_CANTOPEN":
    case "ENOENT":
    case "ENOTDIR":
      return new StoreError(`cannot open the database: ${doing} (${detail})`, "cannot-open", code);
    default:
      return new StoreError(`store failed: ${doing} (${detail})`, "other", code);
  }
}
