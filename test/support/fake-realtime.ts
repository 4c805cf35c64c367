// A fake OpenAI Realtime API server: TLS on 127.0.0.1, the WebSocket handshake by hand, frames decoded
// with the sensor's own WebSocketDecoder (the fake only needs to read what a real client sends) and
// server frames written unmasked. It sends session.created in the same write as the 101, so the sensor
// must keep bytes that arrive together with the upgrade head. Answers follow the Realtime event order.
import { createHash } from "node:crypto";
import type { AddressInfo, Socket } from "node:net";
import tls from "node:tls";
import { WebSocketDecoder } from "../../src/decode/websocket.ts";
import { createTestCa, type TlsUpstream } from "./upstream.ts";

export const REALTIME = {
  sessionId: "sess_C9xQ1rT7",
  model: "gpt-4o-realtime-preview-2024-12-17",
  text: ["Hello ", "from ", "realtime."],
  callId: "call_rt_weather_1",
  usage: {
    total_tokens: 245,
    input_tokens: 187,
    output_tokens: 58,
    input_token_details: { cached_tokens: 64, text_tokens: 123, audio_tokens: 64 },
    output_token_details: { text_tokens: 18, audio_tokens: 40 },
  },
};

function wsFrame(text: string): Buffer {
  const data = Buffer.from(text);
  const head = data.length < 126 ? Buffer.from([0x81, data.length]) : Buffer.from([0x81, 126, data.length >> 8, data.length & 0xff]);
  return Buffer.concat([head, data]);
}

export async function startFakeRealtime(hosts: string[]): Promise<TlsUpstream & { received: string[] }> {
  const ca = await createTestCa();
  const { cert, key } = await ca.issue([...hosts, "localhost", "127.0.0.1"]);
  const received: string[] = [];
  const sockets = new Set<Socket>();
  const server = tls.createServer({ cert, key, ALPNProtocols: ["http/1.1"] }, (sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    let head = Buffer.alloc(0);
    let decoder: WebSocketDecoder | undefined;
    let session: Record<string, unknown> = {};
    let lastItem: Record<string, unknown> | undefined;
    let n = 0;
    const send = (ev: Record<string, unknown>) => sock.write(wsFrame(JSON.stringify({ event_id: `event_${n++}`, ...ev })));
    const onMessage = (text: string) => {
      received.push(text);
      const ev = JSON.parse(text) as Record<string, any>;
      if (ev.type === "session.update") {
        session = { ...session, ...ev.session };
        // No model here: the dated model id is only in session.created, the frame sent with the 101.
        send({ type: "session.updated", session: { id: REALTIME.sessionId, object: "realtime.session", ...session } });
      } else if (ev.type === "conversation.item.create") {
        lastItem = ev.item;
        send({ type: "conversation.item.created", previous_item_id: null, item: { id: `item_${n}`, ...ev.item } });
      } else if (ev.type === "response.create") respond();
    };
    const respond = () => {
      const id = `resp_rt_${n}`;
      send({ type: "response.created", response: { id, object: "realtime.response", status: "in_progress", output: [], usage: null } });
      const wantsTool = Array.isArray(session.tools) && session.tools.length > 0 && lastItem?.type !== "function_call_output";
      let output: unknown[];
      if (wantsTool) {
        const item = { id: "item_fc1", type: "function_call", status: "completed", name: "get_weather", call_id: REALTIME.callId, arguments: '{"city":"Nice"}' };
        send({ type: "response.output_item.added", response_id: id, output_index: 0, item: { ...item, status: "in_progress", arguments: "" } });
        send({ type: "response.function_call_arguments.delta", response_id: id, item_id: item.id, output_index: 0, call_id: REALTIME.callId, delta: '{"city":"Nice"}' });
        send({ type: "response.function_call_arguments.done", response_id: id, item_id: item.id, output_index: 0, call_id: REALTIME.callId, name: "get_weather", arguments: item.arguments });
        output = [item];
      } else {
        const itemId = "item_msg1";
        for (const delta of REALTIME.text) send({ type: "response.text.delta", response_id: id, item_id: itemId, output_index: 0, content_index: 0, delta });
        send({ type: "response.text.done", response_id: id, item_id: itemId, output_index: 0, content_index: 0, text: REALTIME.text.join("") });
        output = [{ id: itemId, object: "realtime.item", type: "message", status: "completed", role: "assistant", content: [{ type: "text", text: REALTIME.text.join("") }] }];
      }
      send({ type: "response.done", response: { id, object: "realtime.response", status: "completed", status_details: null, output, usage: REALTIME.usage } });
    };
    sock.on("data", (chunk: Buffer) => {
      if (!decoder) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        const text = head.subarray(0, end).toString("latin1");
        const wsKey = /sec-websocket-key:\s*(\S+)/i.exec(text)?.[1] ?? "";
        if (!/authorization: Bearer \S+/i.test(text) || !/^GET \/v1\/realtime\?model=/.test(text)) {
          sock.end("HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n");
          return;
        }
        const accept = createHash("sha1").update(`${wsKey}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
        const created = wsFrame(JSON.stringify({ event_id: "event_0", type: "session.created", session: { id: REALTIME.sessionId, object: "realtime.session", model: REALTIME.model, instructions: "Default instructions.", tools: [] } }));
        // The 101 and the first frame in one write: one TCP segment, one TLS record.
        sock.write(Buffer.concat([Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`), created]));
        n = 1;
        decoder = new WebSocketDecoder();
        chunk = head.subarray(end + 4);
        if (chunk.length === 0) return;
      }
      for (const item of decoder.push(chunk, Date.now())) {
        if (item.type === "message") onMessage(Buffer.from(item.data).toString("utf8"));
        else if (item.type === "close") sock.end(Buffer.from([0x88, 0x00]));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    caPem: ca.certPem,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
