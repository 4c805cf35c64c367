// Security properties of the real processes: owner-only CA key, private IPC directory and a sensor that
// rejects a wrong token, the dashboard's Host and CSRF checks over a real socket, a proxy that refuses to
// relay to itself, and — in safe mode — no secret from any provider's request anywhere on disk or in logs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { encodeFrame, FrameDecoder } from "../../src/ipc/frames.ts";
import { byType, curl, freePort, runOisp, runOispOnce, startUp, tempHome, upstreamWith, waitFor, waitForPort, type Up, type Upstream } from "../fault/harness.ts";

const mode = (p: string) => fs.statSync(p).mode & 0o777;

describe("files and the IPC endpoint", () => {
  test("oisp ca init: the key is 0600 and its directory private", async () => {
    const home = tempHome("oisp-sec-ca-");
    const { code } = await runOispOnce(["ca", "init"], { home });
    expect(code).toBe(0);
    const key = fs.readdirSync(path.join(home, "ca")).find((f) => /key/.test(f));
    expect(key).toBeDefined();
    expect(mode(path.join(home, "ca", key!))).toBe(0o600);
    expect(mode(path.join(home, "ca")) & 0o077).toBe(0);
  });

  test("oisp sensor: run dir 0700, socket and token 0600; a wrong token gets no welcome and is counted", async () => {
    const home = tempHome("oisp-sec-ipc-");
    const sock = path.join(home, "run", "oisp.sock");
    const sensor = runOisp(["sensor", "--db", path.join(home, "e.db")], { home });
    try {
      await waitFor("socket", () => (fs.existsSync(sock) ? true : undefined));
      expect(mode(path.join(home, "run"))).toBe(0o700);
      expect(mode(sock) & 0o077).toBe(0);
      expect(mode(path.join(home, "run", "ipc.token"))).toBe(0o600);

      // A peer that can reach the socket but does not know the token.
      const answer = await new Promise<{ frames: string[]; closed: boolean }>((resolve) => {
        const c = net.connect(sock);
        const dec = new FrameDecoder();
        const frames: string[] = [];
        c.on("connect", () => {
          c.write(encodeFrame({ t: "hello", token: "not-the-token-" + "x".repeat(29), version: "0.1.0", pid: process.pid, runId: "01J00000000000000000000000" }));
          // Then try to inject a connection anyway.
          c.write(encodeFrame({ t: "open", meta: { connId: "evil", startedAt: 1, client: { ip: "127.0.0.1", port: 1 }, server: { ip: "1.1.1.1", port: 443 }, host: "api.openai.com", mode: "mitm", captureMethod: "mitm_proxy" } }));
        });
        c.on("data", (d: Buffer) => frames.push(...dec.push(d).frames.map((f) => f.t)));
        c.on("error", () => {});
        c.on("close", () => resolve({ frames, closed: true }));
        setTimeout(() => resolve({ frames, closed: false }), 3000).unref();
      });
      expect(answer.frames).not.toContain("welcome");
      expect(answer.closed).toBe(true);
      const st = await waitFor("status shows the auth failure", async () => {
        const { output } = await runOispOnce(["status", "--json"], { home });
        const json = JSON.parse(output.slice(output.indexOf("{")));
        return JSON.stringify(json).includes('"authFailures":1') ? json : undefined;
      }, 8000);
      expect(JSON.stringify(st)).not.toContain("evil");
    } finally {
      await sensor.stop();
    }
  });
});

describe("oisp up over real sockets", () => {
  let upstream: Upstream;
  let up: Up;
  let webPort: number;
  const home = tempHome("oisp-sec-up-");
  const hosts = ["api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com", "api.groq.com", "api.mistral.ai", "bedrock-runtime.us-east-1.amazonaws.com", "api.cohere.com", "example.com"];

  beforeAll(async () => {
    upstream = await upstreamWith(
      home,
      (req, res) => {
        req.resume();
        req.on("end", () => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ id: "x", object: "chat.completion", model: "m", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }] }));
        });
      },
      hosts,
    );
    webPort = await freePort();
    up = await startUp(upstream, { home, hosts, args: ["--web-port", String(webPort)] });
    await waitForPort(webPort);
  });
  afterAll(async () => {
    await up?.stop();
    await upstream?.close();
  });

  test("the proxy refuses to relay to itself (CONNECT to its own port, and a --resolve that points back at it)", async () => {
    const self = await curl({ upstream, proxy: up.proxyUrl, cacert: up.bothCas, host: "127.0.0.1", path: "/", extra: ["-o", "/dev/null", "-w", "%{http_connect}"] });
    expect(self.code).not.toBe(0);
    const raw = await new Promise<string>((resolve) => {
      const s = net.connect(up.port, "127.0.0.1", () => s.write(`CONNECT 127.0.0.1:${up.port} HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n\r\n`));
      let got = "";
      s.on("data", (d) => (got += d));
      s.on("close", () => resolve(got));
      s.on("error", () => resolve(got));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw).toContain("loop");
    const plain = await new Promise<string>((resolve) => {
      const s = net.connect(up.port, "127.0.0.1", () => s.write(`GET http://localhost:${up.port}/ HTTP/1.1\r\nHost: localhost:${up.port}\r\n\r\n`));
      let got = "";
      s.on("data", (d) => (got += d));
      s.on("close", () => resolve(got));
      s.on("error", () => resolve(got));
    });
    expect(plain).toMatch(/^HTTP\/1\.1 400 /);
    // And the proxy is still fine afterwards.
    const ok = await curl({ upstream, proxy: up.proxyUrl, cacert: up.bothCas, body: "{}" });
    expect(ok.code).toBe(0);
  });

  test("dashboard over TCP: a rebinding Host gets 421, a POST without the CSRF token 403, and nothing changes", async () => {
    const base = `http://127.0.0.1:${webPort}`;
    const home200 = await fetch(`${base}/`);
    expect(home200.status).toBe(200);
    const rebinding = await fetch(`${base}/`, { headers: { Host: "attacker.example:7777" } });
    expect(rebinding.status).toBe(421);
    const before = fs.existsSync(path.join(home, "settings.json")) ? fs.readFileSync(path.join(home, "settings.json"), "utf8") : "";
    const csrf = await fetch(`${base}/control/settings`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "Redaction=full" });
    expect(csrf.status).toBe(403);
    const crossSite = await fetch(`${base}/control/settings`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "cross-site" }, body: "Redaction=full" });
    expect(crossSite.status).toBe(403);
    const after = fs.existsSync(path.join(home, "settings.json")) ? fs.readFileSync(path.join(home, "settings.json"), "utf8") : "";
    expect(after).toBe(before);
  });

  test("safe mode: no secret from any provider's request is in the database, WAL, JSONL or logs", async () => {
    const secrets = {
      openai: "sk-proj-SecOpenAiKey0123456789abcdefGHIJ",
      anthropic: "sk-ant-api03-SecAnthropicKey0123456789abc",
      gemini: "AIzaSySecGeminiKey0123456789abcdefgh",
      groq: "gsk_SecGroqKey0123456789abcdefghijklm",
      mistral: "SecMistralKey0123456789abcdefghij",
      awsAccess: "AKIAIOSFODNN7SECTEST",
      awsSecret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY",
      cohere: "SecCohereKey0123456789abcdefghijklmnop",
      jwt: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWN0ZXN0In0.c2VjcmV0c2lnbmF0dXJlc2VjcmV0",
      password: "hunter2-Correct-Horse-Battery",
      promptKey: "sk-proj-PastedIntoPromptKey0123456789xyz",
    };
    const prompt = `my password=${secrets.password} and token ${secrets.jwt} and key ${secrets.promptKey} aws_access_key_id=${secrets.awsAccess}\naws_secret_access_key = ${secrets.awsSecret}`;
    const chat = JSON.stringify({ model: "m", messages: [{ role: "user", content: prompt }] });
    const calls: Array<{ host: string; path: string; headers: string[] }> = [
      { host: "api.openai.com", path: "/v1/chat/completions", headers: [`authorization: Bearer ${secrets.openai}`] },
      { host: "api.anthropic.com", path: "/v1/messages", headers: [`x-api-key: ${secrets.anthropic}`, "anthropic-version: 2023-06-01"] },
      { host: "generativelanguage.googleapis.com", path: `/v1beta/models/gemini-2.0-flash:generateContent?key=${secrets.gemini}`, headers: [] },
      { host: "generativelanguage.googleapis.com", path: "/v1beta/models/gemini-2.0-flash:generateContent", headers: [`x-goog-api-key: ${secrets.gemini}`] },
      { host: "api.groq.com", path: "/openai/v1/chat/completions", headers: [`authorization: Bearer ${secrets.groq}`] },
      { host: "api.mistral.ai", path: "/v1/chat/completions", headers: [`authorization: Bearer ${secrets.mistral}`] },
      { host: "api.cohere.com", path: "/v2/chat", headers: [`authorization: bearer ${secrets.cohere}`] },
      {
        host: "bedrock-runtime.us-east-1.amazonaws.com",
        path: "/model/anthropic.claude-3-haiku-20240307-v1:0/converse",
        headers: [`authorization: AWS4-HMAC-SHA256 Credential=${secrets.awsAccess}/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=abcdef0123456789`, `x-amz-security-token: ${secrets.awsSecret}`],
      },
    ];
    for (const c of calls) {
      const r = await curl({ upstream, proxy: up.proxyUrl, cacert: up.bothCas, host: c.host, path: c.path, body: chat, extra: c.headers.flatMap((h) => ["-H", h]) });
      expect(r.code).toBe(0);
    }
    await waitFor("every call stored", () => (byType(up.events(), "ai.request").length >= calls.length ? true : undefined), 10_000);
    await Bun.sleep(2500); // the status file and the store's batch both settle
    const files = [up.dbPath, `${up.dbPath}-wal`, up.jsonlPath, ...fs.readdirSync(path.join(home, "run")).map((f) => path.join(home, "run", f))].filter((f) => fs.existsSync(f) && fs.statSync(f).isFile());
    const haystacks = [...files.map((f) => ({ where: f, text: fs.readFileSync(f).toString("latin1") })), { where: "oisp output", text: up.oisp.output() }];
    expect(haystacks.find((h) => h.where === up.dbPath)?.text.length).toBeGreaterThan(0);
    const leaks: string[] = [];
    for (const [name, secret] of Object.entries(secrets)) for (const h of haystacks) if (h.text.includes(secret)) leaks.push(`${name} in ${h.where}`);
    expect(leaks).toEqual([]);
    // The check can fail: the stored requests are there, with their providers.
    const providers = new Set(byType(up.events(), "ai.request").map((e) => e.data.provider?.name));
    expect(providers.size).toBeGreaterThanOrEqual(5);
  });
});
