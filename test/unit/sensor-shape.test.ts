// detectAiShape: which bodies to unknown hosts are AI calls, and which API they are read as.
import { expect, test } from "bun:test";
import type { HttpRequestRecord } from "../../src/decode/types.ts";
import { detectAiShape } from "../../src/sensor/shape.ts";

const req = (path: string, body: unknown, headers: Array<[string, string]> = [["content-type", "application/json"]], method = "POST"): HttpRequestRecord => ({
  method, path, host: "x.example", httpVersion: "HTTP/1.1", headers,
  body: new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body)), bodyTruncated: false, startTs: 0, endTs: 0,
});
const shape = (r: HttpRequestRecord) => {
  const s = detectAiShape(r, "x.example");
  return s && [s.match.apiFormat, s.parsePath ?? "(own path)"];
};

test("APIs by their fields and path", () => {
  expect(shape(req("/v1/chat/completions", { model: "m", messages: [] }))).toEqual(["openai", "(own path)"]);
  expect(shape(req("/llm", { model: "m", messages: [{ role: "user", content: "x" }] }))).toEqual(["openai", "/v1/chat/completions"]);
  expect(shape(req("/llm", { model: "m", system: "s", max_tokens: 9, messages: [{ role: "user", content: "x" }] }))).toEqual(["anthropic", "/v1/messages"]);
  expect(shape(req("/llm", { model: "m", messages: [] }, [["content-type", "application/json"], ["anthropic-version", "2023-06-01"]]))).toEqual(["anthropic", "/v1/messages"]);
  expect(shape(req("/proxy/v1/messages", { model: "m", messages: [] }))).toEqual(["anthropic", "(own path)"]);
  expect(shape(req("/gen", { model: "gemini-x", contents: [] }))).toEqual(["google", "/v1beta/models/gemini-x:generateContent"]);
  expect(shape(req("/gen/stream", { model: "g", contents: [] }))).toEqual(["google", "/v1beta/models/g:streamGenerateContent?alt=sse"]);
  expect(shape(req("/v1beta/models/g:generateContent", { model: "g", contents: [] }))).toEqual(["google", "(own path)"]);
  expect(shape(req("/ai", { model: "m", input: "hello" }))).toEqual(["openai", "/v1/responses"]);
  expect(shape(req("/embed", { model: "m", input: ["a", "b"] }))).toEqual(["openai", "/v1/embeddings"]);
  expect(shape(req("/complete", { model: "m", prompt: "once upon" }))).toEqual(["openai", "/v1/completions"]);
});

test("not AI calls: no model, no conversation field, not JSON, not POST, not a JSON object", () => {
  expect(shape(req("/x", { messages: [] }))).toBeUndefined();
  expect(shape(req("/x", { model: "", messages: [] }))).toBeUndefined();
  expect(shape(req("/x", { model: "T-800", color: "chrome" }))).toBeUndefined();
  expect(shape(req("/x", "model=m&messages=[]", [["content-type", "application/x-www-form-urlencoded"]]))).toBeUndefined();
  expect(shape(req("/x", { model: "m", messages: [] }, [["content-type", "application/json"]], "PUT"))).toBeUndefined();
  expect(shape(req("/x", [{ model: "m", messages: [] }]))).toBeUndefined();
  expect(shape(req("/x", "{not json"))).toBeUndefined();
});
