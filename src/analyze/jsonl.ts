// Streams a JSONL file line by line into an Analyzer: memory stays at one read chunk plus one line,
// whatever the file's size. A line longer than the bound (or with no newline for that long) is
// skipped to its end and reported as malformed, never accumulated.
import fs from "node:fs";
import type { Analyzer } from "./aggregate.ts";

export interface JsonlScanOptions {
  /** Longest line parsed (characters). Default 64 MiB. */
  maxLineChars?: number;
  /** Read size. Default 1 MiB. */
  chunkBytes?: number;
  /** Called after each chunk with the bytes read so far. */
  onProgress?: (bytesRead: number) => void;
}

export interface JsonlScanResult {
  bytes: number;
  lines: number;
}

export async function scanJsonl(path: string, analyzer: Analyzer, opts: JsonlScanOptions = {}): Promise<JsonlScanResult> {
  const maxLine = opts.maxLineChars ?? 64 * 1024 * 1024;
  const decoder = new TextDecoder("utf-8"); // invalid bytes become U+FFFD; the JSON parse then decides
  const stream = fs.createReadStream(path, { highWaterMark: opts.chunkBytes ?? 1024 * 1024 });
  let carry = "";
  let skipping = false; // inside an over-long line: drop everything up to its newline
  let lineNo = 0;
  let bytes = 0;

  const take = (line: string) => {
    lineNo++;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.trim() === "") return; // blank lines are allowed (and common at the end)
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      return analyzer.malformed(lineNo, `invalid JSON: ${(err as Error).message.slice(0, 120)}`);
    }
    analyzer.add(value, lineNo);
  };

  for await (const chunk of stream as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    const text = decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      if (skipping) {
        skipping = false;
        lineNo++;
        analyzer.malformed(lineNo, `line longer than ${maxLine} characters`);
      } else if (carry) {
        const line = carry + text.slice(start, nl);
        carry = "";
        if (line.length > maxLine) {
          lineNo++;
          analyzer.malformed(lineNo, `line longer than ${maxLine} characters`);
        } else take(line);
      } else if (nl - start > maxLine) {
        lineNo++;
        analyzer.malformed(lineNo, `line longer than ${maxLine} characters`);
      } else take(text.slice(start, nl));
      start = nl + 1;
    }
    if (!skipping && start < text.length) {
      carry += text.slice(start);
      if (carry.length > maxLine) {
        carry = "";
        skipping = true;
      }
    }
    opts.onProgress?.(bytes);
  }
  const rest = carry + decoder.decode();
  if (skipping) {
    lineNo++;
    analyzer.malformed(lineNo, `line longer than ${maxLine} characters`);
  } else if (rest) take(rest);
  return { bytes, lines: lineNo };
}
