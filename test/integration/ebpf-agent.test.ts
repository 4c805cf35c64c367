// The seed's picture of an agent through `oisp up --capture ebpf` (probes filtered in the kernel to this
// test's process tree, no proxy, no CA given to oisp): a Python script calls the model, then runs `sh -c`
// that writes a file. The store's timeline has the call (ai.request / ai.response read by the TLS probes),
// the process.exec of sh with python as its parent, caused by that call, and sh's file.write, caused by the
// exec. A Bun client (TLS the probes cannot read) is a metadata-only network.connect, and `oisp status`
// names it with the hint to use proxy mode.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startEbpfE2e, type EbpfHarness } from "../support/ebpf-harness.ts";
import { ebpfSkipReason } from "../support/ebpf.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { readEvents, runOispOnce, waitFor } from "../support/oisp-process.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

type Ev = { event_id: string; event_type: string; ts: string; process?: { pid?: number; ppid?: number; name?: string }; data: any; source: any; confidence: any; attrs?: any; related_events?: Array<{ event_id: string; relationship: string }> };

let h: EbpfHarness;
beforeAll(async () => {
  if (ebpfSkipReason) return;
  h = await startEbpfE2e({ hosts: ["api.openai.com"], handler: fakeProviderHandler() });
}, 90_000);
afterAll(async () => {
  await h?.close();
});

const events = () => readEvents(h.dbPath) as unknown as Ev[];

describe.skipIf(!!ebpfSkipReason)("agent-shaped run through oisp up --capture ebpf", () => {
  test("model call, then sh -c writing a file: call, process.exec and file.write with the right parentage", async () => {
    const out = path.join(h.home, "tool-output.txt");
    const script = `
import json, subprocess, urllib.request
req = urllib.request.Request("https://api.openai.com/v1/chat/completions", data=json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "write the file"}]}).encode(), headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test-agent"})
print(json.load(urllib.request.urlopen(req))["id"])
subprocess.run(["sh", "-c", "echo done > ${out}"], check=True)
`;
    const py = Bun.spawn(["python3", "-c", script], { env: { ...process.env, ...h.clientEnv() }, stderr: "pipe", stdout: "pipe" });
    expect(await py.exited, await new Response(py.stderr).text()).toBe(0);
    expect(fs.readFileSync(out, "utf8")).toBe("done\n");

    const found = await waitFor(
      "the call, the exec and the write in the store",
      () => {
        const all = events();
        const response = all.find((e) => e.event_type === "ai.response" && e.process?.pid === py.pid);
        const exec = all.find((e) => e.event_type === "process.exec" && e.process?.ppid === py.pid);
        const write = all.find((e) => e.event_type === "file.write" && e.data.path === out);
        return response && exec && write ? { all, response, exec, write } : undefined;
      },
      20_000,
    );
    const { response, exec, write } = found;
    const request = found.all.find((e) => e.event_type === "ai.request" && e.process?.pid === py.pid)!;
    expect(request.source.capture_method).toBe("ebpf_uprobe");
    expect(request.data.messages.map((m: any) => m.content)).toEqual(["write the file"]);
    expect(exec.process).toMatchObject({ ppid: py.pid, name: "sh" });
    expect(exec.data.args).toEqual(["sh", "-c", `echo done > ${out}`]);
    expect(exec.related_events).toEqual([{ event_id: response.event_id, relationship: "caused_by" }]);
    expect(write.process?.pid).toBe(exec.process!.pid);
    expect(write.data).toMatchObject({ bytes_written: 5, content_preview: "done\n" });
    expect(write.related_events).toEqual([{ event_id: exec.event_id, relationship: "caused_by" }]);
    // ordered as they happened: call, exec, write
    expect(Date.parse(request.ts)).toBeLessThan(Date.parse(exec.ts));
    expect(Date.parse(exec.ts)).toBeLessThanOrEqual(Date.parse(write.ts));
    for (const e of [request, response, exec, write]) validateOispEvent(e);
    // python's own call was read by the TLS probes: it is not also reported as metadata only
    await Bun.sleep(2000);
    expect(events().filter((e) => e.event_type === "network.connect" && e.process?.pid === py.pid && e.source.capture_method === "ebpf_tracepoint")).toEqual([]);
  }, 60_000);

  test("a Bun client is a metadata-only network.connect, and oisp status names it with the proxy hint", async () => {
    const code = `const r = await fetch("https://${h.addr}/v1/models", { tls: { serverName: "api.openai.com", ca: require("fs").readFileSync(${JSON.stringify(h.upstreamCaFile)}, "utf8") } }); await r.text();`;
    const bun = Bun.spawn([process.execPath, "-e", code], { stderr: "pipe" });
    expect(await bun.exited, await new Response(bun.stderr).text()).toBe(0);
    const connect = await waitFor("the Bun client's network.connect", () => events().find((e) => e.event_type === "network.connect" && e.process?.pid === bun.pid), 20_000);
    expect(connect.confidence.completeness).toBe("metadata_only");
    expect(connect.source).toMatchObject({ capture_method: "ebpf_tracepoint" });
    expect(connect.data).toMatchObject({ dest: { ip: h.addr, port: 443, domain: "api.openai.com" }, tls: { sni: "api.openai.com" } });
    expect(events().filter((e) => e.process?.pid === bun.pid && e.event_type.startsWith("ai."))).toEqual([]);
    validateOispEvent(connect);
    const status = await waitFor(
      "oisp status to list the Bun client",
      async () => {
        const r = await runOispOnce(["status"], { home: h.home });
        return r.output.includes(`pid ${bun.pid}`) ? r.output : undefined;
      },
      15_000,
    );
    expect(status).toMatch(new RegExp(`pid ${bun.pid}.*api\\.openai\\.com.*metadata only.*proxy mode`));
  }, 60_000);
});
