// Real TCP through the real Windows redirector code on Linux: a network namespace with a TUN device that
// the stand-in WinDivert library (gcc) reads and writes, so the kernel's own TCP/IP plays the Windows
// stack. curl calls an AI host address; the packet workers reflect its connection to the divert
// listener, which hands it to the proxy's transparent entry; the proxy intercepts it with a test CA and relays it to a local TLS upstream; curl gets the upstream's
// answer and the tap sees the plaintext, attributed to curl's process. Traffic to another address
// passes untouched. Needs root (unshare --net, TUN); skipped with a clear line without it.
import { expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { readEvents, runOisp, tempHome, waitFor } from "../support/oisp-process.ts";
import { buildStub } from "../support/windivert-stub/stub.ts";

const repoRoot = path.resolve(import.meta.dir, "../..");
const isRoot = process.getuid?.() === 0;
// CI runners (GitHub Actions) are not root but have password-less sudo.
const viaSudo = !isRoot && !!Bun.which("sudo") && Bun.spawnSync(["sudo", "-n", "true"], { stderr: "ignore" }).exitCode === 0;
const canRun = process.platform === "linux" && (isRoot || viaSudo) && fs.existsSync("/dev/net/tun") && !!Bun.which("unshare") && !!Bun.which("curl") && !!Bun.which("ip");

if (!canRun) {
  test.skip("TUN end-to-end: SKIPPED (needs Linux, root or password-less sudo, /dev/net/tun, unshare, ip, curl)", () => {});
} else {
  test("curl → TUN → WinDivert workers → divert listener → proxy → TLS upstream → sensor events, IPv4 and IPv6; other traffic untouched", async () => {
    const lib = buildStub("so");
    const stubDir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-tun-stub-"));
    // The sensor runs outside the namespace; its unix socket is reachable by path from inside.
    const home = tempHome("oisp-tun-sensor-");
    const sensor = runOisp(["sensor"], { home });
    await waitFor("the sensor's socket", () => (fs.existsSync(path.join(home, "run", "ipc.token")) && fs.existsSync(path.join(home, "run", "oisp.sock")) ? true : undefined));
    const env = { WINDIVERT_STUB_DIR: stubDir, WINDIVERT_STUB_TUN: "oisp0", WINDIVERT_STUB_MAX_WAIT_MS: "60000" };
    const sudo = viaSudo ? ["sudo", "-n", "env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`)] : [];
    const p = Bun.spawn([...sudo, "unshare", "--net", "--", process.execPath, "test/windows/tun-scenario.ts", lib, stubDir, home], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => p.kill(), 40_000);
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    clearTimeout(timer);
    fs.rmSync(stubDir, { recursive: true, force: true });
    if (code !== 0) {
      await sensor.stop();
      throw new Error(`scenario failed (${code}):\n${out}\n${err}`);
    }
    const r = JSON.parse(out.trim().split("\n").pop()!);
    for (const leg of [r.v4, r.v6]) {
      expect(leg.err).toBe("");
      expect(leg.code).toBe(0);
      expect(JSON.parse(leg.out)).toMatchObject({ object: "chat.completion", model: expect.stringContaining("gpt-4o-mini") });
    }
    const ai = r.metas.filter((m: { host: string }) => m.host === "api.openai.com");
    expect(ai).toHaveLength(2);
    for (const m of ai) {
      expect(m).toMatchObject({ sni: "api.openai.com", mode: "mitm", captureMethod: "windivert", c2s: true, s2c: true });
    }
    // The real client endpoints (the namespace's TUN addresses), not the reflection peer.
    expect(ai.map((m: { client: { ip: string } }) => m.client.ip).sort()).toEqual(["10.66.0.2", "fd66::2"]);
    // Attributed to the two curl processes (looked up by the original client socket C:cp → S:443).
    expect(ai.map((m: { pid: number }) => m.pid).sort()).toEqual([r.v4.pid, r.v6.pid].sort());
    // The other address: curl's SYNs went out unchanged (nothing answers there), never to the proxy.
    expect(r.other.code).not.toBe(0);
    expect(r.sentToOther.length).toBeGreaterThan(0);
    expect(r.sentToOther.every((s: { dport: number; flags: number }) => s.dport === 443)).toBe(true);
    expect(r.metas.some((m: { host: string }) => m.host.includes("203.0.113.20"))).toBe(false);
    expect(r.stats.divert).toMatchObject({ diverted: 2, dnsLearned: 2, tableFull: 0, sendErrors: 0 });

    // The sensor decoded both calls into OISP events attributed to the curl processes.
    try {
      const db = path.join(home, "oisp.db");
      for (const pid of [r.v4.pid, r.v6.pid]) {
        const events = await waitFor(`events of curl ${pid}`, () => {
          const mine = readEvents(db).filter((e) => (e.process as { pid?: number } | undefined)?.pid === pid);
          return mine.some((e) => e.event_type === "ai.response") ? mine : undefined;
        }, 10_000);
        const req = events.find((e) => e.event_type === "ai.request") as Record<string, any> | undefined;
        expect(req).toBeDefined();
        expect(req!.process).toMatchObject({ pid, name: "curl" });
        expect(req!.source).toMatchObject({ capture_point: "windivert" });
        expect(req!.attrs).toMatchObject({ provider_id: "openai" });
        expect(req!.data.provider).toMatchObject({ name: "openai", endpoint: "https://api.openai.com/v1/chat/completions" });
      }
    } finally {
      expect(await sensor.stop()).toBe(0);
      fs.rmSync(home, { recursive: true, force: true });
    }
  }, 60_000);
}
