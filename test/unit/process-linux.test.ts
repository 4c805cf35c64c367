// Linux process lookup against this machine's real /proc: a child process connects, we find its pid.
import { describe, expect, test } from "bun:test";
import net from "node:net";
import { processLookupForPlatform } from "../../src/capture/process/index.ts";
import { describeProcess } from "../../src/capture/process/describe.ts";
import { canonicalIp } from "../../src/capture/process/ip.ts";
import { createLinuxProcessLookup, decodeProcAddress, findSocketRow, RecentPids, scanOrder } from "../../src/capture/process/linux.ts";

const onLinux = process.platform === "linux";

/** A server that hands each accepted socket to `onConn`; returns its port. */
async function listen(host: string, onConn: (s: net.Socket) => void): Promise<{ port: number; close(): void }> {
  const srv = net.createServer(onConn);
  await new Promise<void>((r) => srv.listen(0, host, r));
  return { port: (srv.address() as net.AddressInfo).port, close: () => srv.close() };
}

/** Spawns a Bun child that connects to host:port and stays connected until killed. */
function spawnClient(host: string, port: number) {
  const code = `const s = require("node:net").connect(${port}, ${JSON.stringify(host)}); s.on("error", () => {}); setInterval(() => {}, 1000);`;
  return Bun.spawn([process.execPath, "-e", code, "oisp-lookup-probe"], { stdout: "ignore", stderr: "ignore" });
}

describe("address decoding", () => {
  test("canonical forms: v4, mapped v4, v6 compressed and expanded", () => {
    expect(canonicalIp("127.0.0.1")).toBe("127.0.0.1");
    expect(canonicalIp("::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(canonicalIp("::ffff:7f00:1")).toBe("127.0.0.1");
    expect(canonicalIp("::1")).toBe("00000000000000000000000000000001");
    expect(canonicalIp("[fe80::1%eth0]")).toBe("fe800000000000000000000000000001");
    expect(canonicalIp("2001:db8:0:0:0:0:2:1")).toBe(canonicalIp("2001:db8::2:1"));
    expect(canonicalIp("not-an-ip")).toBeUndefined();
  });

  test("/proc/net/tcp and tcp6 fields (host byte order words)", () => {
    expect(decodeProcAddress("0100007F:1F90")).toEqual({ ip: "127.0.0.1", port: 8080 });
    expect(decodeProcAddress("00000000000000000000000001000000:0050")).toEqual({ ip: "00000000000000000000000000000001", port: 80 });
    expect(decodeProcAddress("0000000000000000FFFF00000100007F:01BB")).toEqual({ ip: "127.0.0.1", port: 443 });
  });

  test("finds the row whose local end is the client and remote end the proxy, not the accepted side", () => {
    const table = [
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
      "   0: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 111 1 0 20 4 30 10 -1",
      "   1: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0 20 4 30 10 -1",
      "   2: 0100007F:D432 0100007F:1F90 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0",
    ].join("\n");
    expect(findSocketRow(table, { ip: "127.0.0.1", port: 0xd431 }, { ip: "::ffff:127.0.0.1", port: 8080 })).toEqual({ inode: 222, uid: 1000 });
    expect(findSocketRow(table, { ip: "127.0.0.1", port: 0xd432 }, { ip: "127.0.0.1", port: 8080 })).toBeUndefined(); // TIME_WAIT: no inode
  });
});

describe.skipIf(!onLinux)("lookup on this machine", () => {
  test("a child process's connection is attributed to its pid, with name, exe, cmdline, ppid", async () => {
    const lookup = createLinuxProcessLookup();
    let resolveInfo!: (v: unknown) => void;
    const info = new Promise((r) => (resolveInfo = r));
    const srv = await listen("127.0.0.1", (s) => {
      s.on("error", () => {});
      lookup({ ip: s.remoteAddress!, port: s.remotePort! }, { ip: s.localAddress!, port: s.localPort! }).then(resolveInfo);
    });
    const child = spawnClient("127.0.0.1", srv.port);
    try {
      const found = (await info) as Record<string, unknown>;
      expect(found).toMatchObject({ pid: child.pid, ppid: process.pid, exe: process.execPath, uid: process.getuid!() });
      expect(String(found.cmdline)).toContain("oisp-lookup-probe");
      expect(typeof found.name).toBe("string");
      // Start time (pins of one process use pid + it, so a reused pid inherits nothing): the child started after us.
      expect(found.startTime as number).toBeGreaterThan(describeProcess("/proc", process.pid, 0).startTime!);
    } finally {
      child.kill();
      srv.close();
    }
  });

  test("dual-stack listener: an IPv4 client seen as ::ffff:127.0.0.1 is still found", async () => {
    const lookup = processLookupForPlatform("linux");
    let resolveInfo!: (v: unknown) => void;
    const info = new Promise((r) => (resolveInfo = r));
    let seenAs = "";
    const srv = await listen("::", (s) => {
      s.on("error", () => {});
      seenAs = s.remoteAddress!;
      lookup({ ip: s.remoteAddress!, port: s.remotePort! }, { ip: s.localAddress!, port: s.localPort! }).then(resolveInfo);
    });
    const child = spawnClient("127.0.0.1", srv.port);
    try {
      expect(await info).toMatchObject({ pid: child.pid });
      expect(seenAs).toBe("::ffff:127.0.0.1");
    } finally {
      child.kill();
      srv.close();
    }
  });

  test("IPv6 loopback client", async () => {
    const lookup = createLinuxProcessLookup();
    let resolveInfo!: (v: unknown) => void;
    const info = new Promise((r) => (resolveInfo = r));
    const srv = await listen("::1", (s) => {
      s.on("error", () => {});
      lookup({ ip: s.remoteAddress!, port: s.remotePort! }, { ip: s.localAddress!, port: s.localPort! }).then(resolveInfo);
    });
    const child = spawnClient("::1", srv.port);
    try {
      expect(await info).toMatchObject({ pid: child.pid });
    } finally {
      child.kill();
      srv.close();
    }
  });

  test("a burst of concurrent lookups (one batch) all find their owner", async () => {
    const lookup = createLinuxProcessLookup();
    const results: Array<Promise<unknown>> = [];
    let accepted = 0;
    const srv = await listen("127.0.0.1", (s) => {
      s.on("error", () => {});
      accepted++;
      results.push(lookup({ ip: s.remoteAddress!, port: s.remotePort! }, { ip: s.localAddress!, port: s.localPort! }));
    });
    const code = `const net = require("node:net"); for (let i = 0; i < 20; i++) net.connect(${srv.port}, "127.0.0.1").on("error", () => {}); setInterval(() => {}, 1000);`;
    const child = Bun.spawn([process.execPath, "-e", code], { stdout: "ignore", stderr: "ignore" });
    try {
      const end = Date.now() + 5000;
      while (accepted < 20 && Date.now() < end) await Bun.sleep(5);
      const infos = (await Promise.all(results)) as Array<{ pid: number } | undefined>;
      expect(infos.length).toBe(20);
      expect(infos.map((i) => i?.pid)).toEqual(Array(20).fill(child.pid));
    } finally {
      child.kill();
      srv.close();
    }
  });

  // "Quickly" is the test's own 1 s timeout rather than a measured-duration assertion.
  test("an endpoint with no socket resolves undefined, quickly", async () => {
    const lookup = createLinuxProcessLookup();
    expect(await lookup({ ip: "127.0.0.1", port: 1 }, { ip: "127.0.0.1", port: 2 })).toBeUndefined();
  }, 1000);

  test("other platforms resolve undefined", async () => {
    expect(await processLookupForPlatform("darwin")({ ip: "127.0.0.1", port: 1 }, { ip: "127.0.0.1", port: 2 })).toBeUndefined();
  });
});

describe("the scan's order, without /proc", () => {
  test("recent clients first (most recent first), bounded; then the other pids newest first", () => {
    const recent = new RecentPids(2);
    for (const pid of [10, 20, 10, 30]) recent.remember(pid);
    // 10 was remembered again after 20, so 20 is the oldest and fell out past the bound of 2.
    expect(recent.list()).toEqual([30, 10]);
    expect(scanOrder(["1", "self", "20", "300", "10", "30", "net"], recent)).toEqual({ order: [30, 10, 300, 20, 1], recentCount: 2 });
    expect(scanOrder([], new RecentPids(4))).toEqual({ order: [], recentCount: 0 });
  });
});
