// Short content fingerprints: enough to correlate identical prompts, never enough to recover them.
import { createHash } from "node:crypto";

/** "sha256:" + the first 16 hex digits of sha256(text as UTF-8). */
export function contentHash(text: string): string {
  return `sha256:${createHash("sha256").update(text).digest("hex").slice(0, 16)}`;
}
