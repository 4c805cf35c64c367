// Short content fingerprints: enough to correlate identical prompts, never enough to recover them.
import { sha256Hex } from "../util/sha256.ts";
import { TextMemo } from "../util/text-memo.ts";

/** Redaction hashes the same text twice in a row (a message's content_hash, then its $redacted marker). */
let lastText: string | undefined;
let lastHash = "";
/** Texts longer than this are not remembered: a big prompt would stay alive until the next hash. */
const MEMO_MAX_LENGTH = 64 * 1024;

/**
 * Hashes of texts seen recently: clients re-send a conversation's history with every call, and each message
 * is hashed again (content_hash, system_prompt_hash). A hit costs a hash-table lookup of the text instead of
 * a SHA-256. Bounded by count and characters (256 K: kept in memory while the sensor idles); cleared when full.
 */
const recent = new TextMemo<string>(128, 256 * 1024);
/** Shorter texts hash about as fast as they are looked up. */
const RECENT_MIN_LENGTH = 64;

/** "sha256:" + the first 16 hex digits of sha256(text as UTF-8). */
export function contentHash(text: string): string {
  if (text === lastText) return lastHash;
  const remember = text.length <= MEMO_MAX_LENGTH;
  const keep = remember && text.length >= RECENT_MIN_LENGTH;
  let hash = keep ? recent.get(text) : undefined;
  if (hash === undefined) {
    hash = `sha256:${sha256Hex(text).slice(0, 16)}`;
    if (keep) recent.set(text, hash);
  }
  if (remember) {
    lastText = text;
    lastHash = hash;
  }
  return hash;
}
