// Running as a service: `oisp up --config FILE` under a service manager. systemd's readiness protocol
// (READY=1 on $NOTIFY_SOCKET, read here by a real unix datagram socket in python3), SIGHUP re-reading the
// file (`systemctl reload`): a broken file leaves the running configuration alone, a good one restarts
// the parts with it, and SIGTERM stops with STOPPING=1 and exit code 0.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { ebpfSkipReason } from "../support/ebpf.ts";
import { freePort, runOisp, runOispOnce, tempHome, waitFor, waitForPort, type OispProcess } from "../support/oisp-process.ts";

const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    print(s.recv(4096).decode().replace("\\n", "|"), flush=True)
`;

/** A python3 unix datagram socket standing in for systemd's notify socket; `notes` gets each message. */
async function notifySocket(socketPath: string, notes: string[]): Promise<ReturnType<typeof Bun.spawn>> {
  const proc = Bun.spawn(["python3", "-c", RECEIVER, socketPath], { stdout: "pipe", stderr: "inherit" });
  (async () => {
    let buf = "";
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
      buf += new TextDecoder().decode(chunk);
      const lines = buf.split("\n");
      buf = lines.pop()!;
      notes.push(...lines);
    }
  })();
  await waitFor("the notify socket", () => (notes.includes("bound") ? true : undefined));
  return proc;
}

let home: string;
let oisp: OispProcess;
let receiver: ReturnType<typeof Bun.spawn>;
const notes: string[] = [];
let configFile: string;
let port1: number;
let port2: number;

async function status(): Promise<any> {
  const { code, output } = await runOispOnce(["status", "--json"], { home });
  return { code, ...JSON.parse(output) };
}

beforeAll(async () => {
  home = tempHome("oisp-service-");
  const socketPath = path.join(home, "notify.sock");
  receiver = await notifySocket(socketPath, notes);
  [port1, port2] = [await freePort(), await freePort()];
  configFile = path.join(home, "oisp.toml");
  fs.writeFileSync(configFile, `redaction = "minimal"\n[proxy]\nlisten = "127.0.0.1:${port1}"\n`);
  oisp = runOisp(["up", "--config", configFile], { home, env: { NOTIFY_SOCKET: socketPath } });
  await waitForPort(port1, oisp);
});

afterAll(async () => {
  if (oisp?.proc.exitCode === null) await oisp.stop();
  receiver?.kill();
  fs.rmSync(home, { recursive: true, force: true });
});

test("READY=1 reaches $NOTIFY_SOCKET once the proxy listens", async () => {
  const ready = await waitFor("READY=1", () => notes.find((n) => n.startsWith("READY=1")));
  expect(ready).toBe(`READY=1|STATUS=capturing through the proxy at http://127.0.0.1:${port1}`);
  const s = await status();
  expect(s.code).toBe(0);
  expect(s.sensor.snapshot.proxy.address).toBe(`http://127.0.0.1:${port1}`);
  expect(s.sensor.snapshot.exporters).toEqual([]);
});

test("SIGHUP with a broken file: logged, the running configuration stays", async () => {
  fs.writeFileSync(configFile, `redaction = "everything"\n`);
  const startedAt = (await status()).sensor.snapshot.started_at;
  oisp.proc.kill("SIGHUP");
  await waitFor("the reload error in the log", () => (oisp.output().includes("SIGHUP: configuration not reloaded") ? true : undefined));
  expect(oisp.output()).toMatch(/SIGHUP: configuration not reloaded, the running one stays: .*oisp\.toml: .*redaction/);
  expect(oisp.proc.exitCode).toBeNull();
  await waitForPort(port1, oisp);
  const s = await status();
  expect(s.sensor.snapshot.started_at).toBe(startedAt);
  expect(notes.filter((n) => n.startsWith("RELOADING=1"))).toEqual([]);
});

test("SIGHUP with a good file: restarted in place with the new listener and exporter", async () => {
  const jsonl = path.join(home, "export.jsonl");
  fs.writeFileSync(configFile, `[proxy]\nlisten = "127.0.0.1:${port2}"\n[export.jsonl]\npath = "${jsonl}"\n`);
  oisp.proc.kill("SIGHUP");
  await waitForPort(port2, oisp);
  const s = await waitFor("the new snapshot", async () => {
    const r = await status();
    return r.sensor.snapshot?.proxy?.address === `http://127.0.0.1:${port2}` && r.running ? r : undefined;
  });
  expect(s.sensor.snapshot.pid).toBe(oisp.proc.pid);
  expect(s.sensor.snapshot.exporters.map((e: { name: string }) => e.name)).toEqual(["jsonl"]);
  expect(oisp.output()).toContain("SIGHUP: configuration re-read");
  await waitFor("READY=1 after RELOADING=1", () => {
    const i = notes.indexOf("RELOADING=1");
    return i >= 0 && notes.slice(i + 1).some((n) => n.startsWith("READY=1")) ? true : undefined;
  });
});

test("SIGTERM: STOPPING=1, exit 0, and the probe says not running (exit 3)", async () => {
  oisp.proc.kill("SIGTERM");
  expect(await oisp.proc.exited).toBe(0);
  await waitFor("STOPPING=1", () => (notes.includes("STOPPING=1") ? true : undefined));
  expect((await status()).code).toBe(3);
});

// oisp.service runs `oisp up --capture ebpf --config ...`: the same protocol and reload there (limited to this
// test's process tree with [ebpf] pids, as every eBPF test is).
describe.skipIf(!!ebpfSkipReason)("eBPF mode under a service manager", () => {
  test("READY=1, SIGHUP re-reads the file (an exporter appears), SIGTERM: STOPPING=1 and exit 0", async () => {
    const ebpfHome = tempHome("oisp-service-ebpf-");
    const ebpfNotes: string[] = [];
    const sock = await notifySocket(path.join(ebpfHome, "notify.sock"), ebpfNotes);
    const conf = path.join(ebpfHome, "oisp.toml");
    fs.writeFileSync(conf, `redaction = "minimal"\n[ebpf]\npids = [${process.pid}]\n`);
    const up = runOisp(["up", "--capture", "ebpf", "--config", conf], { home: ebpfHome, env: { NOTIFY_SOCKET: path.join(ebpfHome, "notify.sock") } });
    const status = async () => JSON.parse((await runOispOnce(["status", "--json"], { home: ebpfHome })).output);
    try {
      expect(await waitFor("READY=1", () => ebpfNotes.find((n) => n.startsWith("READY=1")), 60_000)).toBe("READY=1|STATUS=capturing TLS with eBPF");
      expect((await status()).sensor.snapshot.exporters).toEqual([]);
      fs.writeFileSync(conf, `redaction = "minimal"\n[ebpf]\npids = [${process.pid}]\n[export.jsonl]\npath = "${path.join(ebpfHome, "e.jsonl")}"\n`);
      up.proc.kill("SIGHUP");
      await waitFor("READY=1 after RELOADING=1", () => {
        const i = ebpfNotes.indexOf("RELOADING=1");
        return i >= 0 && ebpfNotes.slice(i + 1).some((n) => n.startsWith("READY=1")) ? true : undefined;
      }, 60_000);
      const s = await waitFor("the reloaded snapshot", async () => {
        const r = await status();
        return r.running && r.sensor.snapshot.exporters?.length ? r : undefined;
      });
      expect(s.sensor.snapshot.pid).toBe(up.proc.pid);
      expect(s.sensor.snapshot.exporters.map((e: { name: string }) => e.name)).toEqual(["jsonl"]);
      up.proc.kill("SIGTERM");
      expect(await up.proc.exited).toBe(0);
      await waitFor("STOPPING=1", () => (ebpfNotes.includes("STOPPING=1") ? true : undefined));
    } finally {
      if (up.proc.exitCode === null) await up.stop();
      sock.kill();
      fs.rmSync(ebpfHome, { recursive: true, force: true });
    }
  }, 120_000);
});
