// Short content fingerprints: enough to correlate identical prompts, never enough to recover them.
import { sha256Hex } from "../util/sha256.ts";

/** Redaction hashes the same text twice in a row (a message's content_hash, then its $redacted marker). */
let lastText: string | undefined;
let lastHash = "";
/** Texts longer than this are not remembered: a big prompt would stay alive until the next hash. */
const MEMO_MAX_LENGTH = 64 * 1024;

/** "sha256:" + the first 16 hex digits of sha256(text as UTF-8). */
export function contentHash(text: string): string {
  if (text === lastText) return lastHash;
  const hash = `sha256:${sha256Hex(text).slice(0, 16)}`;
  if (text.length <= MEMO_MAX_LENGTH) {
    lastText = text;
    lastHash = hash;
  }
  return hash;
}
