// SensorPipeline.awaitingResponses: the sensor Worker commits a batch at once only when no call waits for its
// response (outputs.ts commitIfQuiet); a request seen, its response not yet, must say so until it comes.
import { expect, test } from "bun:test";
import type { ConnMeta } from "../../src/tap/types.ts";
import { SensorPipeline } from "../../src/sensor/pipeline.ts";
import { chatCompletionJson, jsonResponse, openaiRequest } from "./decode-fixtures.ts";

const enc = new TextEncoder();

test("a request without its response is awaited; the response, or the connection's end, settles it", () => {
  const p = new SensorPipeline({ redaction: "safe", collectorVersion: "test", outputs: [{ write: () => {} }], log: () => {} });
  const meta = (connId: string): ConnMeta => ({ connId, startedAt: 1_766_412_616_000, client: { ip: "127.0.0.1", port: 50000 }, server: { ip: "127.0.0.1", port: 443 }, host: "api.openai.com", sni: "api.openai.com", mode: "mitm", captureMethod: "mitm_proxy" });
  expect(p.awaitingResponses()).toBe(false);
  p.open(meta("a"));
  p.open(meta("b"));
  p.data("a", "c2s", enc.encode(openaiRequest()), 1);
  expect(p.awaitingResponses()).toBe(true);
  p.data("a", "s2c", enc.encode(jsonResponse(chatCompletionJson)), 2);
  expect(p.awaitingResponses()).toBe(false);
  p.data("b", "c2s", enc.encode(openaiRequest()), 3);
  expect(p.awaitingResponses()).toBe(true);
  p.close("b", 4, "client went away");
  expect(p.awaitingResponses()).toBe(false);
});
