// headLines and parseFields (src/wire/http1.ts) split and check a head's lines by hand for speed; both readers
// of HTTP/1 (the proxy's request reader and the sensor's decoder) rely on them. Property: on any head text
// they answer what the plain versions (split, regex) answer, errors and their messages included.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { headLines, Http1FramingError, parseFields, TOKEN } from "../../src/wire/http1.ts";
import { fuzzParams } from "../fault/fuzz-lib.ts";

function plainHeadLines(text: string): string[] {
  const lines = text.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** parseFields as it read before, up to the value (the value's trimming and decoding are unchanged). */
function plainNames(lines: string[], maxCount: number, what: string): string[] | string {
  if (lines.length > maxCount) return `more than ${maxCount} ${what} fields`;
  const names: string[] = [];
  for (const line of lines) {
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) return `obsolete line folding in ${what} section`;
    const colon = line.indexOf(":");
    const name = colon === -1 ? "" : line.slice(0, colon);
    if (!TOKEN.test(name)) return `malformed ${what} line: ${JSON.stringify(line.slice(0, 100))}`;
    if (line.includes("\r")) return `bare CR in ${what} section`;
    names.push(name);
  }
  return names;
}

function names(lines: string[], maxCount: number): string[] | string {
  try {
    return parseFields(lines, maxCount, "header").map(([name]) => name);
  } catch (err) {
    if (!(err instanceof Http1FramingError)) throw err;
    return err.message;
  }
}

const pieces = fc.constantFrom("Host", "Content-Length", "X-A", ":", ": ", " ", "\t", "\r", "\n", "\r\n", "a", "1", "é", "{", "\"", "/", "~", "\x7f", "\x80", "ÿ", "");

test("headLines and parseFields answer as the plain split and regex do", () => {
  fc.assert(
    fc.property(fc.array(pieces, { maxLength: 40 }), fc.integer({ min: 0, max: 8 }), (parts, maxCount) => {
      const text = parts.join("");
      const lines = headLines(text);
      expect(lines).toEqual(plainHeadLines(text));
      expect(names(lines, maxCount)).toEqual(plainNames(lines, maxCount, "header"));
    }),
    fuzzParams(3000),
  );
});

test("every token character is one, and the characters around them are not", () => {
  for (let c = 0; c < 256; c++) {
    if (c === 0x3a || c === 0x0d) continue; // the colon ends the name; a CR is an error of its own
    const ch = String.fromCharCode(c);
    expect(names([`a${ch}b: v`], 4)).toEqual(TOKEN.test(`a${ch}b`) ? [`a${ch}b`] : `malformed header line: ${JSON.stringify(`a${ch}b: v`)}`);
  }
});
