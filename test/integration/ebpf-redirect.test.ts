// `oisp redirect --mode ebpf` → `oisp sensor` over the IPC socket (the elevated capture role and the
// decoding role apart), and a TLS library that appears after capture started, visible only inside the
// client's own mount namespace (as in a container): found through /proc/PID/root and probed without restart.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ebpfSkipReason } from "../support/ebpf.ts";
import { directClientEnv, listenOnRandomLoopback } from "../support/ebpf-harness.ts";
import { eventsOfPid, ofType, runCurl } from "../support/e2e-harness.ts";
import { FIXED, fakeProviderHandler } from "../support/fake-providers.ts";
import { runOisp, runOispOnce, tempHome, waitFor, type OispProcess } from "../support/oisp-process.ts";
import { startTlsUpstream, type TlsUpstream } from "../support/upstream.ts";

const KEY = "sk-proj-EbpfRedirectKey0123456789SECRET";
const home = tempHome("oisp-ebpf-redirect-");
const dbPath = path.join(home, "events.db");
let upstream: TlsUpstream;
let addr: string;
let caFile: string;
let sensor: OispProcess;
let redirect: OispProcess;

beforeAll(async () => {
  if (ebpfSkipReason) return;
  ({ addr, upstream } = await listenOnRandomLoopback((host) => startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler(), listen: { host, port: 443 } })));
  caFile = path.join(home, "upstream-ca.pem");
  fs.writeFileSync(caFile, upstream.caPem);
  sensor = runOisp(["sensor", "--db", dbPath, "--redaction", "full"], { home });
  await waitFor("sensor socket", () => (fs.existsSync(path.join(home, "run", "oisp.sock")) ? true : undefined));
  redirect = runOisp(["redirect", "--mode", "ebpf", "--pid", String(process.pid)], { home });
  await waitFor("the eBPF redirector", () => (redirect.output().includes("Capturing TLS plaintext with eBPF") ? true : undefined), 60_000);
});
afterAll(async () => {
  await redirect?.stop();
  await sensor?.stop();
  await upstream?.close();
});

const body = (content: string) => JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }] });

test.skipIf(!!ebpfSkipReason)("redirect --mode ebpf sends to the user's sensor over IPC", async () => {
  const run = await runCurl(["--resolve", `api.openai.com:443:${addr}`, "--cacert", caFile, "https://api.openai.com/v1/chat/completions", "-H", `authorization: Bearer ${KEY}`, "-H", "content-type: application/json", "-d", body("through the socket")]);
  expect(run.code).toBe(0);
  const events = await eventsOfPid(dbPath, run.pid);
  const [req] = ofType(events, "ai.request");
  expect(req!.data.messages[0].content).toBe("through the socket");
  expect(req!.source).toMatchObject({ capture_method: "ebpf_uprobe" });
  const { output } = await runOispOnce(["status", "--json"], { home });
  const status = JSON.parse(output);
  expect(status.redirector.snapshot.roles).toEqual(["redirect", "ebpf"]);
  expect(status.redirector.snapshot.ebpf.attached.length).toBeGreaterThan(0);
});

test.skipIf(!!ebpfSkipReason)("a libssl that appears later, only inside the client's mount namespace, is probed without restart", async () => {
  const real = fs.realpathSync("/usr/lib/x86_64-linux-gnu/libssl.so.3");
  const copyDir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-libssl-copy-"));
  fs.copyFileSync(real, path.join(copyDir, "libssl.so.3"));
  // Empty on the host; the copy is mounted there only inside the client's namespace.
  const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-libssl-ns-"));
  const libInNs = path.join(mountPoint, "libssl.so.3");
  const script = `import json, time, ssl, urllib.request
time.sleep(4)  # the rescans 0.5 s and 2 s after this process's exec find the library imported above
req = urllib.request.Request("https://api.openai.com/v1/chat/completions", data=${JSON.stringify(body("from a private libssl"))}.encode(), headers={"authorization": "Bearer ${KEY}", "content-type": "application/json"})
print(json.load(urllib.request.urlopen(req))["id"])`;
  const proc = Bun.spawn(["unshare", "-m", "--propagation", "private", "sh", "-c", `mount --bind "$0" "$1" && LD_LIBRARY_PATH="$1" exec python3 -c "$2"`, copyDir, mountPoint, script], {
    env: { ...process.env, ...directClientEnv(["api.openai.com"], addr, caFile) },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect({ code, err }).toEqual({ code: 0, err: "" });
  expect(out.trim()).toBe(FIXED.openaiChatId);
  expect(fs.existsSync(libInNs)).toBe(false); // not visible from here
  const events = await eventsOfPid(dbPath, proc.pid);
  expect(ofType(events, "ai.request")[0]!.data.messages[0].content).toBe("from a private libssl");
  expect(redirect.output()).toContain(`TLS probes on ${libInNs}`);
});
