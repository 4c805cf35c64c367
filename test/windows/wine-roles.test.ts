// The two roles of the Windows product as the real dist/oisp.exe under Wine: `oisp sensor` on its default
// named pipe and `oisp redirect` (WinDivert mode, the Windows default) with the stand-in WinDivert.dll.
// The stand-in "captures" packets the test writes (a SOCKET-layer CONNECT, a DNS answer for
// api.openai.com, the SYN of a connection to that address); the redirector reflects the SYN; the test
// then makes the TCP connection the reflected SYN stands for (curl bound to the server's address and
// the client's port — on Windows the stack would do it), and the whole path runs for real:
// divert listener → directory → TLS interception with the product CA → upstream → tap → named pipe →
// sensor → OISP events. Ctrl+C then stops the redirector, which shuts down and closes both handles.
// Also: a peer with a wrong token is refused over the named pipe. Not the real driver.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ADDRESS_SIZE, EVENT_SOCKET_CONNECT, LAYER_NETWORK, LAYER_SOCKET, readNetwork, writeNetwork, writeSocket } from "../../ffi/windivert-address.ts";
import { formatIp, isParsed, parseIp, parsePacket } from "../../src/capture/windivert/packet.ts";
import { runCurl } from "../support/e2e-harness.ts";
import { fakeProviderHandler } from "../support/fake-providers.ts";
import { freePort } from "../support/oisp-process.ts";
import { startTlsUpstream } from "../support/upstream.ts";
import { dnsResponse, tcpPacket, udpPacket } from "./packets.ts";
import { skipWine, stopWine, waitUntil, wineBuild, wineMissing, wineRun, wineStart, winPath, type WineBuild, type WineProcess } from "./wine-env.ts";

/** The client's address (C) and the AI host's (S): both on Linux's loopback, where Wine's sockets live. */
const C = "127.0.0.1";
const S = "127.0.0.2";

function record(addr: Uint8Array, packet: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(packet.length);
  return Buffer.concat([len, addr, packet]);
}

function networkRecord(outbound: boolean, packet: Uint8Array): Buffer {
  const a = new Uint8Array(ADDRESS_SIZE);
  writeNetwork(a, 0, { layer: LAYER_NETWORK, outbound, ifIdx: 7 });
  return record(a, packet);
}

function sentPackets(file: string) {
  if (!fs.existsSync(file)) return [];
  const b = fs.readFileSync(file);
  const out: { src: string; sport: number; dst: string; dport: number; flags: number; outbound: boolean }[] = [];
  for (let o = 0; o + 4 + ADDRESS_SIZE <= b.length; ) {
    const len = b.readUInt32LE(o);
    const pkt = new Uint8Array(b.subarray(o + 4 + ADDRESS_SIZE, o + 4 + ADDRESS_SIZE + len));
    const p = parsePacket(pkt);
    if (isParsed(p)) {
      out.push({
        src: formatIp(pkt, p.srcOff, p.addrLen), sport: p.srcPort, dst: formatIp(pkt, p.dstOff, p.addrLen), dport: p.dstPort,
        flags: p.tcpFlags, outbound: readNetwork(new Uint8Array(b.subarray(o + 4, o + 4 + ADDRESS_SIZE))).outbound,
      });
    }
    o += 4 + ADDRESS_SIZE + len;
  }
  return out;
}

function jsonl(file: string): Record<string, any>[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

if (skipWine) {
  test.skip(`oisp.exe sensor + redirect under Wine: SKIPPED (OISP_SKIP_WINE=1), ${wineMissing} is not installed`, () => {});
} else {
  describe("oisp.exe sensor + redirect under Wine", () => {
    let w: WineBuild;
    let work = "";
    let home = "";
    let sensor: WineProcess | undefined;
    let redirect: WineProcess | undefined;
    let pipe = "";
    const homeEnv = () => ({ OISP_HOME: winPath(home) });

    beforeAll(async () => {
      w = await wineBuild();
      w.compile("pipe-client", ["test/windows/pipe-client.ts"]);
      work = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-wine-roles-"));
      home = path.join(work, "home");
      fs.mkdirSync(home);
      const ca = await wineRun(w.oisp, ["ca", "init"], homeEnv());
      if (ca.code !== 0) throw new Error(`oisp.exe ca init failed: ${ca.out}${ca.err}`);
      sensor = wineStart(w.oisp, ["sensor", "-v", "--output", winPath(path.join(work, "events.jsonl"))], homeEnv());
      pipe = (await sensor.waitFor(/listening on (\\\\\.\\pipe\\\S+),/, 60_000))[1]!;
    }, 300_000);

    afterAll(() => {
      redirect?.kill();
      sensor?.kill();
      stopWine();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    test("the sensor listens on its default per-user named pipe", () => {
      expect(pipe).toMatch(/^\\\\\.\\pipe\\oisp-sensor-[A-Za-z0-9._-]+$/);
    });

    test("a second sensor on the same pipe name is refused before it writes a token (Wine ignores FILE_FLAG_FIRST_PIPE_INSTANCE: both would listen)", async () => {
      const other = path.join(work, "home-other");
      fs.mkdirSync(other);
      const r = await wineRun(w.oisp, ["sensor"], { OISP_HOME: winPath(other) }, 60_000);
      expect(r.code).not.toBe(0);
      expect(r.err).toContain(`another sensor is already listening on ${pipe}`);
      expect(fs.existsSync(path.join(other, "run", "ipc.token"))).toBe(false);
    }, 90_000);

    test("a peer with a wrong token is refused over the named pipe; the sensor's token is accepted", async () => {
      const client = path.join(w.dir, "pipe-client.exe");
      const bad = await wineRun(client, [pipe, "not-the-token"], {}, 30_000);
      expect(JSON.parse(bad.out.trim().split("\n").pop()!)).toMatchObject({ platform: "win32", result: "closed" });
      await sensor!.waitFor(/dropped peer: wrong token from pid \d+/);
      const good = await wineRun(client, [pipe, `@${winPath(path.join(home, "run", "ipc.token"))}`], {}, 30_000);
      expect(JSON.parse(good.out.trim().split("\n").pop()!)).toMatchObject({ platform: "win32", result: "welcome" });
    }, 60_000);

    test("redirect (WinDivert mode by default): filters opened, IPC over the pipe, a diverted connection becomes OISP events, Ctrl+C closes the handles", async () => {
      const stub = path.join(work, "stub");
      fs.mkdirSync(stub);
      const upstream = await startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler() });
      try {
        const upstreamCa = path.join(work, "upstream-ca.pem");
        fs.writeFileSync(upstreamCa, upstream.caPem);
        const divertPort = await freePort();
        redirect = wineStart(
          w.oisp,
          ["redirect", "--windivert-dir", winPath(w.windivertDir), "--port", String(divertPort), "--tls-mitm",
            "--upstream-ca", winPath(upstreamCa), "--resolve", `api.openai.com:443:127.0.0.1:${upstream.port}`, "-v"],
          { ...homeEnv(), WINDIVERT_STUB_DIR: winPath(stub), WINDIVERT_STUB_MAX_WAIT_MS: "120000" },
        );
        await redirect.waitFor(new RegExp(`WinDivert diverting AI connections to port ${divertPort}, TLS interception on, sensor at ${pipe.replaceAll("\\", "\\\\").replaceAll(".", "\\.")}`), 60_000);
        // The sensor accepted the redirector's hello (its token, read from the user's data dir).
        const redirectorPid = Number((await sensor!.waitFor(/redirector pid (\d+) run \S+ \(version [^)]+\) connected/))[1]);
        expect(redirectorPid).toBeGreaterThan(0);

        const calls = () => fs.readFileSync(path.join(stub, "calls.log"), "utf8");
        expect(calls()).toContain("open layer=3 priority=0 flags=5 filter=tcp and (event == CONNECT or event == CLOSE)");
        const netOpen = calls().split("\n").find((l) => l.startsWith("open layer=0 "))!;
        expect(netOpen).toContain("(udp and udp.SrcPort == 53 and (inbound or loopback))");
        expect(netOpen).toContain(`tcp.SrcPort == ${divertPort}`);
        expect(netOpen).toContain(`(inbound and !loopback and tcp and tcp.DstPort == ${divertPort})`);

        // What the driver would see when an app connects to api.openai.com: the SOCKET-layer CONNECT (the
        // owning PID: here the sensor's, a live Windows process whose image path Wine can report), the
        // DNS answer, the SYN.
        const status = JSON.parse(fs.readFileSync(path.join(home, "run", "status.json"), "utf8"));
        const appPid: number = status.pid;
        const cp = 40000 + Math.floor(Math.random() * 20000);
        const sock = new Uint8Array(ADDRESS_SIZE);
        writeSocket(sock, 0, {
          layer: LAYER_SOCKET, event: EVENT_SOCKET_CONNECT, sniffed: true, outbound: true, endpointId: 1n, parentEndpointId: 0n,
          processId: appPid, localAddr: parseIp(C)!, remoteAddr: parseIp(S)!, localPort: cp, remotePort: 443, protocol: 6,
        });
        fs.appendFileSync(path.join(stub, `recv-${LAYER_SOCKET}`), record(sock, new Uint8Array(0)));
        await Bun.sleep(300);
        fs.appendFileSync(path.join(stub, `recv-${LAYER_NETWORK}`), Buffer.concat([
          networkRecord(false, udpPacket({ src: "10.0.0.1", dst: C, sport: 53, dport: 53111, payload: dnsResponse("api.openai.com", "A", [{ name: "api.openai.com", type: "A", value: S, ttl: 300 }]) })),
          networkRecord(true, tcpPacket({ src: C, dst: S, sport: cp, dport: 443, flags: 0x02, seq: 1234567 })),
        ]));
        // Reflected: S:cp → C:divertPort, injected inbound. The DNS answer is passed on unchanged.
        const sent = await waitUntil("the reflected SYN in sent-0", () => {
          const s = sentPackets(path.join(stub, `sent-${LAYER_NETWORK}`));
          return s.length >= 2 ? s : undefined;
        });
        expect(sent).toContainEqual({ src: "10.0.0.1", sport: 53, dst: C, dport: 53111, flags: 0, outbound: false });
        expect(sent).toContainEqual({ src: S, sport: cp, dst: C, dport: divertPort, flags: 0x02, outbound: false });

        // The connection the reflected SYN opens: from S:cp to the divert port (the Windows stack's job).
        const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "through oisp.exe under Wine" }] });
        const curl = await runCurl([
          "--max-time", "20", "--interface", S, "--local-port", String(cp), "--connect-to", `api.openai.com:443:${C}:${divertPort}`,
          "--cacert", path.join(home, "oisp-ca.crt"), "https://api.openai.com/v1/chat/completions",
          "-H", "content-type: application/json", "-H", "authorization: Bearer sk-test-wine", "-d", body,
        ]);
        expect(curl.err).toBe("");
        expect(curl.code).toBe(0);
        expect(JSON.parse(curl.out)).toMatchObject({ object: "chat.completion", model: expect.stringContaining("gpt-4o-mini") });

        // The sensor (over the named pipe) made OISP events of it, attributed to the SOCKET layer's PID.
        const events = await waitUntil("ai.request and ai.response in the sensor's JSONL", () => {
          const e = jsonl(path.join(work, "events.jsonl"));
          return e.some((x) => x.event_type === "ai.response") ? e : undefined;
        }, 20_000);
        const req = events.find((e) => e.event_type === "ai.request")!;
        expect(req).toBeDefined();
        expect(req.source).toMatchObject({ capture_point: "windivert" });
        expect(req.process).toMatchObject({ pid: appPid, name: "oisp.exe" });
        expect(req.data.provider).toMatchObject({ name: "openai", endpoint: "https://api.openai.com/v1/chat/completions" });
        expect(req.data.model).toMatchObject({ id: "gpt-4o-mini" });
        expect(JSON.stringify(events)).not.toContain("sk-test-wine");

        // Ctrl+C: WinDivertShutdown on both handles from the main thread, then WinDivertClose; exit 0.
        redirect.interrupt();
        expect(await redirect.exited).toBe(0);
        const log = calls();
        expect(log.match(/^shutdown layer=\d how=3$/gm)?.sort()).toEqual(["shutdown layer=0 how=3", "shutdown layer=3 how=3"]);
        expect(log.match(/^close layer=\d$/gm)?.sort()).toEqual(["close layer=0", "close layer=3"]);
        expect(log.indexOf("close layer=0")).toBeGreaterThan(log.indexOf("shutdown layer=0"));
      } finally {
        await upstream.close();
      }
      sensor!.interrupt();
      expect(await sensor!.exited).toBe(0);
    }, 150_000);
  });
}
