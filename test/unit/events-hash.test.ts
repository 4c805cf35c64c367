// contentHash remembers recent texts' hashes (conversation history is re-sent and re-hashed every call):
// whatever the order and however many texts pass, each answer is the SHA-256 of that text.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { contentHash } from "../../src/events/hash.ts";
import { conversationIdFrom } from "../../src/events/conversation.ts";
import { fuzzParams } from "../fault/fuzz-lib.ts";

const direct = (text: string) => `sha256:${createHash("sha256").update(text, "utf8").digest("hex").slice(0, 16)}`;

test("texts repeated, interleaved and new each get their own hash", () => {
  const pool = fc.constantFrom(
    "",
    "short",
    "Ünïcödé ✓ ".repeat(10),
    "a".repeat(63),
    "a".repeat(64),
    "b".repeat(65),
    "The system prompt, re-sent with every call of the conversation. ".repeat(3),
    "The system prompt, re-sent with every call of the conversation. ".repeat(3).replace(/.$/, "!"),
  );
  fc.assert(
    fc.property(fc.array(fc.oneof(pool, fc.string({ minLength: 60, maxLength: 300 })), { maxLength: 40 }), (texts) => {
      for (const t of texts) expect(contentHash(t.slice(0))).toBe(direct(t));
    }),
    fuzzParams(500),
  );
});

test("past the memo's bounds (entries and characters) hashes stay right", () => {
  const texts = Array.from({ length: 700 }, (_, i) => `${i}:`.padEnd(64 + (i % 5) * 4000, "x"));
  for (let round = 0; round < 2; round++) for (const t of texts) expect(contentHash(t)).toBe(direct(t));
});

// conversationIdFrom remembers the ids of recent openings (each turn re-sends the conversation's opening).
const directConversationId = (parts: string[]) => `conv_${createHash("sha256").update(parts.map((p) => `${p.length}:${p}`).join(""), "utf8").digest("hex").slice(0, 24)}`;

test("conversation ids of openings repeated, interleaved and new are each their own", () => {
  const part = fc.oneof(
    fc.constantFrom("heuristic", "42:/usr/bin/python3", "openai", "", "You are a careful reviewer. ".repeat(20), "Ünïcödé ✓"),
    fc.string({ maxLength: 300 }),
  );
  fc.assert(
    fc.property(fc.array(fc.array(part, { minLength: 1, maxLength: 5 }), { maxLength: 30 }), (openings) => {
      for (const parts of [...openings, ...openings]) expect(conversationIdFrom(parts.map((p) => p.slice(0)))).toBe(directConversationId(parts));
    }),
    fuzzParams(300),
  );
});

test("past the conversation memo's bounds (entries and characters) ids stay right", () => {
  const openings = Array.from({ length: 200 }, (_, i) => ["heuristic", `${i}`, "x".repeat((i % 7) * 9000)]);
  for (let round = 0; round < 2; round++) for (const parts of openings) expect(conversationIdFrom(parts)).toBe(directConversationId(parts));
});
