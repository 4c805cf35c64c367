// An HTTP/2 client process for end-to-end tests: node:http2 over a CONNECT tunnel through the oisp proxy,
// many concurrent streams on one connection, each with its own prompt.
// Usage: bun h2-client.ts <streams> [stream|plain|reset]   env: OISP_PROXY, OISP_CA_FILE, OPENAI_API_KEY,
//   RUN_TAG (appended to every prompt, so a test can find its events without relying on the process)
// "reset": every odd stream sends half its body and then cancels (RST_STREAM); the others complete.
// Prints one JSON line: the ALPN protocol, how many TLS connections were used, and every prompt's answer.
import fs from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";

const streams = Number(process.argv[2] ?? 100);
const streaming = process.argv[3] === "stream";
const resetOdd = process.argv[3] === "reset";
const proxy = new URL(process.env.OISP_PROXY!);
const ca = fs.readFileSync(process.env.OISP_CA_FILE!, "utf8");
const host = "api.openai.com";

/** CONNECT host:443 through the proxy, then TLS with ALPN h2 and our CA. */
async function tunnel(): Promise<tls.TLSSocket> {
  const raw = net.connect(Number(proxy.port), proxy.hostname);
  await new Promise((r, j) => raw.once("connect", r).once("error", j));
  raw.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
  let head = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      raw.off("data", onData);
      if (!/^HTTP\/1\.1 200/.test(head)) reject(new Error(`CONNECT refused: ${head.split("\r\n")[0]}`));
      else resolve();
    };
    raw.on("data", onData);
    raw.once("error", reject);
  });
  const sock = tls.connect({ socket: raw, servername: host, ca, ALPNProtocols: ["h2"] });
  await new Promise((r, j) => sock.once("secureConnect", r).once("error", j));
  return sock;
}

const sock = await tunnel();
const alpn = sock.alpnProtocol;
const session = http2.connect(`https://${host}`, { createConnection: () => sock });
session.on("error", (e) => console.error("session error", e));

function ask(i: number): Promise<{ prompt: string; answer: string; status: number }> {
  const prompt = `prompt number ${i} of ${streams}${process.env.RUN_TAG ? ` [${process.env.RUN_TAG}]` : ""}`;
  const body = JSON.stringify({ model: "echo-model", stream: streaming, messages: [{ role: "user", content: prompt }] });
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": "/v1/chat/completions",
      "content-type": "application/json",
      authorization: `Bearer ${process.env.OPENAI_API_KEY}`,
      // A distinct header per stream grows the HPACK dynamic table on both sides.
      "x-stream-tag": `tag-${i}-${"x".repeat(i % 17)}`,
    });
    let status = 0;
    let text = "";
    req.setEncoding("utf8");
    req.on("response", (h) => (status = Number(h[":status"])));
    req.on("data", (d: string) => (text += d));
    const reset = resetOdd && i % 2 === 1;
    req.on("end", () => {
      if (reset) return;
      let answer = "";
      if (streaming) {
        for (const line of text.split("\n")) {
          if (!line.startsWith("data: {")) continue;
          answer += JSON.parse(line.slice(6)).choices[0]?.delta?.content ?? "";
        }
      } else answer = JSON.parse(text).choices[0].message.content;
      resolve({ prompt, answer, status });
    });
    req.on("error", reject);
    if (reset) {
      req.on("close", () => resolve({ prompt, answer: "(reset)", status: 0 }));
      req.write(body.slice(0, 30));
      setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 20);
      return;
    }
    req.end(body);
  });
}

const results = await Promise.all(Array.from({ length: streams }, (_, i) => ask(i)));
session.close();
console.log(JSON.stringify({ alpn, results }));
