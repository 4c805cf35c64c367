// Hostile sizes through a real `oisp up`: a decompression bomb, 100 MB bodies both ways, 10,000 response
// headers, a 100 MB stream of SSE that never ends an event. The client must get exactly the bytes it would
// get directly (relayed intact), the sensor must stay bounded (peak RSS), and the event must say it saw less.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import fs from "node:fs";
import type http from "node:http";
import path from "node:path";
import zlib from "node:zlib";
import { sample } from "../../bench/lib/procs.ts";
import { byType, curl, startUp, status, tempHome, upstreamWith, waitFor, type Up, type Upstream } from "../fault/harness.ts";

const MB = 1024 * 1024;
const home = tempHome("oisp-fault-hostile-");
let upstream: Upstream;
let up: Up;
let bomb: Buffer;
const received: Record<string, string> = {};

const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
const piece = Buffer.alloc(64 * 1024, "a");

function handler(req: http.IncomingMessage, res: http.ServerResponse) {
  const hash = createHash("sha256");
  let size = 0;
  req.on("data", (c: Buffer) => {
    hash.update(c);
    size += c.length;
  });
  req.on("end", () => {
    const url = new URL(req.url ?? "/", "https://x");
    const what = url.searchParams.get("what");
    received[what ?? ""] = `${size}:${hash.digest("hex")}`;
    if (what === "bomb") {
      res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": bomb.length });
      return res.end(bomb);
    }
    if (what === "big") {
      res.writeHead(200, { "content-type": "application/json", "content-length": 100 * MB });
      let left = 100 * MB;
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, piece.length);
          left -= n;
          if (!res.write(piece.subarray(0, n))) return res.once("drain", pump);
        }
        res.end();
      };
      return pump();
    }
    if (what === "headers") {
      // 10,000 header fields, written raw (node's own writer is not the subject here).
      const lines = Array.from({ length: 10_000 }, (_, i) => `x-h${i}: v${i}\r\n`).join("");
      res.socket!.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${lines}content-length: 2\r\n\r\n{}`);
      return;
    }
    if (what === "endless") {
      // One SSE event that never ends, 100 MB of it, chunked.
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: ");
      let left = 1600;
      const pump = () => {
        while (left-- > 0) if (!res.write(piece)) return res.once("drain", pump);
        res.end();
      };
      return pump();
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ received: received[what ?? ""] }));
  });
}

beforeAll(async () => {
  bomb = zlib.gzipSync(Buffer.alloc(256 * MB), { level: 9 }); // ~250 KB that inflates to 256 MB
  upstream = await upstreamWith(home, handler);
  up = await startUp(upstream, { home, args: ["--redaction", "full"] });
});
afterAll(async () => {
  await up?.stop();
  await upstream?.close();
});

const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });

/** Same request direct and through oisp; the body hashed, the head as curl saw it (minus the proxy's CONNECT answer). */
async function both(what: string, extra: string[] = []) {
  const out: Array<{ code: number; sha: string; size: number; headers?: string }> = [];
  for (const proxy of [undefined, up.proxyUrl]) {
    const file = path.join(home, `out-${what}-${proxy ? "proxied" : "direct"}`);
    const hdr = `${file}.headers`;
    const r = await curl({ upstream, proxy, cacert: up.bothCas, path: `/v1/chat/completions?what=${what}`, body, maxTime: 60, extra: ["-o", file, "-D", hdr, ...extra] });
    const bytes = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
    out.push({ code: r.code, sha: sha(bytes), size: bytes.length, headers: fs.existsSync(hdr) ? fs.readFileSync(hdr, "latin1").replace(/^HTTP\/1\.1 200 Connection Established\r\n\r\n/i, "").replace(/^date:.*$/gim, "") : undefined });
    fs.rmSync(file, { force: true });
  }
  return { direct: out[0]!, proxied: out[1]! };
}

const lastResponse = () => byType(up.events(), "ai.response").at(-1)!;

describe("hostile sizes through oisp up", () => {
  test("decompression bomb: the gzip bytes reach the client intact; the sensor inflates at most its cap and says so", async () => {
    const { direct, proxied } = await both("bomb");
    expect(direct.code).toBe(0);
    expect(proxied).toEqual(direct);
    expect(proxied.size).toBe(bomb.length);
    const res = await waitFor("bomb response event", () => (byType(up.events(), "ai.response").length >= 1 ? lastResponse() : undefined));
    expect(JSON.stringify(res)).toMatch(/response_body_truncated|response_body_not_decoded/);
  }, 60_000);

  test("100 MB response and 100 MB request body: relayed byte for byte; the event is marked truncated", async () => {
    const n = byType(up.events(), "ai.response").length;
    const { direct, proxied } = await both("big");
    expect(direct.code).toBe(0);
    expect(proxied).toEqual(direct);
    expect(proxied.size).toBe(100 * MB);
    await waitFor("big response event", () => (byType(up.events(), "ai.response").length > n ? true : undefined));
    expect(JSON.stringify(lastResponse())).toContain("response_body_truncated");

    const upload = path.join(home, "upload.json");
    fs.writeFileSync(upload, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"${"b".repeat(100 * MB)}"}]}`);
    const expected = `${fs.statSync(upload).size}:${sha(fs.readFileSync(upload))}`;
    for (const proxy of [undefined, up.proxyUrl]) {
      const r = await curl({ upstream, proxy, cacert: up.bothCas, path: "/v1/chat/completions?what=upload", body: `@${upload}`, maxTime: 60 });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.body).received).toBe(expected);
    }
    fs.rmSync(upload);
    await waitFor("upload request event", () => byType(up.events(), "ai.request").find((e) => JSON.stringify(e).includes("request_body_truncated")));
  }, 90_000);

  test("10,000 response headers: the client gets the same head and body; the sensor reports it cannot decode, and carries on", async () => {
    const { direct, proxied } = await both("headers");
    expect(direct.code).toBe(0);
    expect(proxied.code).toBe(direct.code);
    expect(proxied.sha).toBe(direct.sha);
    expect(proxied.headers).toBe(direct.headers!);
    expect(direct.headers!.split("\r\n").filter((l) => l.startsWith("x-h")).length).toBe(10_000);
    await waitFor("protocol error counted in oisp status", async () => (/"protocolErrors":\s*[1-9]/.test(JSON.stringify(await status(home))) ? true : undefined), 10_000);
    const after = await curl({ upstream, proxy: up.proxyUrl, cacert: up.bothCas, body });
    expect(after.code).toBe(0);
  }, 30_000);

  test("an SSE event that never ends (100 MB): streamed through intact; the sensor stays bounded", async () => {
    const { direct, proxied } = await both("endless");
    expect(direct.code).toBe(0);
    expect(proxied).toEqual(direct);
    expect(proxied.size).toBe(6 + 1600 * piece.length);
    // The whole file's worth of hostile input went through the sensor: its peak memory stayed bounded.
    const s = sample(up.oisp.proc.pid)!;
    console.log(`oisp up after the hostile tests: RSS ${s.rssMb.toFixed(0)} MB, peak ${s.peakRssMb.toFixed(0)} MB`);
    expect(s.peakRssMb).toBeLessThan(500);
  }, 60_000);
});
