// When the ring buffer overflows, loss is counted and marked, never silent: with a deliberately tiny ring
// (64 KiB) a 1 MB request written in one SSL_write cannot all fit; the kernel counts the dropped records and
// bytes, and the sensor records the call with a failed response naming the bytes lost ("request truncated:
// capture lost N bytes ..."), while the client gets its whole answer. Capture runs in this process (the
// real capture and SensorPipeline), filtered in the kernel to this process tree.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startEbpfCapture } from "../../src/capture/ebpf/tls-capture.ts";
import type { OispEvent } from "../../src/events/schema.ts";
import { SensorPipeline } from "../../src/sensor/pipeline.ts";
import { directClientEnv, listenOnRandomLoopback } from "../support/ebpf-harness.ts";
import { ebpfSkipReason } from "../support/ebpf.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { tempHome, waitFor } from "../support/oisp-process.ts";
import { startTlsUpstream, type TlsUpstream } from "../support/upstream.ts";
import fs from "node:fs";
import path from "node:path";

let upstream: TlsUpstream;
let addr: string;
const home = tempHome("oisp-ebpf-loss-");
beforeAll(async () => {
  if (ebpfSkipReason) return;
  ({ addr, upstream } = await listenOnRandomLoopback((host) => startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler(), listen: { host, port: 443 } })));
  fs.writeFileSync(path.join(home, "ca.pem"), upstream.caPem);
});
afterAll(async () => {
  await upstream?.close();
});

test.skipIf(!!ebpfSkipReason)("a ring buffer too small for a 1 MB request: drops counted, the call marked with the bytes lost", async () => {
  const events: OispEvent[] = [];
  const pipeline = new SensorPipeline({ redaction: "full", collectorVersion: "test", outputs: [{ write: (e) => events.push(...e) }], log: () => {} });
  const capture = await startEbpfCapture({ tap: pipeline, log: () => {}, pids: [process.pid], ringBytes: 64 * 1024, libDir: path.join(home, "lib") });
  try {
    const size = 1_000_000;
    const script = `import json, urllib.request
req = urllib.request.Request("https://api.openai.com/v1/chat/completions", data=json.dumps({"model": "echo-model", "messages": [{"role": "user", "content": "y" * ${size}}]}).encode(), headers={"authorization": "Bearer sk-proj-LossTest0123456789abcdefSECRET", "content-type": "application/json", "accept-encoding": "identity"})
print(len(json.load(urllib.request.urlopen(req))["choices"][0]["message"]["content"]))`;
    const proc = Bun.spawn(["python3", "-c", script], { env: { ...process.env, ...directClientEnv(["api.openai.com"], addr, path.join(home, "ca.pem")) }, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(Number(out)).toBe(size + 6); // the client got everything: capture never slows or breaks it
    const stats = await waitFor("the connection to end", () => {
      const s = capture.stats();
      return s.streams.activeSessions === 0 && s.streams.sessions > 0 ? s : undefined;
    });
    expect(stats.ringDrops).toBeGreaterThan(0);
    expect(stats.lostBytes).toBeGreaterThan(0);
    expect(stats.streams.gaps).toBe(1);
    const lost = /capture lost (\d+) bytes/;
    const res = events.find((e) => e.event_type === "ai.response") as OispEvent & { data: { success: boolean; error?: { message: string } } };
    expect(res.data.success).toBe(false);
    expect(res.data.error?.message).toMatch(lost);
    expect(Number(lost.exec(res.data.error!.message)![1])).toBe(stats.streams.lostBytes);
  } finally {
    await capture.stop();
  }
});
