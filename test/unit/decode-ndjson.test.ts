// NDJSON (Ollama) and streamed JSON array (Gemini without alt=sse) parsers, split at every boundary.
import { describe, expect, test } from "bun:test";
import { JsonArrayStreamParser, type JsonArrayItem } from "../../src/decode/json-array-stream.ts";
import { NdjsonParser, type NdjsonItem } from "../../src/decode/ndjson.ts";

const enc = new TextEncoder();

function everySplit<T>(bytes: Uint8Array, make: () => { push(b: Uint8Array): T[]; end(): T[] }): T[] {
  const whole = (() => {
    const p = make();
    return [...p.push(bytes), ...p.end()];
  })();
  for (let at = 0; at <= bytes.length; at++) {
    const p = make();
    expect([...p.push(bytes.subarray(0, at)), ...p.push(bytes.subarray(at)), ...p.end()]).toEqual(whole);
  }
  const p = make();
  const bytewise: T[] = [];
  for (const b of bytes) bytewise.push(...p.push(Uint8Array.of(b)));
  expect([...bytewise, ...p.end()]).toEqual(whole);
  return whole;
}

describe("NdjsonParser", () => {
  test("Ollama /api/chat stream with a multi-byte character split anywhere", () => {
    const body = enc.encode(
      [
        '{"model":"llama3.2","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"Héllo"},"done":false}',
        '{"model":"llama3.2","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":" 世界"},"done":false}',
        "",
        '{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":26,"eval_count":2}',
      ].join("\n") + "\n",
    );
    const items = everySplit<NdjsonItem>(body, () => new NdjsonParser());
    expect(items.length).toBe(3);
    expect(items.map((i) => (i.type === "value" ? (i.value as { message: { content: string } }).message.content : "?"))).toEqual(["Héllo", " 世界", ""]);
  });

  test("CRLF, a last line without newline, a bad line in the middle", () => {
    const items = everySplit<NdjsonItem>(enc.encode('{"a":1}\r\nnot json\r\n{"b":2}'), () => new NdjsonParser());
    expect(items[0]).toEqual({ type: "value", value: { a: 1 } });
    expect(items[1]!.type).toBe("error");
    expect(items[2]).toEqual({ type: "value", value: { b: 2 } });
  });

  test("an over-long line is dropped once and the stream goes on", () => {
    const p = new NdjsonParser({ maxLineLength: 20 });
    const items = [...p.push(enc.encode(`{"x":"${"y".repeat(30)}"}\n`)), ...p.push(enc.encode('{"ok":true}\n')), ...p.end()];
    expect(items).toEqual([{ type: "error", message: "ndjson: line longer than 20 characters dropped" }, { type: "value", value: { ok: true } }]);
  });
});

describe("JsonArrayStreamParser", () => {
  const gemini = enc.encode(
    '[{\n  "candidates": [{"content": {"parts": [{"text": "Hel"}],"role": "model"}}],\n  "usageMetadata": {"promptTokenCount": 4}\n}\r\n,\r\n' +
      '{"candidates": [{"content": {"parts": [{"text": "lo, \\"world\\" ] } ["}],"role": "model"},"finishReason": "STOP"}],"usageMetadata": {"promptTokenCount": 4,"candidatesTokenCount": 3,"totalTokenCount": 7}}\r\n]',
  );

  test("Gemini streamGenerateContent array, brackets inside strings, split anywhere", () => {
    const items = everySplit<JsonArrayItem>(gemini, () => new JsonArrayStreamParser());
    expect(items.length).toBe(2);
    const texts = items.map((i) => (i.type === "value" ? (i.value as { candidates: Array<{ content: { parts: Array<{ text: string }> } }> }).candidates[0]!.content.parts[0]!.text : "?"));
    expect(texts).toEqual(["Hel", 'lo, "world" ] } [']);
    const p = new JsonArrayStreamParser();
    p.push(gemini);
    expect(p.complete).toBe(true);
  });

  test("scalars and nested arrays as elements; empty array", () => {
    expect(everySplit<JsonArrayItem>(enc.encode('[1, "a,b", [2,[3]], null ,true]'), () => new JsonArrayStreamParser()).map((i) => (i.type === "value" ? i.value : i))).toEqual([
      1,
      "a,b",
      [2, [3]],
      null,
      true,
    ]);
    expect(everySplit<JsonArrayItem>(enc.encode(" [ ] "), () => new JsonArrayStreamParser())).toEqual([]);
  });

  test("errors: not an array, cut body, bad element, trailing data, oversized element", () => {
    const run = (s: string, opts?: { maxElementLength: number }) => {
      const p = new JsonArrayStreamParser(opts);
      return [...p.push(enc.encode(s)), ...p.end()];
    };
    expect(run('{"error":{"code":400}}')).toEqual([{ type: "error", message: "json array: body does not start with [", fatal: true }]);
    expect(run('[{"a":1},{"b"')).toEqual([{ type: "value", value: { a: 1 } }, { type: "error", message: "json array: body ended before the closing bracket", fatal: true }]);
    expect(run("[{a:1},{\"b\":2}]").map((i) => i.type)).toEqual(["error", "value"]);
    expect(run("[1] x").map((i) => i.type)).toEqual(["value", "error"]);
    expect(run(`[{"x":"${"z".repeat(50)}"},{"ok":1}]`, { maxElementLength: 20 })).toEqual([
      { type: "error", message: "json array: element longer than 20 characters dropped", fatal: false },
      { type: "value", value: { ok: 1 } },
    ]);
  });
});
