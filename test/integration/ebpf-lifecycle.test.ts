// eBPF capture's lifecycle: `oisp status` reports the probes; SIGKILL of oisp in the middle of a stream
// leaves no BPF program behind (probes are file descriptors of the process) and the client's stream goes on
// untouched; a new `oisp up --capture ebpf` captures again.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import type http from "node:http";
import { listenOnRandomLoopback, startOispEbpf } from "../support/ebpf-harness.ts";
import { ebpfSkipReason } from "../support/ebpf.ts";
import { eventsOfPid, ofType, runCurl } from "../support/e2e-harness.ts";
import { fakeProviderHandler, startSse, type Json } from "../support/fake-providers.ts";
import { runOispOnce, tempHome, waitFor } from "../support/oisp-process.ts";
import { startTlsUpstream, type TlsUpstream } from "../support/upstream.ts";

const KEY = "sk-proj-EbpfLifecycleKey0123456789SECRET";

function slowStream(_req: http.IncomingMessage, res: http.ServerResponse, body: Json): boolean {
  if (body.model !== "slow") return false;
  const send = startSse(res);
  const base = { id: "chatcmpl-slow", object: "chat.completion.chunk", created: 1_732_000_000, model: "slow" };
  let i = 0;
  const tick = () => {
    if (i < 6) {
      send({ ...base, choices: [{ index: 0, delta: { content: `part${i++} ` }, finish_reason: null }] });
      setTimeout(tick, 300);
    } else {
      res.end("data: [DONE]\n\n");
    }
  };
  tick();
  return true;
}

let upstream: TlsUpstream;
let addr: string;
let caFile: string;
const home = tempHome("oisp-ebpf-life-");
const dbPath = path.join(home, "events.db");
beforeAll(async () => {
  if (ebpfSkipReason) return;
  ({ addr, upstream } = await listenOnRandomLoopback((host) => startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler({ extra: slowStream }), listen: { host, port: 443 } })));
  caFile = path.join(home, "upstream-ca.pem");
  fs.writeFileSync(caFile, upstream.caPem);
});
afterAll(async () => {
  await upstream?.close();
});

/** BPF program ids whose file descriptors `pid` holds (from /proc/PID/fdinfo). */
function progIds(pid: number): Set<number> {
  const ids = new Set<number>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const m = /^prog_id:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"));
      if (m) ids.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return ids;
}

function progExists(id: number): boolean {
  return Bun.spawnSync(["bpftool", "prog", "show", "id", String(id)], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
}

const curlArgs = (body: object) => ["--resolve", `api.openai.com:443:${addr}`, "--cacert", caFile, "https://api.openai.com/v1/chat/completions", "-H", `authorization: Bearer ${KEY}`, "-H", "content-type: application/json", "-d", JSON.stringify(body)];

test.skipIf(!!ebpfSkipReason)("status shows the probes; SIGKILL mid-stream leaves no probe; a restart captures again", async () => {
  const first = await startOispEbpf(home, dbPath, ["--redaction", "full"]);
  const oispPid = first.proc.pid;
  const status = await waitFor("a status snapshot with the eBPF section", async () => {
    const { code, output } = await runOispOnce(["status", "--json"], { home });
    const s = code === 0 ? JSON.parse(output) : undefined;
    return s?.sensor?.snapshot?.ebpf ? s : undefined;
  });
  expect(status.sensor.snapshot.roles).toEqual(["sensor", "ebpf"]);
  expect(status.sensor.snapshot.ebpf.attached.map((a: { path: string }) => a.path)).toContain("/usr/lib/x86_64-linux-gnu/libssl.so.3");
  expect(status.sensor.snapshot.ebpf).toMatchObject({ ring_drops: 0, lost_bytes: 0 });
  const text = await runOispOnce(["status"], { home });
  expect(text.output).toMatch(/eBPF\s+TLS probes on .*libssl\.so\.3.* records\/s · 0 ring-buffer drops · 0 B lost/);

  const ids = progIds(oispPid);
  expect(ids.size).toBeGreaterThanOrEqual(6);
  // A stream in flight when oisp dies: the client must not notice.
  const stream = Bun.spawn(["curl", "-sS", "-N", ...curlArgs({ model: "slow", stream: true, messages: [{ role: "user", content: "slow one" }] })], { stdout: "pipe", stderr: "pipe" });
  const reader = stream.stdout.getReader();
  let seen = "";
  while (!seen.includes("part1")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  first.proc.kill("SIGKILL");
  await first.proc.exited;
  await waitFor("every BPF program of the killed oisp to be gone", () => ([...ids].some(progExists) ? undefined : true), 10_000);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  expect(await stream.exited).toBe(0);
  expect(seen).toContain("part5");
  expect(seen).toContain("[DONE]");

  const second = await startOispEbpf(home, dbPath, ["--redaction", "full"]);
  try {
    const run = await runCurl(curlArgs({ model: "gpt-4o-mini", messages: [{ role: "user", content: "after the restart" }] }));
    expect(run.code).toBe(0);
    const events = await eventsOfPid(dbPath, run.pid);
    expect(ofType(events, "ai.request")[0]!.data.messages[0].content).toBe("after the restart");
  } finally {
    await second.stop();
  }
});
