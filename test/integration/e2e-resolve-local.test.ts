// A local model server the user moved with --resolve (an Ollama really listening on another port) is still
// recognised by the address the client asked for: localhost:11434 is Ollama, wherever it was sent.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { eventsOfPid, ofType, startE2e, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { startFakeOllama, type PlainServer } from "../support/fake-providers-more.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

let h: E2eHarness;
let ollama: PlainServer;
beforeAll(async () => {
  ollama = await startFakeOllama(0); // any free port but 11434
  h = await startE2e({ hosts: ["api.openai.com"], resolve: { "localhost:11434": `127.0.0.1:${ollama.port}` } });
});
afterAll(async () => {
  await h?.close();
  await ollama?.close();
});

test("curl to localhost:11434 resolved to another port is an Ollama call", async () => {
  expect(ollama.port).not.toBe(11434);
  const body = JSON.stringify({ model: "llama3.2", stream: false, messages: [{ role: "user", content: "hi" }] });
  const curl = Bun.spawn(["curl", "-sS", "--proxy", h.proxyUrl, "http://localhost:11434/api/chat", "-H", "content-type: application/json", "-d", body], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(curl.stdout).text();
  expect(await curl.exited).toBe(0);
  expect(JSON.parse(out).done).toBe(true);
  const events = await eventsOfPid(h.dbPath, curl.pid);
  for (const e of events) validateOispEvent(e);
  const [req] = ofType(events, "ai.request") as [AnyEvent];
  expect(req.data.provider?.name).toBe("ollama");
  expect(req.data.model?.id).toBe("llama3.2");
  expect(req.data.provider).toEqual({ name: "ollama", endpoint: "http://localhost:11434/api/chat" });
  // Where the bytes really went is still recorded.
  const [connect] = ofType(events, "network.connect") as [AnyEvent];
  expect(connect.data.dest).toMatchObject({ domain: "localhost", port: ollama.port });
});
