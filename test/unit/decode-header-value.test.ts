// headerValue compares ASCII names without lower-casing a copy of each; headerList reads a value without a
// comma without splitting it. Property: both answer what the plain versions (toLowerCase, split) answer.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { headerValue, type HeaderList } from "../../src/decode/types.ts";
import { headerList } from "../../src/wire/http1.ts";
import { fuzzParams } from "../fault/fuzz-lib.ts";

function plainHeaderValue(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of headers) if (k.length === lower.length && k.toLowerCase() === lower) return v;
  return undefined;
}

function plainHeaderList(headers: HeaderList, name: string): string[] {
  const out: string[] = [];
  for (const [k, v] of headers) {
    if (k.length !== name.length || k.toLowerCase() !== name) continue;
    for (const item of v.split(",")) if (item.trim() !== "") out.push(item.trim());
  }
  return out;
}

// Names in every case, with the characters whose lower case is ASCII (the Kelvin sign) or longer (İ).
const name = fc.oneof(
  fc.constantFrom("Host", "host", "HOST", "Content-Type", "x-request-id", "X-Request-Id", "Authorization", "\u212Aey", "key", "KEY", "\u0130d", "i\u0307d", "id", "a-B_c", "[", "@", "`", "{"),
  fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z@[\]{}\u212A\u0130-]{0,6}$/),
);
const value = fc.oneof(fc.constantFrom("", " ", "a", " a ", "a,b", "a, ,b", ",", "close", "Keep-Alive, Upgrade"), fc.string({ maxLength: 12 }));

test("headerValue and headerList answer as toLowerCase and split do", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(name, value), { maxLength: 10 }), name, (fields, asked) => {
      const headers = fields as HeaderList;
      expect(headerValue(headers, asked)).toBe(plainHeaderValue(headers, asked));
      const lower = asked.toLowerCase();
      expect(headerList(headers, lower)).toEqual(plainHeaderList(headers, lower));
    }),
    fuzzParams(5000),
  );
});
