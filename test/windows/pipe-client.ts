// A peer of `oisp sensor` for the Wine tests, compiled into a Windows exe: connects to a named pipe,
// sends a hello with the given token and prints one JSON line saying whether the sensor welcomed it or
// closed the pipe.
// Usage: pipe-client <pipe path> <token | @token-file>
import fs from "node:fs";
import net from "node:net";
import { encodeFrame, FrameDecoder } from "../../src/ipc/frames.ts";

const [pipe, tokenArg] = process.argv.slice(2) as [string, string];
const token = tokenArg.startsWith("@") ? fs.readFileSync(tokenArg.slice(1), "utf8").trim() : tokenArg;

const result = await new Promise<{ result: string; detail?: string }>((resolve) => {
  const sock = net.createConnection(pipe);
  const dec = new FrameDecoder();
  const timer = setTimeout(() => (sock.destroy(), resolve({ result: "timeout" })), 8000);
  const done = (r: { result: string; detail?: string }) => {
    clearTimeout(timer);
    resolve(r);
  };
  sock.on("connect", () => sock.write(encodeFrame({ t: "hello", token, version: "0.0.0-pipe-client", pid: process.pid, runId: "pipe-client" })));
  sock.on("data", (chunk: Buffer) => {
    for (const f of dec.push(chunk).frames) {
      if (f.t !== "welcome") continue;
      done({ result: "welcome", detail: f.version });
      sock.end();
    }
  });
  sock.on("error", (e) => done({ result: "error", detail: e.message }));
  sock.on("close", () => done({ result: "closed" }));
});
console.log(JSON.stringify({ platform: process.platform, pipe, ...result }));
process.exit(0);
