// process.exec and file.write: built from what the eBPF source saw, valid against the OISP v0.1 schemas
// (ajv) and our zod schema in every redaction mode, command lines masked, file content only in full mode,
// and linked into the chain model call → process.exec → file.write by the pipeline.
import { describe, expect, test } from "bun:test";
import { buildFileWrite, buildProcessExec, contentHash, hostInfo, redactEvent, REDACTION_MODES, validateEvent, type OispEvent } from "../../src/events/index.ts";
import { SensorPipeline } from "../../src/sensor/pipeline.ts";
import type { ExecActivity, FileWriteActivity } from "../../src/tap/activity.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

const ctx = { collectorVersion: "test", host: hostInfo() };
const T0 = 1_766_412_616_345.678;
const KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";

function exec(over: Partial<ExecActivity> = {}): ExecActivity {
  return { kind: "exec", ts: T0, pid: 200, ppid: 100, uid: 1000, comm: "sh", exe: "/usr/bin/sh", argv: ["sh", "-c", "echo hi > out.txt"], argvTruncated: false, cwd: "/work/agent", ...over };
}

function write(over: Partial<FileWriteActivity> = {}): FileWriteActivity {
  const text = "print('hello')\n";
  return {
    kind: "file_write",
    ts: T0 + 5,
    endTs: T0 + 7,
    pid: 200,
    ppid: 100,
    uid: 1000,
    comm: "sh",
    exe: "/usr/bin/sh",
    path: "/work/agent/out.py",
    inode: 4242,
    bytes: text.length,
    writes: 2,
    contentHash: contentHash(text),
    hashedBytes: text.length,
    preview: text,
    flushedBy: "close",
    ...over,
  };
}

function expectValid(e: OispEvent): void {
  validateOispEvent(e);
  const z = validateEvent(e);
  if (!z.ok) throw new Error(z.error);
}

describe("process.exec", () => {
  test("carries pid, ppid, uid, exe, argv and cwd, and is valid OISP in every mode", () => {
    const e = buildProcessExec(ctx, exec());
    expect(e.event_type).toBe("process.exec");
    expect(e.process).toMatchObject({ pid: 200, ppid: 100, exe: "/usr/bin/sh", name: "sh", cmdline: "sh -c echo hi > out.txt", cwd: "/work/agent" });
    expect(e.actor).toEqual({ uid: 1000 });
    expect(e.data).toMatchObject({ exe: "/usr/bin/sh", args: ["sh", "-c", "echo hi > out.txt"], cwd: "/work/agent", is_shell: true, is_script: false });
    expect(e.source).toMatchObject({ capture_method: "ebpf_tracepoint", capture_point: "sched_process_exec" });
    expect(e.confidence.completeness).toBe("full");
    expectValid(e);
    for (const mode of REDACTION_MODES) expectValid(redactEvent(e, mode));
  });

  test("a script run by an interpreter names interpreter and script; a cut argv is partial", () => {
    const e = buildProcessExec(ctx, exec({ comm: "python3", exe: "/usr/bin/python3", argv: ["python3", "-u", "tool.py", "--x"], argvTruncated: true }));
    expect(e.data).toMatchObject({ is_shell: false, is_script: true, interpreter: "/usr/bin/python3", script_path: "/work/agent/tool.py" });
    expect(e.confidence.completeness).toBe("partial");
    expect(e.confidence.reasons).toContain("argv_truncated");
    expectValid(e);
  });

  test("credentials on the command line are masked in every mode", () => {
    for (const mode of REDACTION_MODES) {
      const e = redactEvent(buildProcessExec(ctx, exec({ argv: ["curl", "-H", `Authorization: Bearer ${KEY}`, "--user", "bob:hunter22"] })), mode);
      const text = JSON.stringify(e);
      expect(text).not.toContain(KEY);
      expect(text).not.toContain("hunter22");
      expect(e.confidence.reasons).toContain("secrets_masked");
      expectValid(e);
    }
  });

  test("safe mode keeps program, flags and paths of argv but not prompt text; full mode keeps it", () => {
    const e = buildProcessExec(ctx, exec({ comm: "python3", exe: "/usr/bin/python3", argv: ["python3", "ask.py", "--model", "what is my secret plan"] }));
    const safe = redactEvent(e, "safe");
    expect(JSON.stringify(safe)).not.toContain("secret plan");
    expect((safe.data as { args: string[] }).args.slice(0, 3)).toEqual(["python3", "ask.py", "--model"]);
    expectValid(safe);
    expect((redactEvent(e, "full").data as { args: string[] }).args[3]).toBe("what is my secret plan");
  });

  test("the same activity gives the same event id", () => {
    expect(buildProcessExec(ctx, exec()).event_id).toBe(buildProcessExec(ctx, exec()).event_id);
    expect(buildProcessExec(ctx, exec()).event_id).not.toBe(buildProcessExec(ctx, exec({ pid: 201 })).event_id);
  });
});

describe("file.write", () => {
  test("path, bytes, hash and file info; the content preview only in full mode", () => {
    const e = buildFileWrite(ctx, write());
    expect(e.data).toMatchObject({
      path: "/work/agent/out.py",
      bytes_written: 15,
      content_hash: contentHash("print('hello')\n"),
      content_preview: "print('hello')\n",
      detected_type: "source_code",
      file: { path: "/work/agent/out.py", name: "out.py", extension: "py", inode: 4242 },
    });
    expect(e.process).toMatchObject({ pid: 200, ppid: 100, name: "sh" });
    expectValid(e);
    const full = redactEvent(e, "full");
    expect(full.data).toHaveProperty("content_preview", "print('hello')\n");
    expect(full.confidence.completeness).toBe("full");
    for (const mode of ["safe", "minimal"] as const) {
      const r = redactEvent(e, mode);
      expect(r.data).not.toHaveProperty("content_preview");
      expect(r.data).toHaveProperty("content_hash");
      expect(r.confidence.completeness).toBe(mode === "safe" ? "redacted" : "metadata_only");
      expectValid(r);
    }
  });

  test("a hash over part of the content is not given as the file's content_hash", () => {
    const e = buildFileWrite(ctx, write({ bytes: 100_000, hashedBytes: 32_768 }));
    expect(e.data).not.toHaveProperty("content_hash");
    expect(e.attrs).toMatchObject({ hashed_bytes: 32_768, partial_content_hash: contentHash("print('hello')\n") });
    expect(e.confidence.completeness).toBe("partial");
    expectValid(e);
  });

  test("a credential written to a file is masked even in full mode", () => {
    const e = redactEvent(buildFileWrite(ctx, write({ path: "/work/.env", preview: `OPENAI_API_KEY=${KEY}\n` })), "full");
    expect(JSON.stringify(e)).not.toContain(KEY);
    expect((e.data as { detected_type?: string }).detected_type).toBe("config");
    expectValid(e);
  });
});

describe("pipeline", () => {
  test("links exec to the parent's exec and a write to its writer's exec, redacted like every event", () => {
    const out: OispEvent[] = [];
    const p = new SensorPipeline({ redaction: "safe", collectorVersion: "t", outputs: [{ write: (e) => out.push(...e) }], log: () => {} });
    p.activity([
      exec({ pid: 100, ppid: 1, comm: "python3", exe: "/usr/bin/python3", argv: ["python3", "agent.py"] }),
      exec({ ts: T0 + 1 }),
      write(),
    ]);
    expect(out.map((e) => e.event_type)).toEqual(["process.exec", "process.exec", "file.write"]);
    const [python, sh, file] = out as [OispEvent, OispEvent, OispEvent];
    expect(python.related_events).toBeUndefined();
    expect(sh.related_events).toEqual([{ event_id: python.event_id, relationship: "caused_by" }]);
    expect(file.related_events).toEqual([{ event_id: sh.event_id, relationship: "caused_by" }]);
    expect(file.data).not.toHaveProperty("content_preview");
    expect(p.stats()).toMatchObject({ execs: 2, fileWrites: 1, events: 3 });
    for (const e of out) expectValid(e);
  });

  test("redacts its events in place, never the activity records they were built from", () => {
    const out: OispEvent[] = [];
    const p = new SensorPipeline({ redaction: "safe", collectorVersion: "t", outputs: [{ write: (e) => out.push(...e) }], log: () => {} });
    const argv = ["curl", "-H", `Authorization: Bearer ${KEY}`, "--user", "bob:hunter2", "https://api.example.com"];
    const record = exec({ comm: "curl", exe: "/usr/bin/curl", argv });
    const before = structuredClone(record);
    p.activity([record]);
    expect(JSON.stringify(out[0])).not.toContain(KEY);
    expect(JSON.stringify(out[0])).not.toContain("hunter2");
    expect(record).toEqual(before);
  });
});
