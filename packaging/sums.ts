// SHA256SUMS in the format `sha256sum -c` reads: "<hex>  <name>", one line per file, sorted by name.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

export function sha256File(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** Writes dir/SHA256SUMS for `names` (paths relative to dir, "/"-separated) and returns its text. */
export function writeSha256Sums(dir: string, names: string[]): string {
  const text = [...names]
    .sort()
    .map((n) => `${sha256File(path.join(dir, n))}  ${n}`)
    .join("\n");
  fs.writeFileSync(path.join(dir, "SHA256SUMS"), `${text}\n`);
  return `${text}\n`;
}

/** Parses SHA256SUMS text into name → hex. */
export function parseSha256Sums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) throw new Error(`SHA256SUMS: cannot read line "${line}"`);
    sums.set(m[2]!, m[1]!);
  }
  return sums;
}
