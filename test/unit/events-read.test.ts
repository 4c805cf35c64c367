// The one reader of OISP event JSON (src/events/read.ts) used by the exporters, analyze, the store's
// columns and the views: odd values read as absent, never throw, and the same field reads the same everywhere.
import { describe, expect, test } from "bun:test";
import { arr, at, count, endpointOf, isObj, modelIdOf, nonEmptyStr, num, obj, parseEventJson, requestIdOf, str, usageOf } from "../../src/events/read.ts";

describe("event reader", () => {
  test("narrowers: the wrong type is absent, never an exception", () => {
    for (const odd of [undefined, null, 1, "x", [], true]) {
      expect(isObj(odd)).toBe(false);
      expect(obj(odd)).toBeUndefined();
      expect(at(odd, "a", "b")).toBeUndefined();
    }
    expect(at({ a: { b: 2 } }, "a", "b")).toBe(2);
    expect([str(""), str("a"), str(1)]).toEqual(["", "a", undefined]);
    expect([nonEmptyStr(""), nonEmptyStr("a")]).toEqual([undefined, "a"]);
    expect([num(1.5), num(Number.NaN), num(Infinity), num("1")]).toEqual([1.5, undefined, undefined, undefined]);
    expect([count(3), count(-1), count(1.5), count(2 ** 60)]).toEqual([3, undefined, undefined, undefined]);
    expect([arr([1]), arr({})]).toEqual([[1], []]);
    expect([parseEventJson('{"a":1}'), parseEventJson("[1]"), parseEventJson("{")]).toEqual([{ a: 1 }, undefined, undefined]);
  });

  test("AI event fields", () => {
    const data = { request_id: "r1", model: { id: "gpt-4o" }, provider: { name: "openai", endpoint: "https://api.openai.com/v1/chat/completions" }, usage: { prompt_tokens: 3 } };
    expect([requestIdOf(data), modelIdOf(data), endpointOf(data), usageOf(data)]).toEqual(["r1", "gpt-4o", "https://api.openai.com/v1/chat/completions", { prompt_tokens: 3 }]);
    // A bare model string (older or foreign events) reads too; empty ids are absent; missing usage is {}.
    expect(modelIdOf({ model: "llama3" })).toBe("llama3");
    expect([requestIdOf({ request_id: "" }), modelIdOf({ model: { id: "" } }), endpointOf({ provider: "openai" }), usageOf({})]).toEqual([undefined, undefined, undefined, {}]);
    expect([requestIdOf("x"), modelIdOf(null), endpointOf(undefined)]).toEqual([undefined, undefined, undefined]);
  });
});
