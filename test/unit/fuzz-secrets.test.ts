// maskSecrets skips a pattern when the text lacks the literals every match needs (src/events/secrets.ts).
// Property: on any text it masks exactly what running every pattern, in order, on every text does: same
// text out, same findings. Texts are built from the patterns' own pieces (key prefixes, names, separators,
// "[REDACTED:...]" tags), random runs, case flips and non-ASCII letters that change under case mapping.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { maskSecrets, SECRET_PATTERNS, type SecretFinding } from "../../src/events/secrets.ts";
import { API_KEY_SHAPES } from "../../src/spec/key-shapes.ts";
import { fuzzParams } from "../fault/fuzz-lib.ts";

/** The masker without its pre-checks: every pattern's regex on every text. */
function reference(text: string): { text: string; findings: SecretFinding[] } {
  const counts = new Map<string, number>();
  let out = text;
  for (const p of SECRET_PATTERNS) {
    p.regex.lastIndex = 0;
    out = out.replace(p.regex, (...args: unknown[]) => {
      counts.set(p.type, (counts.get(p.type) ?? 0) + 1);
      const end = args.findIndex((a, i) => i > 0 && typeof a === "number");
      return p.mask(args.slice(1, end).map((g) => (typeof g === "string" ? g : "")));
    });
  }
  return { text: out, findings: [...counts].map(([type, count]) => ({ type, count })) };
}

const PIECES = [
  ...API_KEY_SHAPES.map((k) => k.prefix),
  "AKIA", "ASIA", "ghp_", "gho_", "github_pat_", "eyJ", ".eyJ", "Bearer", "bearer ", "BEARER\t",
  "password", "Passwd", "pwd", "passphrase", "pass", "api_key", "api-key", "apikey", "secret_key", "client-secret",
  "access_token", "refresh_token", "auth-token", "security_token", "session-token", "aws_secret_access_key",
  "token", "key", "secret", "sig", "credential", "credentials", "x-api-key", "?key=", "&api_key=", "?token=", "&access_token=", "?sig=",
  "--", "-u", "--user", "--proxy-user", "--api-key", "--hf-token", " -u ", "--max-tokens",
  "-----BEGIN ", "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "PRIVATE KEY", "BLOCK",
  "://", "http://", "https://bob", "@", ":", "=", "?", "&", '"', "'", " ", "  ", "\n", "\r\n", "\t", "\\", "[", "]",
  "{", "}", ",", ";", "#", "/", ".", "_", "-", "~", "+",
  "[REDACTED:credential]", "[REDACTED:openai_key]", "[REDACTED:aws_access_key]",
  // Letters whose case mapping is not ASCII-to-ASCII: the Kelvin sign lower-cases to "k", "İ" to two code units.
  "\u212A", "\u212Aey", "İ", "ſ", "é", "ß", "Σ", "😀",
];

const alnumRun = fc.stringMatching(/^[A-Za-z0-9]{1,40}$/);
const pieceText = fc
  .array(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...PIECES) }, { weight: 3, arbitrary: alnumRun }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) }), { maxLength: 24 })
  .map((parts) => parts.join(""));
/** The same text with some characters' case flipped (the caseless patterns must still be found). */
const flipped = fc.tuple(pieceText, fc.array(fc.boolean(), { maxLength: 64 })).map(([text, flips]) =>
  Array.from(text, (ch, i) => (flips[i % Math.max(1, flips.length)] ? (ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase()) : ch)).join(""),
);

describe("fuzz: maskSecrets with its pre-checks masks what every pattern would", () => {
  test("pieces of secrets, random runs and case flips", () => {
    fc.assert(
      fc.property(fc.oneof(pieceText, flipped), (text) => {
        const expected = reference(text);
        expect(maskSecrets(text)).toEqual(expected);
        // Again: clean texts are remembered, and nothing else may be.
        expect(maskSecrets(text)).toEqual(expected);
      }),
      fuzzParams(4000),
    );
  });

  test("the known secrets of each kind, embedded in random text", () => {
    const secrets = [
      "sk-proj-Abc123def456GHI789jkl012MNO345pqr678STU901vwx",
      "Authorization: Bearer abcdefgh12345678",
      "AKIAIOSFODNN7EXAMPLE",
      "ghp_0123456789abcdefghijABCDEFGHIJ0123",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig",
      '{"password":"hunter2"}',
      "DB_PASSWORD=hunter22",
      "passphrase: correct horse",
      '{"passphrase": "battery staple"}',
      "pwd=x1",
      "client_secret: Zm9vYmFyYmF6cXV4MTIz",
      "--api-key 0123456789abcdef",
      "?key=abcdefgh12345&alt=sse",
      "&access_token=0123456789abc",
      "https://bob:s3cret@proxy.local",
      "curl -u bob:pw https://h/",
      "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----",
    ];
    fc.assert(
      fc.property(fc.constantFrom(...secrets), pieceText, pieceText, (secret, before, after) => {
        const text = `${before}${secret}${after}`;
        expect(maskSecrets(text)).toEqual(reference(text));
      }),
      fuzzParams(2000),
    );
  });
});

test("a long text holding a key is masked every time it is seen (only clean texts are remembered)", () => {
  const history = `${"Earlier turn of the conversation, re-sent with every call. ".repeat(5)}export OPENAI_API_KEY=sk-proj-Abc123def456GHI789jkl012MNO345`;
  for (let i = 0; i < 3; i++) {
    const out = maskSecrets(history.slice(0)); // a new string each time, as parsed from each request
    expect(out.text).not.toContain("sk-proj-Abc123");
    expect(out.findings).toEqual([{ type: "openai_key", count: 1 }]);
  }
});

test("the pre-checks clear ordinary text without findings, and the same text again from the cache", () => {
  const text = "Summarise the changes; the token count and the API key rotation are in the docs. ".repeat(4);
  expect(maskSecrets(text)).toEqual({ text, findings: [] });
  expect(maskSecrets(text)).toEqual(reference(text));
});
