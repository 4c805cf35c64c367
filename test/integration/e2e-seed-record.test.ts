// The seed's command spellings, through the real binary: `oisp record [--output F] [--web] [--verbose]`
// (the seed's `oisp-sensor record`) runs capture like `oisp up`, `--redaction-mode` is `--redaction`,
// --output creates its folder, and words the command does not take are an error, not ignored.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { eventsOfPid, ofType, runCurl, startE2e, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { runOisp, runOispOnce, tempHome, waitFor } from "../support/oisp-process.ts";

let h: E2eHarness;
let jsonl: string;
beforeAll(async () => {
  jsonl = path.join(tempHome("oisp-record-out-"), "Documents", "OISP", "events.jsonl");
  h = await startE2e({
    command: "record",
    hosts: ["api.openai.com"],
    handler: fakeProviderHandler(),
    redaction: null,
    args: ["--output", jsonl, "--redaction-mode", "minimal", "--verbose"],
  });
});
afterAll(async () => {
  await h?.close();
});

test("oisp record --output F --redaction-mode minimal --verbose: captured, minimal, JSONL in a new folder", async () => {
  const r = await runCurl(["--proxy", h.proxyUrl, "--cacert", h.caFile, "https://api.openai.com/v1/chat/completions", "-H", "Authorization: Bearer sk-test0123456789abcdefghijkl", "-H", "content-type: application/json", "-d", JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "record me" }] })]);
  expect(r.code).toBe(0);
  const events = await eventsOfPid(h.dbPath, r.pid);
  const req = ofType(events, "ai.request")[0] as AnyEvent;
  expect(req.confidence.redaction_profile).toBe("minimal");
  expect(req.data.messages).toBeUndefined();
  await waitFor("the JSONL output", () => (fs.existsSync(jsonl) && fs.readFileSync(jsonl, "utf8").includes(req.event_id) ? true : undefined));
  expect(h.oisp.output()).toContain("api.openai.com"); // --verbose logs every connection
});

test("extra words are an error naming the word, for every command that takes none", async () => {
  const home = tempHome("oisp-extra-");
  for (const argv of [["up", "--listen", "127.0.0.1:0", "now"], ["record", "fast"], ["status", "please"], ["sensor", "--db", "x.db", "extra"], ["redirect", "--mode", "proxy", "more"]]) {
    const r = await runOispOnce(argv, { home });
    expect(r.code).toBe(2);
    expect(r.output).toContain(`unexpected argument "${argv.at(-1)}"`);
  }
});

test("oisp unpin with nothing running says so (exit 3); with oisp record running it asks the proxy", async () => {
  const idle = await runOispOnce(["unpin", "api.openai.com"], { home: tempHome("oisp-unpin-idle-") });
  expect(idle.code).toBe(3);
  expect(idle.output).toContain("no capture is running");
  const running = await runOispOnce(["unpin", "api.openai.com"], { home: h.oisp.home });
  expect(running.code).toBe(0);
  expect(running.output).toContain("asked the running proxy");
});

test("settings.json AutoStartCapture: oisp sensor acts on it at start (here: says capture is oisp up in proxy mode)", async () => {
  const home = tempHome("oisp-autostart-");
  fs.writeFileSync(path.join(home, "settings.json"), JSON.stringify({ AutoStartCapture: true, ProcessFilter: "" }));
  const sensor = runOisp(["sensor", "--db", path.join(home, "e.db")], { home });
  try {
    await waitFor("the AutoStartCapture line", () => (sensor.output().includes("AutoStartCapture: On this OS capture runs in proxy mode") ? true : undefined));
  } finally {
    await sensor.stop();
  }
});
