// Safe mode and command lines, end to end through `oisp up`: a client whose command line carries API keys
// of every shape (gsk_, xai-, hf_, --api-key <hex>, --aws-secret-access-key <secret>) and a prompt
// (`-d '{"messages":…}'`). Neither the keys nor the prompt may reach SQLite, the JSONL output or the
// dashboard's export; the executable, the flags and the script stay readable.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { openWebQueries } from "../../src/store/queries.ts";
import { exportResponse } from "../../src/web/export.ts";
import { eventsOfPid, ofType, runClientScript, startE2e, storedBytes, type AnyEvent, type E2eHarness } from "../support/e2e-harness.ts";
import { anyChatCompletionsPath, fakeProviderHandler } from "../support/fake-providers.ts";
import { waitFor } from "../support/oisp-process.ts";

const KEYS = {
  groq: "gsk_Wq3fJ9vLr2Xk8TzN4bYc7HdP1sQm6AeU0oIi5GgVhBnKjRlMt",
  xai: "xai-Zr4Tq9LmW2vXc7Np3Hs8Kd1Fb6Gj0YyUe5AoPl2Kk9Jj8Hh7",
  hf: "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
  hex: "3f9a0c7e1b2d4f6a8c0e2b4d6f8a0c1e",
  aws: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
const PROMPT = "the purple elephant plan for Tuesday";

let h: E2eHarness;
let jsonl: string;
let script: string;
beforeAll(async () => {
  const handler = fakeProviderHandler({ extra: anyChatCompletionsPath });
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? "/tmp", "oisp-safe-cmd-"));
  // A folder that does not exist yet: --output creates it.
  jsonl = path.join(dir, "out", "events.jsonl");
  // The client: posts its last argument to its first through the proxy; every other word is only on its command line.
  script = path.join(dir, "ask.ts");
  fs.writeFileSync(
    script,
    `const url = process.argv[2]!; const body = process.argv.at(-1)!;
const res = await fetch(url, { method: "POST", body, headers: { "content-type": "application/json", authorization: "Bearer ${KEYS.groq}" },
  proxy: process.env.OISP_PROXY, tls: { ca: await Bun.file(process.env.OISP_CA_FILE!).text() } } as RequestInit);
console.log(JSON.stringify({ status: res.status }));\n`,
  );
  h = await startE2e({ hosts: ["api.groq.com"], handler, redaction: "safe", args: ["--output", jsonl] });
});
afterAll(async () => {
  await h?.close();
});

test("safe mode: keys and prompt in the command line reach neither SQLite, JSONL nor the export; executable and flags stay", async () => {
  const body = JSON.stringify({ model: "llama-3.3-70b-versatile", messages: [{ role: "user", content: PROMPT }] });
  const args = ["https://api.groq.com/openai/v1/chat/completions", "--api-key", KEYS.hex, "--aws-secret-access-key", KEYS.aws, "--keys", KEYS.xai, KEYS.hf, "-d", body];
  const run = await runClientScript(script, args, { OISP_PROXY: h.proxyUrl, OISP_CA_FILE: h.caFile });
  expect(run.result.status).toBe(200);
  const events = await eventsOfPid(h.dbPath, run.pid);
  const req = ofType(events, "ai.request")[0] as AnyEvent;
  const cmdline: string = req.process.cmdline;
  // Readable: what ran, with which flags; keys masked by kind.
  expect(cmdline).toStartWith(`${process.execPath} ${script} https://api.groq.com/openai/v1/chat/completions --api-key [REDACTED:credential] --aws-secret-access-key [REDACTED:credential] --keys [REDACTED:xai_key] [REDACTED:huggingface_token] -d [sha256:`);
  expect(req.attrs.redaction_findings).toEqual(expect.arrayContaining([{ type: "credential", count: 2 }, { type: "xai_key", count: 1 }, { type: "huggingface_token", count: 1 }]));
  expect(req.data.auth.key_prefix).toBe("gsk_");

  // The JSONL sink writes in batches: wait for this request's line.
  await waitFor("the request in the JSONL output", () => (fs.existsSync(jsonl) && fs.readFileSync(jsonl, "utf8").includes(req.event_id) ? true : undefined));
  const q = openWebQueries(h.dbPath);
  let exported: string;
  try {
    exported = await exportResponse(q, {}, "jsonl").text();
  } finally {
    q.close();
  }
  const places = { sqlite: storedBytes(h.dbPath), jsonl: fs.readFileSync(jsonl, "latin1"), export: exported };
  expect(places.jsonl).toContain(req.event_id);
  expect(places.export).toContain(req.event_id);
  for (const [where, text] of Object.entries(places)) {
    for (const secret of [...Object.values(KEYS), "wJalrXUtnFEMI", PROMPT, "purple elephant"]) {
      if (text.includes(secret)) throw new Error(`${where} holds ${secret}`);
    }
  }
});
