// The store fails under a running `oisp up`: the disk fills up (a 2 MiB tmpfs, mounted here as root), or
// another process holds the database locked past the busy timeout. The relay must keep working, the status
// must say what is wrong, and the events must be written once the store is back (retried, not lost).
// Also: a client that pins its certificate is recorded with the reason and passed through afterwards.
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runOispOnce } from "../support/oisp-process.ts";
import { byType, curl, eventsOfType, startUp, status, tempHome, upstreamWith, waitFor, type Up, type Upstream } from "../fault/harness.ts";

const chat = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
const answer = (_req: unknown, res: import("node:http").ServerResponse) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ id: "chatcmpl-s", object: "chat.completion", model: "gpt-4o-mini", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }] }));
};
const handler = (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
  req.resume();
  req.on("end", () => answer(req, res));
};

const isRoot = process.getuid?.() === 0 && os.platform() === "linux";
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

async function calls(up: Up, upstream: Upstream, n: number): Promise<number[]> {
  const codes: number[] = [];
  for (let i = 0; i < n; i++) codes.push((await curl({ upstream, proxy: up.proxyUrl, cacert: up.bothCas, body: chat })).code);
  return codes;
}

/** The store section of `oisp status --json`, once the status file shows `pred`. */
async function storeStatus(home: string, pred: (store: { written: number; pending: number; lastError?: string }) => boolean, timeoutMs = 12_000) {
  return waitFor("store status", async () => {
    const s = await status(home);
    const store = (s.sensor?.store ?? s.store ?? findStore(s)) as { written: number; pending: number; lastError?: string } | undefined;
    return store && pred(store) ? store : undefined;
  }, timeoutMs);
}
function findStore(o: unknown): unknown {
  if (!o || typeof o !== "object") return undefined;
  for (const [k, v] of Object.entries(o)) {
    if (k === "store" && v && typeof v === "object" && "written" in v) return v;
    const inner = findStore(v);
    if (inner) return inner;
  }
  return undefined;
}

describe.if(isRoot)("disk full", () => {
  test("a full disk: calls still relayed, status says disk full, events written once there is room", async () => {
    const home = tempHome("oisp-fault-full-");
    const mnt = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-tmpfs-"));
    const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]);
    if (mount.exitCode !== 0) throw new Error(`mount tmpfs: ${mount.stderr}`);
    cleanups.push(() => Bun.spawnSync(["umount", "-l", mnt]));
    const upstream = await upstreamWith(home, handler);
    cleanups.push(() => upstream.close());
    const up = await startUp(upstream, { home, dbPath: path.join(mnt, "events.db") });
    cleanups.push(() => up.stop());
    expect(await calls(up, upstream, 1)).toEqual([0]);
    await eventsOfType(up, "ai.response", 1);

    // Fill the filesystem to the last byte.
    const filler = path.join(mnt, "filler");
    const fd = fs.openSync(filler, "w");
    try {
      for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1]) {
        try {
          for (;;) fs.writeSync(fd, Buffer.alloc(size));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e; // only "full" ends a fill step
        }
      }
    } finally {
      fs.closeSync(fd);
    }

    // Enough events to need new pages: every call still goes through.
    expect(await calls(up, upstream, 12)).toEqual(Array(12).fill(0));
    const failing = await storeStatus(home, (s) => /disk full|disk I\/O|SQLITE_FULL/i.test(s.lastError ?? ""));
    expect(failing.pending).toBeGreaterThan(0);
    expect(up.oisp.output()).toMatch(/store: (disk full|disk I\/O error)/);

    fs.rmSync(filler);
    const healed = await storeStatus(home, (s) => s.lastError === undefined && s.pending === 0);
    expect(healed.written).toBeGreaterThan(0);
    const responses = byType(up.events(), "ai.response");
    expect(responses.length).toBe(13);
    expect(new Set(responses.map((e) => e.event_id)).size).toBe(13);
  }, 40_000);
});

describe("database locked", () => {
  test("another process holds the database: calls still relayed, status says locked, events written after", async () => {
    const home = tempHome("oisp-fault-lock-");
    const upstream = await upstreamWith(home, handler);
    cleanups.push(() => upstream.close());
    const up = await startUp(upstream, { home });
    cleanups.push(() => up.stop());
    expect(await calls(up, upstream, 1)).toEqual([0]);
    await eventsOfType(up, "ai.response", 1);

    const other = new Database(up.dbPath);
    other.run("BEGIN EXCLUSIVE");
    try {
      expect(await calls(up, upstream, 5)).toEqual(Array(5).fill(0));
      const locked = await storeStatus(home, (s) => /locked/i.test(s.lastError ?? ""), 15_000);
      expect(locked.pending).toBeGreaterThan(0);
    } finally {
      other.run("ROLLBACK");
      other.close();
    }
    await storeStatus(home, (s) => s.lastError === undefined && s.pending === 0);
    expect(byType(up.events(), "ai.response").length).toBe(6);
  }, 40_000);
});

describe("certificate pinning", () => {
  test("a client that rejects our CA: each time recorded as network.connect with the code, then that client passed through and listed", async () => {
    const home = tempHome("oisp-fault-pin-");
    const upstream = await upstreamWith(home, handler);
    cleanups.push(() => upstream.close());
    const up = await startUp(upstream, { home });
    cleanups.push(() => up.stop());
    // A "pinning" client: trusts only the real upstream's CA, not ours. It keeps trying, as an app would,
    // until it is passed through (a rejection counts once its process is identified).
    let code = 60;
    for (let i = 0; i < 6 && code === 60; i++) code = (await curl({ upstream, proxy: up.proxyUrl, cacert: upstream.caFile, body: chat })).code;
    expect(code).toBe(0);
    const connects = () => byType(up.events(), "network.connect").map((e) => (e as { attrs?: Record<string, unknown> }).attrs ?? {});
    const pinnedNow = await waitFor("network.connect saying the client is now passed through", () => connects().find((a) => a.passthrough_code === "client-pinned"));
    expect(String(pinnedNow.passthrough_reason)).toMatch(/^client rejected our certificate: fatal alert unknown_ca; \/usr\/bin\/curl \(root\) is passed through for api\.openai\.com for 60 min$/);
    expect(connects().filter((a) => a.passthrough_code === "client-rejected-cert").length).toBeGreaterThanOrEqual(1);
    const passed = await waitFor("network.connect of the pinned client passed through", () => connects().find((a) => a.passthrough_code === "pinned"));
    expect(String(passed.passthrough_reason)).toContain("/usr/bin/curl (root) rejected our certificate for api.openai.com");
    // Passed through untouched: no decrypted request from that call.
    expect(byType(up.events(), "ai.request")).toEqual([]);
    const s = await waitFor("status lists the pinned host", async () => {
      const st = await status(home);
      return JSON.stringify(st).includes("api.openai.com") && /pinned/i.test(JSON.stringify(st)) ? st : undefined;
    });
    expect(JSON.stringify(s)).toContain("api.openai.com");

    // Reset: `oisp unpin` makes the running proxy intercept the host again, so the pinning client fails
    // again (it still does not trust our CA) and is pinned again — proof that interception resumed.
    const unpin = await runOispOnce(["unpin", "api.openai.com"], { home });
    expect(unpin.code).toBe(0);
    await waitFor("status no longer lists the host", async () => {
      const st = await status(home);
      return JSON.stringify(st.proxy?.pinned_hosts ?? st).includes("api.openai.com") ? undefined : st;
    });
    const third = await curl({ upstream, proxy: up.proxyUrl, cacert: upstream.caFile, body: chat });
    expect(third.code).toBe(60);
  }, 60_000);
});
