// Upstream and client failures through a real `oisp up`: the client must see what it would see talking to
// the upstream directly, and the stored events must say what happened (status, partial content, error).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import type http from "node:http";
import { openConnection } from "../../bench/lib/loadgen.ts";
import { byType, curl, eventsOfType, startUp, tempHome, upstreamWith, waitFor, type Up, type Upstream } from "../fault/harness.ts";

const home = tempHome("oisp-fault-up-");
let upstream: Upstream;
let up: Up;
const upstreamSaw: string[] = [];

const sseHead = (res: http.ServerResponse) => res.writeHead(200, { "content-type": "text/event-stream" });
const delta = (text: string) => `data: ${JSON.stringify({ id: "chatcmpl-f", object: "chat.completion.chunk", model: "gpt-4o-mini", choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;

beforeAll(async () => {
  upstream = await upstreamWith(home, (req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const model = (JSON.parse(body || "{}") as { model?: string }).model;
      res.on("close", () => upstreamSaw.push(`${model}: closed${res.writableFinished ? "" : " early"}`));
      if (model === "reset-mid-stream") {
        sseHead(res);
        res.write(delta("Partial "));
        res.write(delta("answer"));
        setTimeout(() => res.socket?.destroy(), 100);
      } else if (model === "never-answers") {
        // Reads the request, then says nothing.
      } else if (model === "slow-stream") {
        sseHead(res);
        let i = 0;
        const timer = setInterval(() => {
          if (res.destroyed) return clearInterval(timer);
          res.write(delta(`tok${i++} `));
        }, 20);
        res.on("close", () => clearInterval(timer));
      } else {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ id: "chatcmpl-ok", object: "chat.completion", model: "gpt-4o-mini", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
      }
    });
  });
  up = await startUp(upstream, { home, args: ["--redaction", "full"] });
});

afterAll(async () => {
  await up?.stop();
  await upstream?.close();
});

const request = (model: string, stream = true) => JSON.stringify({ model, stream, messages: [{ role: "user", content: "hi" }] });

describe("faults between client and upstream, through oisp up", () => {
  test("upstream resets mid-stream: same curl outcome and partial body as direct; the event records the partial content and the error", async () => {
    const direct = await curl({ upstream, cacert: up.bothCas, body: request("reset-mid-stream") });
    const proxied = await curl({ upstream, proxy: up.proxyUrl, cacert: up.bothCas, body: request("reset-mid-stream") });
    expect(direct.code).not.toBe(0);
    expect(proxied.code).toBe(direct.code);
    expect(proxied.body).toBe(direct.body);
    expect(proxied.body).toContain("Partial ");

    const [res] = await eventsOfType(up, "ai.response");
    expect(res!.data.status_code).toBe(200);
    expect(res!.data.success).toBe(false);
    expect(res!.data.error).toEqual({ type: "connection_closed", message: "the connection ended before the response did" });
    expect(JSON.stringify(res!.data)).toContain("Partial answer");
  });

  test("upstream never answers: curl times out the same way; the event says no response", async () => {
    const before = byType(up.events(), "ai.response").length;
    const direct = await curl({ upstream, cacert: up.bothCas, body: request("never-answers", false), maxTime: 1.5 });
    const proxied = await curl({ upstream, proxy: up.proxyUrl, cacert: up.bothCas, body: request("never-answers", false), maxTime: 1.5 });
    expect(direct.code).toBe(28); // operation timed out
    expect(proxied.code).toBe(28);
    const responses = await eventsOfType(up, "ai.response", before + 1);
    const res = responses.find((r) => r.data.model?.id === "never-answers" || JSON.stringify(r.data).includes("never-answers")) ?? responses.at(-1)!;
    expect(res.data.success).toBe(false);
    expect(res.data.status_code).toBe(0);
    expect(res.data.error.type).toBe("no_response");
  });

  test("client aborts mid-stream: the upstream sees the close promptly; the event keeps what was streamed and says it was cut", async () => {
    const before = byType(up.events(), "ai.response").length;
    const sock = await openConnection({ name: "oisp", upstreamPort: upstream.port, proxy: { port: up.port, authority: `${"api.openai.com"}:443` }, servername: "api.openai.com", ca: fs.readFileSync(up.bothCas, "utf8") });
    const body = request("slow-stream");
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    let got = "";
    await new Promise<void>((resolve) => {
      sock.on("data", (d: Buffer) => {
        got += d.toString();
        if (/tok2 /.test(got)) resolve();
      });
    });
    const abortedAt = Date.now();
    sock.destroy();
    await waitFor("upstream saw the abort", () => (upstreamSaw.includes("slow-stream: closed early") ? true : undefined), 3000);
    expect(Date.now() - abortedAt).toBeLessThan(3000);

    const responses = await eventsOfType(up, "ai.response", before + 1);
    const res = responses.at(-1)!;
    expect(res.data.success).toBe(false);
    expect(res.data.status_code).toBe(200);
    expect(JSON.stringify(res.data)).toContain("tok0 tok1 tok2");
    expect(res.data.error.type).toBe("connection_closed");
  });

  test("after all of that, an ordinary call through the same proxy still works and is recorded", async () => {
    const r = await curl({ upstream, proxy: up.proxyUrl, cacert: up.bothCas, body: request("gpt-4o-mini", false) });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.body).choices[0].message.content).toBe("ok");
    await waitFor("ok response event", () => (byType(up.events(), "ai.response").some((e) => e.data.success === true) ? true : undefined));
  });
});
