// NETLINK_SOCK_DIAG lookups of one socket, against this machine's kernel: real TCP connections (IPv4,
// IPv6, IPv4 on a dual-stack listener), each answer checked against the socket's row in /proc/net/tcp{,6}.
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createLinuxProcessLookup, findSocketRow } from "../../src/capture/process/linux.ts";
import { decodeReply, encodeRequest, REQUEST_SIZE, sockDiagQuery, sockDiagRow } from "../../src/capture/process/sock-diag.ts";
import type { Endpoint } from "../../src/tap/types.ts";

const onLinux = process.platform === "linux";

describe("message layout", () => {
  test("request: nlmsghdr + inet_diag_req_v2 with the 4-tuple in network order", () => {
    const buf = new Uint8Array(REQUEST_SIZE);
    encodeRequest(buf, 7, { family: 2, src: Uint8Array.of(127, 0, 0, 1), sport: 0x1234, dst: Uint8Array.of(10, 0, 0, 2), dport: 443 });
    const dv = new DataView(buf.buffer);
    expect(REQUEST_SIZE).toBe(72);
    expect([dv.getUint32(0, true), dv.getUint16(4, true), dv.getUint16(6, true), dv.getUint32(8, true)]).toEqual([72, 20, 1, 7]);
    expect([...buf.subarray(16, 20)]).toEqual([2, 6, 0, 0]); // AF_INET, IPPROTO_TCP, no extensions
    expect(dv.getUint32(20, true)).toBe(0xffffffff); // all states
    expect([...buf.subarray(24, 28)]).toEqual([0x12, 0x34, 0x01, 0xbb]);
    expect([...buf.subarray(28, 32)]).toEqual([127, 0, 0, 1]);
    expect([...buf.subarray(44, 48)]).toEqual([10, 0, 0, 2]);
    expect(dv.getUint32(60, true)).toBe(0); // any interface
    expect([dv.getUint32(64, true), dv.getUint32(68, true)]).toEqual([0xffffffff, 0xffffffff]); // no cookie
  });

  const message = (seq: number, type: number, body: Uint8Array) => {
    const buf = new Uint8Array(16 + body.length);
    const dv = new DataView(buf.buffer);
    dv.setUint32(0, buf.length, true);
    dv.setUint16(4, type, true);
    dv.setUint32(8, seq, true);
    buf.set(body, 16);
    return buf;
  };
  const ports = { sport: 40000, dport: 8080 };
  const diagMsg = (uid: number, inode: number, sport = ports.sport, dport = ports.dport) => {
    const body = new Uint8Array(72);
    const dv = new DataView(body.buffer);
    dv.setUint16(4, sport, false);
    dv.setUint16(6, dport, false);
    dv.setUint32(64, uid, true);
    dv.setUint32(68, inode, true);
    return body;
  };
  const error = (errno: number) => {
    const body = new Uint8Array(20);
    new DataView(body.buffer).setInt32(0, -errno, true);
    return body;
  };

  test("reply: inet_diag_msg gives uid and inode; ENOENT and TIME_WAIT (inode 0) give undefined", () => {
    const ok = message(3, 20, diagMsg(1000, 4242));
    expect(decodeReply(ok, ok.length, 3, ports)).toEqual({ uid: 1000, inode: 4242 });
    const tw = message(3, 20, diagMsg(0, 0));
    expect(decodeReply(tw, tw.length, 3, ports)).toBeUndefined();
    const noent = message(3, 2, error(2));
    expect(decodeReply(noent, noent.length, 3, ports)).toBeUndefined();
    const perm = message(3, 2, error(1));
    expect(decodeReply(perm, perm.length, 3, ports)).toBe("unavailable");
    // A listener on the client's port (the kernel's fallback when no connection matches) is not the socket.
    const listener = message(3, 20, diagMsg(1000, 4242, ports.sport, 0));
    expect(decodeReply(listener, listener.length, 3, ports)).toBeUndefined();
  });

  test("reply to an earlier request (a late one) is not taken for this one", () => {
    const late = message(2, 20, diagMsg(1000, 1));
    expect(decodeReply(late, late.length, 3, ports)).toBe("other");
    const truncated = message(3, 20, new Uint8Array(10));
    expect(decodeReply(truncated, truncated.length, 3, ports)).toBe("unavailable");
  });
});

/** A connected pair; `client` is the connecting socket's own view (local = client end). */
async function connectPair(listenHost: string, connectHost: string) {
  const accepted = Promise.withResolvers<net.Socket>();
  const srv = net.createServer((s) => {
    s.on("error", () => {});
    accepted.resolve(s);
  });
  await new Promise<void>((r) => srv.listen(0, listenHost, r));
  const c = net.connect((srv.address() as net.AddressInfo).port, connectHost);
  c.on("error", () => {});
  await new Promise((r) => c.once("connect", r));
  const s = await accepted.promise;
  return {
    client: { ip: c.localAddress!, port: c.localPort! },
    proxy: { ip: c.remoteAddress!, port: c.remotePort! },
    /** The accepted socket's 4-tuple, seen from its own side. */
    server: { local: { ip: s.localAddress!, port: s.localPort! }, remote: { ip: s.remoteAddress!, port: s.remotePort! } },
    close() {
      c.destroy();
      s.destroy();
      srv.close();
    },
  };
}

function tableRow(local: Endpoint, remote: Endpoint) {
  for (const t of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const row = findSocketRow(fs.readFileSync(t, "utf8"), local, remote);
    if (row) return row;
  }
  return undefined;
}

/** The 16-byte IPv4-mapped form of a dotted quad. */
const mapped = (v4: string) => Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, ...v4.split(".").map(Number)]);
const v4Bytes = (v4: string) => Uint8Array.from(v4.split(".").map(Number));

const hasIpv6Loopback = Object.values(os.networkInterfaces()).some((list) => list?.some((a) => a.address === "::1"));

describe.skipIf(!onLinux)("queries on this machine", () => {
  const open: Array<{ close(): void }> = [];
  afterAll(() => open.forEach((p) => p.close()));
  const uid = process.getuid!();

  test("IPv4: the client socket's inode and uid, as in /proc/net/tcp", async () => {
    const pair = await connectPair("127.0.0.1", "127.0.0.1");
    open.push(pair);
    const row = sockDiagRow(pair.client, pair.proxy);
    expect(row).toEqual({ inode: expect.any(Number), uid });
    expect(row).toEqual(tableRow(pair.client, pair.proxy)!);
    // The accepted end is another socket.
    expect(sockDiagRow(pair.server.local, pair.server.remote)).toEqual(tableRow(pair.server.local, pair.server.remote)!);
    expect((sockDiagRow(pair.server.local, pair.server.remote) as { inode: number }).inode).not.toBe((row as { inode: number }).inode);
  });

  test.skipIf(!hasIpv6Loopback)("IPv6 loopback, as in /proc/net/tcp6", async () => {
    const pair = await connectPair("::1", "::1");
    open.push(pair);
    const row = sockDiagRow(pair.client, pair.proxy);
    expect(row).toEqual({ inode: expect.any(Number), uid });
    expect(row).toEqual(tableRow(pair.client, pair.proxy)!);
  });

  test("IPv4 client of a dual-stack listener: found as AF_INET and as AF_INET6 with the mapped address", async () => {
    const pair = await connectPair("::", "127.0.0.1");
    open.push(pair);
    expect(pair.server.remote.ip).toBe("::ffff:127.0.0.1");
    const expected = tableRow(pair.client, pair.proxy)!;
    expect(expected).toEqual({ inode: expect.any(Number), uid });
    // As the proxy sees it: client ::ffff:127.0.0.1, proxy ::ffff:127.0.0.1.
    expect(sockDiagRow({ ...pair.client, ip: pair.server.remote.ip }, { ...pair.proxy, ip: pair.server.local.ip })).toEqual(expected);
    const tuple = { sport: pair.client.port, dport: pair.proxy.port };
    expect(sockDiagQuery({ family: 2, src: v4Bytes("127.0.0.1"), dst: v4Bytes("127.0.0.1"), ...tuple })).toEqual(expected);
    expect(sockDiagQuery({ family: 10, src: mapped("127.0.0.1"), dst: mapped("127.0.0.1"), ...tuple })).toEqual(expected);
    // The accepted socket is an AF_INET6 one with mapped addresses (a /proc/net/tcp6 row): both queries find it too.
    const acceptedRow = tableRow(pair.server.local, pair.server.remote)!;
    expect(acceptedRow).toBeDefined();
    const back = { sport: pair.server.local.port, dport: pair.server.remote.port };
    expect(sockDiagQuery({ family: 2, src: v4Bytes("127.0.0.1"), dst: v4Bytes("127.0.0.1"), ...back })).toEqual(acceptedRow);
    expect(sockDiagQuery({ family: 10, src: mapped("127.0.0.1"), dst: mapped("127.0.0.1"), ...back })).toEqual(acceptedRow);
  });

  test("an AF_INET6 client connecting to a mapped address (its row is in /proc/net/tcp6)", async () => {
    const pair = await connectPair("::", "::ffff:127.0.0.1");
    open.push(pair);
    const expected = tableRow(pair.client, pair.proxy);
    expect(findSocketRow(fs.readFileSync("/proc/net/tcp", "utf8"), pair.client, pair.proxy)).toBeUndefined();
    expect(expected).toEqual({ inode: expect.any(Number), uid });
    expect(sockDiagRow(pair.client, pair.proxy)).toEqual(expected);
  });

  test("a socket that does not exist gives undefined", () => {
    expect(sockDiagRow({ ip: "127.0.0.1", port: 1 }, { ip: "127.0.0.1", port: 2 })).toBeUndefined();
    expect(sockDiagRow({ ip: "::1", port: 1 }, { ip: "::1", port: 2 })).toBeUndefined();
    // An IPv4 client and a non-mapped IPv6 proxy address cannot be one connection.
    expect(sockDiagRow({ ip: "127.0.0.1", port: 1 }, { ip: "::1", port: 2 })).toBeUndefined();
  });

  test("a listener on the client's port is not taken for the client's socket", async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      expect(sockDiagRow({ ip: "127.0.0.1", port }, { ip: "127.0.0.1", port: 9 })).toBeUndefined();
      // The kernel does answer with the listener for the listener's own 4-tuple (what the self-check relies on).
      expect(sockDiagQuery({ family: 2, src: v4Bytes("127.0.0.1"), sport: port, dst: new Uint8Array(4), dport: 0 })).toEqual({ inode: expect.any(Number), uid });
    } finally {
      srv.close();
    }
  });

  test("the full lookup finds this process with netlink alone: with empty /proc/net tables it still answers", async () => {
    // A procfs stand-in holding this process only and empty socket tables: only netlink can name the socket.
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-sockdiag-"));
    fs.mkdirSync(path.join(root, "net"));
    fs.writeFileSync(path.join(root, "net", "tcp"), "");
    fs.writeFileSync(path.join(root, "net", "tcp6"), "");
    fs.symlinkSync(`/proc/${process.pid}`, path.join(root, String(process.pid)));
    const pair = await connectPair("127.0.0.1", "127.0.0.1");
    open.push(pair);
    try {
      const withNetlink = createLinuxProcessLookup({ procRoot: root, sockDiag: true });
      expect(await withNetlink(pair.client, pair.proxy)).toMatchObject({ pid: process.pid, uid, exe: process.execPath });
      const tablesOnly = createLinuxProcessLookup({ procRoot: root, sockDiag: false });
      expect(await tablesOnly(pair.client, pair.proxy)).toBeUndefined();
      // The default on the real /proc uses netlink too, and agrees.
      expect(await createLinuxProcessLookup()(pair.client, pair.proxy)).toMatchObject({ pid: process.pid, uid });
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
