// The pure pieces behind agent.tool_result and conversation_id: which tool messages are new, how a
// conversation is keyed, and the bounded memories the sensor keeps between exchanges.
import { describe, expect, test } from "bun:test";
import type { AiMessage } from "../../src/decode/providers/types.ts";
import { conversationIdFrom, conversationKey, freshToolResults } from "../../src/events/index.ts";
import { LruMap, ToolCallMemory } from "../../src/sensor/agent-links.ts";

describe("freshToolResults", () => {
  test("only the tool messages after the last assistant message are new", () => {
    const msgs: AiMessage[] = [
      { role: "user", content: "q" },
      { role: "assistant", toolCalls: [{ id: "a", name: "f", arguments: "{}" }] },
      { role: "tool", toolCallId: "a", content: "old" },
      { role: "assistant", toolCalls: [{ id: "b", name: "f", arguments: "{}" }, { id: "c", name: "g", arguments: "{}" }] },
      { role: "tool", toolCallId: "b", content: "new1" },
      { role: "user", content: "and also" },
      { role: "tool", toolCallId: "c", content: "new2" },
    ];
    expect(freshToolResults(msgs).map((r) => [r.index, r.message.content])).toEqual([[4, "new1"], [6, "new2"]]);
    expect(freshToolResults([{ role: "tool", toolCallId: "x", content: "only" }]).map((r) => r.index)).toEqual([0]);
    expect(freshToolResults([{ role: "user", content: "q" }, { role: "assistant", content: "a" }])).toEqual([]);
  });
});

describe("conversationKey", () => {
  const base = { scope: "42:/usr/bin/agent", provider: "openai", messages: [{ role: "system", content: "S" }, { role: "user", content: "first" }] as AiMessage[] };
  test("later turns (more history) keep the id; scope, provider, system prompt or first message change it", () => {
    const id = conversationKey(base)!;
    expect(id).toMatch(/^conv_[0-9a-f]{24}$/);
    expect(conversationKey({ ...base, messages: [...base.messages, { role: "assistant", content: "a" }, { role: "user", content: "second" }] })).toBe(id);
    expect(conversationKey({ ...base, scope: "43:/usr/bin/agent" })).not.toBe(id);
    expect(conversationKey({ ...base, provider: "anthropic" })).not.toBe(id);
    expect(conversationKey({ ...base, system: "other" })).not.toBe(id);
    expect(conversationKey({ ...base, messages: [{ role: "system", content: "S" }, { role: "user", content: "firsT" }] })).not.toBe(id);
  });
  test("no user message yet → no id; parts are length-prefixed so boundaries cannot collide", () => {
    expect(conversationKey({ ...base, messages: [{ role: "system", content: "S" }] })).toBeUndefined();
    expect(conversationIdFrom(["ab", "c"])).not.toBe(conversationIdFrom(["a", "bc"]));
  });
});

describe("LruMap and ToolCallMemory", () => {
  test("LruMap keeps the most recently used entries within its bound", () => {
    const m = new LruMap<string, number>(2);
    m.set("a", 1);
    m.set("b", 2);
    m.get("a");
    m.set("c", 3);
    expect([m.get("a"), m.get("b"), m.get("c"), m.size]).toEqual([1, undefined, 3, 2]);
  });

  test("calls are found by id anywhere, by name only within their process; results are reported once", () => {
    const mem = new ToolCallMemory(100);
    mem.remember("p1", { id: "call_1", name: "get_weather" }, "EV1", 1000);
    mem.remember("p1", { name: "lookup" }, "EV2", 2000);
    expect(mem.find("p2", { role: "tool", toolCallId: "call_1" })).toEqual({ eventId: "EV1", callId: "call_1", name: "get_weather", tsMs: 1000, by: "call_id" });
    expect(mem.find("p1", { role: "tool", name: "lookup" })).toEqual({ eventId: "EV2", callId: "EV2", name: "lookup", tsMs: 2000, by: "tool_name" });
    expect(mem.find("p2", { role: "tool", name: "lookup" })).toBeUndefined();
    expect(mem.find("p1", { role: "tool", toolCallId: "unknown" })).toBeUndefined();
    mem.consumed("p1", mem.find("p1", { role: "tool", name: "lookup" })!);
    expect(mem.find("p1", { role: "tool", name: "lookup" })).toBeUndefined();
    expect([mem.firstReport("p1", "call_1"), mem.firstReport("p1", "call_1"), mem.firstReport("p2", "call_1")]).toEqual([true, false, true]);
  });

  test("memory stays bounded under a flood of calls", () => {
    const mem = new ToolCallMemory(50);
    for (let i = 0; i < 1000; i++) mem.remember("p", { id: `c${i}`, name: "f" }, `E${i}`, i);
    expect(mem.find("p", { role: "tool", toolCallId: "c0" })).toBeUndefined();
    expect(mem.find("p", { role: "tool", toolCallId: "c999" })?.eventId).toBe("E999");
  });
});
