// Deterministic ZIP: entries sorted by name, every mtime fixed (SOURCE_DATE_EPOCH), DEFLATE at a fixed
// level, no extra fields; the same inputs give the same bytes on any machine and in any time zone.
import fs from "node:fs";
import { zipSync, type Zippable } from "fflate";

export interface ZipEntry {
  name: string; // path inside the archive, "/"-separated
  data: Uint8Array;
}

/** DOS timestamps are local time: shift so that fflate's local-time fields read as the UTC moment. */
function dosDate(epochSeconds: number): Date {
  // DOS dates start in 1980 and have 2-second resolution.
  const t = Math.max(epochSeconds, 315532800) * 1000;
  const d = new Date(t);
  return new Date(t + d.getTimezoneOffset() * 60_000);
}

export function zipBytes(entries: ZipEntry[], epochSeconds: number): Uint8Array {
  const mtime = dosDate(epochSeconds);
  const files: Zippable = {};
  const seen = new Set<string>();
  for (const e of [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (seen.has(e.name)) throw new Error(`zip: duplicate entry ${e.name}`);
    seen.add(e.name);
    files[e.name] = [e.data, { level: 9, mtime }];
  }
  return zipSync(files, { level: 9, mtime });
}

export function writeZip(out: string, entries: ZipEntry[], epochSeconds: number): void {
  fs.writeFileSync(out, zipBytes(entries, epochSeconds));
}
