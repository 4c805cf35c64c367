// process.exec and file.write in the dashboard: timeline rows say what ran and what was written, and the
// process tree nests the shell an agent started under the agent, with its exec and writes counted.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { buildFileWrite, buildProcessExec, hostInfo, redactEvent, type OispEvent } from "../../src/events/index.ts";
import { decodeEntities, webHarness, type WebHarness } from "../support/web-harness.ts";

const NOW = Date.UTC(2025, 5, 15, 12, 0, 0);
const ctx = { collectorVersion: "t", host: hostInfo() };

function activity(): OispEvent[] {
  const agent = buildProcessExec(ctx, { kind: "exec", ts: NOW - 5000, pid: 7100, ppid: 7000, uid: 0, comm: "python3", exe: "/usr/bin/python3", argv: ["python3", "agent.py"], argvTruncated: false, cwd: "/work" });
  const sh = buildProcessExec(ctx, { kind: "exec", ts: NOW - 4000, pid: 7200, ppid: 7100, uid: 0, comm: "sh", exe: "/usr/bin/sh", argv: ["sh", "-c", "echo done > result.txt"], argvTruncated: false, cwd: "/work" });
  const file = buildFileWrite(ctx, { kind: "file_write", ts: NOW - 3900, endTs: NOW - 3900, pid: 7200, ppid: 7100, comm: "sh", path: "/work/result.txt", bytes: 5, writes: 1, hashedBytes: 5, contentHash: "sha256:0000000000000000", preview: "done\n", flushedBy: "exit" });
  return [agent, sh, file].map((e) => redactEvent(e, "safe"));
}

describe("dashboard with process.exec and file.write", () => {
  let h: WebHarness;
  beforeAll(() => {
    h = webHarness({ events: activity(), now: () => NOW });
  });
  afterAll(() => h.close());

  test("the timeline shows the command line of an exec and the path and size of a write", async () => {
    const html = decodeEntities(await (await h.get("/?range=all")).text());
    expect(html).toContain('class="type activity">process.exec');
    expect(html).toContain('class="type activity">file.write');
    expect(html).toContain("/work/result.txt (5 B)");
    // safe mode keeps the executable and paths of a command line (prompt-like words may be hashed)
    expect(html).toMatch(/sh -c [^<]*<\/td>/);
  });

  test("an exec's and a write's own pages render their data", async () => {
    for (const e of activity()) {
      const res = await h.get(`/event/${e.event_id}`);
      expect(res.status).toBe(200);
      expect(decodeEntities(await res.text())).toContain(`${e.event_type} data`);
    }
  });

  test("the process tree nests sh under the python agent", async () => {
    const page = await (await h.get("/processes?range=all")).text();
    const html = page.slice(page.indexOf("tree-table"));
    const python = html.indexOf("7100");
    const sh = html.indexOf("7200");
    expect(python).toBeGreaterThan(0);
    expect(sh).toBeGreaterThan(python);
  });
});
