// Throughput and memory of `oisp analyze` on a large JSONL: generates ~1 GB (default) of realistic
// events into a temp file, streamed (never held in memory), then analyzes it in a child process and
// reports MB/s and that process's peak RSS. Run: bun bench/analyze.ts [sizeMB]. Not part of the tests.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { aiExchange, PROCESSES } from "../test/support/event-fixtures.ts";

const targetMb = Number(process.argv[2] ?? 1024);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-bench-"));
const file = path.join(dir, "capture.jsonl");

try {
  // Generate: a pool of varied exchanges, re-stamped with fresh ids/times, written in 4 MiB batches.
  const t0 = performance.now();
  const fd = fs.openSync(file, "w");
  const procs = Object.values(PROCESSES);
  const models = ["gpt-4o-mini", "gpt-4o", "o3-mini", "claude-sonnet-4-5", "ft:custom-model"];
  const pool: string[][] = [];
  for (let i = 0; i < 200; i++) {
    const model = models[i % models.length]!;
    pool.push(
      aiExchange({
        tsMs: Date.parse("2026-01-01T00:00:00Z") + i * 1000,
        provider: model.startsWith("claude") ? "anthropic" : "openai",
        model,
        process: procs[i % procs.length],
        mode: i % 3 === 0 ? "redacted" : "full",
        success: i % 17 !== 0,
        statusCode: i % 17 === 0 ? 429 : 200,
        inputTokens: 200 + ((i * 131) % 5000),
        outputTokens: 20 + ((i * 71) % 900),
        latencyMs: 200 + ((i * 977) % 9000),
        ttftMs: 50 + ((i * 313) % 2000),
        prompt: "Summarise the repository and list risky changes. ".repeat(1 + (i % 8)),
        toolCalls: i % 4 === 0 ? [{ name: ["read_file", "grep", "shell"][i % 3]!, arguments: '{"path":"src/main.ts"}' }] : undefined,
        keyHash: `sha256:${(i % 7).toString(16).padStart(16, "0")}`,
      }).map((e) => JSON.stringify(e)),
    );
  }
  let written = 0;
  let batch: string[] = [];
  let batchBytes = 0;
  let n = 0;
  const base = Date.parse("2026-01-01T00:00:00Z");
  while (written < targetMb * 1048576) {
    const ts = new Date(base + n * 1000).toISOString();
    for (const line of pool[n % pool.length]!) {
      // New ids and times for every copy, so the file is not one exchange repeated verbatim.
      const l = line.replace(/"ts":"[^"]+"/, `"ts":"${ts}"`).replace(/"request_id":"[^"]+"/, `"request_id":"r${n}"`);
      batch.push(l);
      batchBytes += l.length + 1;
    }
    n++;
    if (batchBytes >= 4 * 1048576) {
      fs.writeSync(fd, `${batch.join("\n")}\n`);
      written += batchBytes;
      batch = [];
      batchBytes = 0;
    }
  }
  if (batch.length) fs.writeSync(fd, `${batch.join("\n")}\n`);
  fs.closeSync(fd);
  const size = fs.statSync(file).size;
  console.log(`generated ${(size / 1048576).toFixed(0)} MB (${n.toLocaleString("en-US")} calls) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // Analyze in a child so its peak RSS is its own: /usr/bin/time is not everywhere, so the child reports it.
  const child = Bun.spawnSync({
    cmd: [
      process.execPath,
      "-e",
      `const { analyzeFile } = await import(${JSON.stringify(path.resolve(import.meta.dir, "../src/analyze/index.ts"))});
       let peak = 0; const tick = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 50);
       const t = performance.now(); const r = await analyzeFile(${JSON.stringify(file)});
       const s = (performance.now() - t) / 1000; clearInterval(tick); peak = Math.max(peak, process.memoryUsage().rss);
       console.log(JSON.stringify({ seconds: s, events: r.summary.events, malformed: r.malformed.count, peakRss: peak, maxRss: process.resourceUsage().maxRSS * 1024 }));`,
    ],
    stdout: "pipe",
    stderr: "inherit",
  });
  const out = JSON.parse(child.stdout.toString().trim().split("\n").pop()!);
  const mb = size / 1048576;
  console.log(
    `analyzed ${mb.toFixed(0)} MB, ${out.events.toLocaleString("en-US")} events in ${out.seconds.toFixed(1)} s: ` +
      `${(mb / out.seconds).toFixed(0)} MB/s, peak RSS ${(Math.max(out.peakRss, out.maxRss) / 1048576).toFixed(0)} MB, malformed ${out.malformed}`,
  );
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
