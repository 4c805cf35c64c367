// ProcessFilter from settings.json, end to end through the real `oisp up`: with ProcessFilter
// ["CURL.EXE"] (a Windows-style name; matching ignores case and ".exe"), a call made by curl is recorded
// and the same call made by another process (bun) is relayed but not recorded.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { runCurl } from "../support/e2e-harness.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { freePort, readEvents, runOisp, tempHome, waitFor, waitForPort, type OispProcess } from "../support/oisp-process.ts";
import { startTlsUpstream, type TlsUpstream } from "../support/upstream.ts";

let home = "";
let oisp: OispProcess;
let upstream: TlsUpstream;
let proxyUrl = "";
const url = "https://api.openai.com/v1/chat/completions";
const body = (who: string) => JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `from ${who}` }] });

beforeAll(async () => {
  home = tempHome("oisp-process-filter-");
  fs.writeFileSync(path.join(home, "settings.json"), JSON.stringify({ ProcessFilter: ["CURL.EXE"] }));
  upstream = await startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler() });
  fs.writeFileSync(path.join(home, "upstream-ca.pem"), upstream.caPem);
  const port = await freePort();
  proxyUrl = `http://127.0.0.1:${port}`;
  oisp = runOisp(
    ["up", "--listen", `127.0.0.1:${port}`, "--upstream-ca", path.join(home, "upstream-ca.pem"),
      "--resolve", `api.openai.com:443:127.0.0.1:${upstream.port}`, "--db", path.join(home, "events.db"), "--redaction", "full"],
    { home },
  );
  await waitForPort(port, oisp);
  await waitFor("CA file", () => (fs.existsSync(path.join(home, "ca", "oisp-ca.pem")) ? true : undefined));
}, 30_000);

afterAll(async () => {
  if (oisp) expect(await oisp.stop()).toBe(0);
  await upstream?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

test("ProcessFilter: curl's call is recorded, another process's identical call is relayed but not recorded", async () => {
  const ca = path.join(home, "ca", "oisp-ca.pem");
  // The other process first: its events, had they been made, would be in the store before curl's.
  const script = `const r = await fetch(${JSON.stringify(url)}, { method: "POST", body: process.argv[1], headers: { "content-type": "application/json", authorization: "Bearer sk-test-other" }, proxy: ${JSON.stringify(proxyUrl)}, tls: { ca: await Bun.file(${JSON.stringify(ca)}).text() } }); console.log(r.status, await r.text());`;
  const other = Bun.spawn([process.execPath, "-e", script, body("bun")], { stdout: "pipe", stderr: "pipe", env: { ...process.env, HTTPS_PROXY: "", https_proxy: "" } });
  const [otherOut, otherErr, otherCode] = await Promise.all([new Response(other.stdout).text(), new Response(other.stderr).text(), other.exited]);
  expect(otherErr).toBe("");
  expect(otherCode).toBe(0);
  expect(otherOut).toStartWith("200 ");
  expect(JSON.parse(otherOut.slice(4))).toMatchObject({ object: "chat.completion" });

  const curl = await runCurl(["--max-time", "10", "--proxy", proxyUrl, "--cacert", ca, url, "-H", "content-type: application/json", "-H", "authorization: Bearer sk-test-curl", "-d", body("curl")]);
  expect(curl.err).toBe("");
  expect(JSON.parse(curl.out)).toMatchObject({ object: "chat.completion" });

  const events = await waitFor("curl's ai.response", () => {
    const all = readEvents(path.join(home, "events.db"));
    return all.some((e) => e.event_type === "ai.response" && (e.process as { pid?: number })?.pid === curl.pid) ? all : undefined;
  });
  const req = events.find((e) => e.event_type === "ai.request") as any;
  expect(req.process).toMatchObject({ pid: curl.pid, name: "curl" });
  expect(req.data.messages[0].content).toBe("from curl");
  // Nothing at all from the other process, and nothing but curl's connection.
  expect(events.filter((e) => (e.process as { pid?: number })?.pid === other.pid)).toEqual([]);
  expect(new Set(events.map((e) => (e.process as { pid?: number })?.pid))).toEqual(new Set([curl.pid]));
  expect(JSON.stringify(events)).not.toContain("from bun");
}, 30_000);
