// The eBPF process source (ffi/bpf/proc.bpf.c + src/capture/ebpf/proc-*) on the real kernel, filtered in the
// kernel to this test's own process tree:
//  - an agent-shaped Python script calls the model over TLS, then runs `sh -c` that writes a file and writes
//    one itself: the events have the call's network.connect, process.exec of sh with python as its parent,
//    and the file.write of each, with path, size and content hash, valid OISP v0.1;
//  - a Bun client (BoringSSL: nothing for uprobes) is reported as a metadata-only network.connect and listed
//    as such, not silently missing;
//  - a process that made no AI call is not watched: its execs and writes are not reported;
//  - an exec right after a ClientHello, before user space has read it, is reported when the hello went to
//    an AI host (the kernel watched the process provisionally) and dropped when it did not.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ProcCapture } from "../../src/capture/ebpf/proc-capture.ts";
import type { OispEvent } from "../../src/events/schema.ts";
import { SensorPipeline } from "../../src/sensor/pipeline.ts";
import { ebpfSkipReason } from "../support/ebpf.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";
import { startTlsUpstream, type TlsUpstream } from "../support/upstream.ts";

const sha = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex").slice(0, 16)}`;

describe.skipIf(!!ebpfSkipReason)("eBPF process capture", () => {
  let up: TlsUpstream;
  let cap: ProcCapture;
  let dir: string;
  const events: OispEvent[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-ebpf-proc-"));
    up = await startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler() });
    fs.writeFileSync(path.join(dir, "ca.pem"), up.caPem);
    const pipeline = new SensorPipeline({ redaction: "full", collectorVersion: "test", outputs: [{ write: (e) => events.push(...e) }], log: () => {} });
    cap = await ProcCapture.start({ tap: pipeline, log: () => {}, scopeRoots: [process.pid], holdMs: 200 });
  }, 60_000);

  afterAll(async () => {
    await cap?.close();
    await up?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Waits until `pred` holds over the events (the worker wakes on data or every 250 ms; hellos are held 200 ms). */
  async function until<T>(what: string, pred: () => T | undefined, ms = 10_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${events.map((e) => `${e.event_type}:${e.process?.pid}`).join(", ")}`);
      await Bun.sleep(25);
    }
  }

  test("agent-shaped run: model call, then sh -c writing a file: connect, exec and writes with the right parentage", async () => {
    const shOut = path.join(dir, "tool-output.txt");
    const pyOut = path.join(dir, "notes.md");
    const script = `
import ssl, socket, subprocess, http.client, json
ctx = ssl.create_default_context(cafile=${JSON.stringify(path.join(dir, "ca.pem"))})
conn = http.client.HTTPSConnection("api.openai.com", ${up.port}, context=ctx)
conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", ${up.port})), server_hostname="api.openai.com")
conn.request("POST", "/v1/chat/completions", body=json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "list files"}]}), headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test"})
assert conn.getresponse().status == 200
subprocess.run(["sh", "-c", "echo done > ${shOut}"], check=True)
with open(${JSON.stringify(pyOut)}, "w") as f:
    f.write("# notes\\n")
    f.write("the tool ran\\n")
`;
    const py = Bun.spawn(["python3", "-c", script], { stderr: "pipe" });
    expect(await py.exited, await new Response(py.stderr).text()).toBe(0);

    const connect = await until("network.connect", () => events.find((e) => e.event_type === "network.connect" && e.process?.pid === py.pid));
    expect(connect.data).toMatchObject({ dest: { ip: "127.0.0.1", port: up.port, domain: "api.openai.com" }, tls: { sni: "api.openai.com" } });
    expect(connect.confidence.completeness).toBe("metadata_only");

    const exec = await until("process.exec of sh", () => events.find((e) => e.event_type === "process.exec" && e.process?.ppid === py.pid));
    expect(exec.process).toMatchObject({ ppid: py.pid, name: "sh", exe: "/usr/bin/sh" });
    expect(exec.data).toMatchObject({ exe: "/usr/bin/sh", args: ["sh", "-c", `echo done > ${shOut}`], is_shell: true });
    expect(exec.source).toMatchObject({ capture_method: "ebpf_tracepoint", capture_point: "sched_process_exec" });

    const shWrite = await until("sh's file.write", () => events.find((e) => e.event_type === "file.write" && (e.data as { path: string }).path === shOut));
    expect(shWrite.process?.pid).toBe(exec.process!.pid);
    expect(shWrite.data).toMatchObject({ bytes_written: 5, content_hash: sha("done\n"), content_preview: "done\n" });
    expect(shWrite.related_events).toEqual([{ event_id: exec.event_id, relationship: "caused_by" }]);

    const pyWrite = await until("python's file.write", () => events.find((e) => e.event_type === "file.write" && (e.data as { path: string }).path === pyOut));
    expect(pyWrite.process).toMatchObject({ pid: py.pid, name: "python3" });
    expect(pyWrite.data).toMatchObject({ bytes_written: 21, content_hash: sha("# notes\nthe tool ran\n") });
    expect(pyWrite.attrs?.writes).toBe(1); // Python buffers both f.write calls into one write(2)

    // the timeline order: call, exec, write
    expect(Date.parse(connect.ts)).toBeLessThan(Date.parse(exec.ts));
    expect(Date.parse(exec.ts)).toBeLessThanOrEqual(Date.parse(shWrite.ts));
    for (const e of [connect, exec, shWrite, pyWrite]) validateOispEvent(e);
  }, 30_000);

  test("a Bun client (TLS invisible to uprobes) is a metadata-only network.connect, listed for oisp status", async () => {
    const code = `await fetch("https://127.0.0.1:${up.port}/v1/models", { tls: { serverName: "api.openai.com", ca: ${JSON.stringify(up.caPem)} } }).then((r) => r.text());`;
    const bun = Bun.spawn([process.execPath, "-e", code], { stderr: "pipe" });
    expect(await bun.exited, await new Response(bun.stderr).text()).toBe(0);
    const connect = await until("the Bun client's network.connect", () => events.find((e) => e.event_type === "network.connect" && e.process?.pid === bun.pid));
    expect(connect.confidence.completeness).toBe("metadata_only");
    expect(connect.source).toMatchObject({ capture_method: "ebpf_tracepoint" });
    expect(connect.attrs).toMatchObject({ passthrough_reason: "tls_not_visible_to_uprobes" });
    expect(connect.data).toMatchObject({ dest: { port: up.port, domain: "api.openai.com" }, tls: { sni: "api.openai.com" } });
    validateOispEvent(connect);
    const listed = cap.stats().metadataOnly.find((p) => p.pid === bun.pid);
    expect(listed).toMatchObject({ hosts: ["api.openai.com"], connects: 1 });
  }, 30_000);

  /**
   * Python sends its ClientHello (non-blocking: no answer awaited) for `sni` and at once becomes sh writing
   * `out` (exec, no fork). Run with spawnSync: this thread, where ProcCapture reads hellos and watches, is
   * held until it exits, so user space reads the hello only after the exec (a loaded machine, made certain).
   * Returns the pid.
   */
  function helloThenExec(sni: string, out: string) {
    const script = `
import os, ssl, socket
ctx = ssl.create_default_context(cafile=${JSON.stringify(path.join(dir, "ca.pem"))})
t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", ${up.port})), server_hostname="${sni}", do_handshake_on_connect=False)
t.setblocking(False)
try:
    t.do_handshake()
except ssl.SSLError:
    pass
os.execv("/bin/sh", ["sh", "-c", "echo early > ${out}"])
`;
    const r = Bun.spawnSync(["python3", "-c", script], { stderr: "pipe" });
    expect(r.exitCode, r.stderr.toString()).toBe(0);
    return r.pid;
  }

  test("an exec right after an AI ClientHello, before user space read it, is reported", async () => {
    const out = path.join(dir, "early.txt");
    const pid = helloThenExec("api.openai.com", out);
    const exec = await until("process.exec of sh", () => events.find((e) => e.event_type === "process.exec" && e.process?.pid === pid));
    expect(exec.data).toMatchObject({ args: ["sh", "-c", `echo early > ${out}`] });
    const write = await until("sh's file.write", () => events.find((e) => e.event_type === "file.write" && (e.data as { path: string }).path === out));
    expect(write.data).toMatchObject({ bytes_written: 6, content_preview: "early\n" });
  }, 30_000);

  test("an exec right after a ClientHello to no AI host is dropped with the provisional watch", async () => {
    const quiet = path.join(dir, "not-ai.txt");
    const before = cap.stats().notAiDropped;
    const pid = helloThenExec("example.org", quiet);
    // an AI caller's exec after it: released in order, so the first one's would have been by then
    const later = helloThenExec("api.openai.com", path.join(dir, "later.txt"));
    await until("the later exec", () => events.find((e) => e.event_type === "process.exec" && e.process?.pid === later));
    expect(events.filter((e) => e.process?.pid === pid || e.process?.ppid === pid)).toEqual([]);
    expect(events.some((e) => e.event_type === "file.write" && (e.data as { path: string }).path === quiet)).toBe(false);
    // recorded (the kernel's provisional mark), then dropped: its exec and sh's write
    const dropped = cap.stats().notAiDropped - before;
    console.log(`provisionally watched, then dropped (no AI host): ${dropped} exec/write`);
    expect(dropped).toBeGreaterThan(0);
  }, 30_000);

  test("a process that made no AI call is not watched: its exec and writes are not reported", async () => {
    const marker = path.join(dir, "unwatched.txt");
    const sh = Bun.spawn(["sh", "-c", `echo quiet > ${marker}; /bin/true`]);
    expect(await sh.exited).toBe(0);
    // a watched process's activity after it proves the pipeline is live, then nothing of sh
    const ok = Bun.spawn(["python3", "-c", `import ssl,socket; s=socket.create_connection(("127.0.0.1", ${up.port})); c=ssl.create_default_context(cafile=${JSON.stringify(path.join(dir, "ca.pem"))}); t=c.wrap_socket(s, server_hostname="api.openai.com"); t.close()`]);
    expect(await ok.exited).toBe(0);
    await until("the later connect", () => events.find((e) => e.event_type === "network.connect" && e.process?.pid === ok.pid));
    expect(events.filter((e) => e.process?.pid === sh.pid || e.process?.ppid === sh.pid)).toEqual([]);
    expect(events.some((e) => e.event_type === "file.write" && (e.data as { path: string }).path === marker)).toBe(false);
  }, 30_000);
});
