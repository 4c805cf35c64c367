// headLines and parseFields (src/wire/http1.ts) split and check a head's lines by hand for speed; both readers
// of HTTP/1 (the proxy's request reader and the sensor's decoder) rely on them. Property: on any head text
// they answer what the plain versions (split, regex) answer, errors and their messages included.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { headLines, Http1FramingError, parseFields, parseHeadText, parseRequestLine, TOKEN } from "../../src/wire/http1.ts";
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

/** parseHeadText as the line-by-line reading: headLines, the first line, parseFields of the rest. */
function plainHead(text: string, maxCount: number): unknown {
  try {
    const lines = plainHeadLines(text);
    const startLine = lines.shift() ?? "";
    return { startLine, fields: parseFields(lines, maxCount, "header") };
  } catch (err) {
    if (!(err instanceof Http1FramingError)) throw err;
    return err.message;
  }
}

function head(text: string, maxCount: number): unknown {
  try {
    return parseHeadText(text, maxCount);
  } catch (err) {
    if (!(err instanceof Http1FramingError)) throw err;
    return err.message;
  }
}

test("parseHeadText answers as the line-by-line reading, CRLF heads read in one pass included", () => {
  // Mostly well-formed CRLF heads (the one-pass reading), with the odd byte that sends it the slow way ("Ã©" is
  // UTF-8 read as latin1: the slow way decodes it).
  const name = fc.constantFrom("Host", "Content-Length", "content-type", "X-A", "a", "{", "é", "", " X", "\tY", "A B");
  const value = fc.constantFrom("", "v", " v ", "\tv\t", "a:b", "bearer x", " ", "é", "ÿ\x80", "\r", "\n", "x\ry", "\x7f", "Ã©");
  const line = fc.oneof(
    { weight: 6, arbitrary: fc.tuple(name, fc.constantFrom(":", ": ", " :", ""), value).map(([n, c, v]) => `${n}${c}${v}`) },
    { weight: 1, arbitrary: fc.constantFrom("", " folded", "\tfolded", ":", "no colon") },
  );
  const start = fc.constantFrom("POST /v1/chat HTTP/1.1", "HTTP/1.1 200 OK", "", "GET / HTTP/1.0\n");
  const end = fc.constantFrom("\r\n\r\n", "\r\n", "", "\r\n\r\n\r\n", "\n\n", "\r\n\r\nA: b");
  fc.assert(
    fc.property(start, fc.array(line, { maxLength: 12 }), fc.constantFrom("\r\n", "\r\n", "\r\n", "\n"), end, fc.integer({ min: 0, max: 10 }), (s, lines, sep, e, maxCount) => {
      const text = [s, ...lines].join(sep) + e;
      expect(head(text, maxCount)).toEqual(plainHead(text, maxCount));
    }),
    fuzzParams(5000),
  );
  fc.assert(
    fc.property(fc.array(pieces, { maxLength: 40 }), fc.integer({ min: 0, max: 8 }), (parts, maxCount) => {
      const text = parts.join("");
      expect(head(text, maxCount)).toEqual(plainHead(text, maxCount));
    }),
    fuzzParams(3000),
  );
});

/** parseRequestLine as it read before: a split on " " into exactly three parts, then the same checks. */
function plainRequestLine(line: string): unknown {
  const parts = line.split(" ");
  if (parts.length !== 3) return `malformed request line: ${JSON.stringify(line.slice(0, 100))}`;
  const [method = "", target = "", version = ""] = parts;
  if (version === "HTTP/2.0" && method === "PRI") return "not HTTP/1.x: HTTP/2 connection preface";
  if (!/^HTTP\/1\.[01]$/.test(version)) return `unsupported HTTP version: ${JSON.stringify(version.slice(0, 20))}`;
  if (!TOKEN.test(method)) return "malformed request method";
  if (target === "" || /[\x00-\x20\x7f]/.test(target)) return "malformed request target";
  return { method, target, version };
}

function requestLine(line: string): unknown {
  try {
    return parseRequestLine(line);
  } catch (err) {
    if (!(err instanceof Http1FramingError)) throw err;
    return err.message;
  }
}

test("parseRequestLine finds its three parts as a split on spaces does", () => {
  const part = fc.constantFrom("POST", "GET", "/v1/chat", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "PRI", " ", "  ", "", "\t", "a b", "{");
  fc.assert(
    fc.property(fc.array(part, { maxLength: 7 }), (parts) => {
      const line = parts.join(" ");
      expect(requestLine(line)).toEqual(plainRequestLine(line));
    }),
    fuzzParams(3000),
  );
});
