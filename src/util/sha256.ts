// SHA-256 of text (as UTF-8), in hex: the fingerprints of keys, contents and conversations. Bun's one-shot
// hash gives node:crypto's bytes without a Hash object per call (about half the time on short texts).

export function sha256Hex(text: string): string {
  return Bun.SHA256.hash(text, "hex") as string;
}
