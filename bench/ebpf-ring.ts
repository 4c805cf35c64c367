// bench/ebpf-ring.ts (issue 14): how much TLS plaintext the probes + ring buffer + Worker carry to the tap, and
// what the probes cost the application. A Python client (OpenSSL, probed) writes N buffers of SIZE bytes on
// one TLS connection to a sink in this process (Bun's TLS: not probed), without capture and then with the eBPF
// capture running in this process (filtered in the kernel to this process tree, every host recorded).
// Prints: client writes/s both ways, bytes delivered to the tap vs written, ring-buffer drops, bytes lost,
// delivery delay (kernel timestamp → tap, p50/p99), CPU of this process while capturing.
//
//   sudo bun bench/ebpf-ring.ts                 # 20,000 x 1 KiB, 2,000 x 16 KiB, 1,000 x 64 KiB
//   sudo bun bench/ebpf-ring.ts 5000 4096       # one size
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startEbpfCapture } from "../src/capture/ebpf/tls-capture.ts";
import { nowMs, type TapSink } from "../src/tap/types.ts";
import { createTestCa } from "../test/support/upstream.ts";
import { ms, table } from "./lib/report.ts";

const runs: Array<[number, number]> = process.argv[2] ? [[Number(process.argv[2]), Number(process.argv[3] ?? 1024)]] : [[20_000, 1024], [2000, 16_384], [1000, 65_536]];

const ca = await createTestCa();
const { cert, key } = await ca.issue(["localhost"]);
const sink = Bun.listen({ hostname: "127.0.0.1", port: 0, tls: { cert, key }, socket: { data() {} } });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-ring-"));

async function client(n: number, size: number): Promise<number> {
  const py = `import socket, ssl, time
c = ssl._create_unverified_context()
s = c.wrap_socket(socket.create_connection(("127.0.0.1", ${sink.port})), server_hostname="localhost")
buf = b"x" * ${size}
t = time.time()
for i in range(${n}): s.sendall(buf)
print(${n} / (time.time() - t))
s.close()`;
  const p = Bun.spawn(["python3", "-c", py], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error("client failed");
  return Number(out.trim());
}

const rows: Array<Array<string | number>> = [];
for (const [n, size] of runs) {
  const direct = await client(n, size);
  let delivered = 0;
  let chunks = 0;
  const delays: number[] = [];
  const tap: TapSink = {
    open() {},
    data(_c, _d, bytes, ts) {
      delivered += bytes.length;
      if (chunks++ % 8 === 0) delays.push(nowMs() - ts);
    },
    close() {},
  };
  const cap = await startEbpfCapture({ tap, log: () => {}, pids: [process.pid], allTraffic: true, libDir: dir });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const probed = await client(n, size);
  // Let the Worker drain what is still in the ring buffer.
  for (let last = -1; last !== delivered; ) {
    last = delivered;
    await Bun.sleep(300);
  }
  const cpu = process.cpuUsage(cpu0);
  const secs = (performance.now() - t0) / 1000;
  const st = cap.stats();
  await cap.stop();
  delays.sort((a, b) => a - b);
  rows.push([
    `${n} x ${size} B`,
    Math.round(direct),
    Math.round(probed),
    `${((100 * delivered) / (n * size)).toFixed(1)} %`,
    st.ringDrops,
    st.lostBytes,
    ms(delays[delays.length >> 1] ?? NaN),
    ms(delays[Math.floor(delays.length * 0.99)] ?? NaN),
    `${((100 * (cpu.user + cpu.system)) / 1e6 / secs).toFixed(0)} %`,
  ]);
}
sink.stop(true);
console.log(table(["writes", "writes/s direct", "writes/s probed", "delivered", "ring drops", "bytes lost", "delay p50 ms", "delay p99 ms", "CPU (this process)"], rows));
process.exit(0);
