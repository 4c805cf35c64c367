// The split roles with eBPF: `oisp sensor` (the decoding side) and `oisp redirect --mode ebpf --pid <this
// test>` (the capture role) in one data directory. An agent-shaped Python run's process.exec and file.write
// reach the sensor over the IPC link (activity frames, proto 3) and are stored beside the call.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { directClientEnv } from "../support/ebpf-harness.ts";
import { ebpfSkipReason } from "../support/ebpf.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { readEvents, runOisp, tempHome, waitFor, type OispProcess } from "../support/oisp-process.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";
import { startTlsUpstream, type TlsUpstream } from "../support/upstream.ts";

type Ev = { event_id: string; event_type: string; process?: { pid?: number; ppid?: number; name?: string }; data: any; related_events?: Array<{ event_id: string }> };

let home: string;
let upstream: TlsUpstream;
let sensor: OispProcess;
let redirect: OispProcess;
let addr: string;
let caFile: string;

beforeAll(async () => {
  if (ebpfSkipReason) return;
  home = tempHome("oisp-ebpf-split-");
  addr = `127.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
  upstream = await startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler(), listen: { host: addr, port: 443 } });
  caFile = path.join(home, "upstream-ca.pem");
  fs.writeFileSync(caFile, upstream.caPem);
  sensor = runOisp(["sensor", "--db", path.join(home, "events.db"), "--redaction", "full"], { home });
  await waitFor("sensor socket", () => {
    if (sensor.proc.exitCode !== null) throw new Error(`sensor exited: ${sensor.output()}`);
    return fs.existsSync(path.join(home, "run", "oisp.sock")) ? true : undefined;
  });
  redirect = runOisp(["redirect", "--mode", "ebpf", "--pid", String(process.pid)], { home });
  await waitFor(
    "redirect --mode ebpf to attach its probes",
    () => {
      if (redirect.proc.exitCode !== null) throw new Error(`redirect exited: ${redirect.output()}`);
      return redirect.output().includes("Capturing TLS plaintext with eBPF") ? true : undefined;
    },
    60_000,
  );
  // connected to the sensor: its status snapshot (rewritten every 2 s) says so
  const status = path.join(home, "run", "redirect-status.json");
  await waitFor("the redirector to reach the sensor", () => (fs.existsSync(status) && JSON.parse(fs.readFileSync(status, "utf8")).tap?.stats?.connected ? true : undefined), 30_000);
}, 120_000);

afterAll(async () => {
  await redirect?.stop();
  await sensor?.stop();
  await upstream?.close();
});

describe.skipIf(!!ebpfSkipReason)("oisp redirect --mode ebpf + oisp sensor", () => {
  test("process.exec and file.write cross the IPC link to the sensor's store", async () => {
    const out = path.join(home, "split-output.txt");
    const script = `
import json, subprocess, urllib.request
req = urllib.request.Request("https://api.openai.com/v1/chat/completions", data=json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode(), headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test-split"})
urllib.request.urlopen(req).read()
subprocess.run(["sh", "-c", "echo split > ${out}"], check=True)
`;
    const py = Bun.spawn(["python3", "-c", script], { env: { ...process.env, ...directClientEnv(["api.openai.com"], addr, caFile) }, stderr: "pipe" });
    expect(await py.exited, await new Response(py.stderr).text()).toBe(0);
    const { exec, write, response } = await waitFor(
      "the call, the exec and the write in the sensor's store",
      () => {
        const all = readEvents(path.join(home, "events.db")) as unknown as Ev[];
        const response = all.find((e) => e.event_type === "ai.response" && e.process?.pid === py.pid);
        const exec = all.find((e) => e.event_type === "process.exec" && e.process?.ppid === py.pid);
        const write = all.find((e) => e.event_type === "file.write" && e.data.path === out);
        return response && exec && write ? { response, exec, write } : undefined;
      },
      30_000,
    );
    expect(exec.data.args).toEqual(["sh", "-c", `echo split > ${out}`]);
    expect(exec.related_events?.[0]?.event_id).toBe(response.event_id);
    expect(write.data).toMatchObject({ bytes_written: 6, content_preview: "split\n" });
    for (const e of [exec, write]) validateOispEvent(e);
  }, 60_000);
});
