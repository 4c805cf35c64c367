// WebSocket frame decoder on a real Bun WebSocket conversation (captured through a TCP relay) and
// on frames built by hand with a real zlib deflater (context takeover), fragmentation and errors.
import { describe, expect, test } from "bun:test";
import net from "node:net";
import zlib from "node:zlib";
import { HttpConnectionDecoder } from "../../src/decode/connection.ts";
import { WebSocketConnection, WebSocketDecoder, negotiatedDeflate, type WsItem } from "../../src/decode/websocket.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const concat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));

async function captureWebSocket(messages: string[]): Promise<Array<{ dir: "c2s" | "s2c"; data: Uint8Array }>> {
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req, srv) {
      if (srv.upgrade(req)) return;
      return new Response("no", { status: 400 });
    },
    websocket: {
      perMessageDeflate: true,
      message(ws, m) {
        ws.send(`echo:${m}`);
        if (String(m).startsWith("big")) ws.send(String(m).toUpperCase().repeat(3));
      },
    },
  });
  const steps: Array<{ dir: "c2s" | "s2c"; data: Uint8Array }> = [];
  const relay = net.createServer((down) => {
    const up = net.connect(Number(server.port), "127.0.0.1");
    down.on("data", (d: Buffer) => {
      steps.push({ dir: "c2s", data: new Uint8Array(d) });
      up.write(d);
    });
    up.on("data", (d: Buffer) => {
      steps.push({ dir: "s2c", data: new Uint8Array(d) });
      down.write(d);
    });
    down.on("end", () => up.end());
    up.on("end", () => down.end());
    down.on("error", () => up.destroy());
    up.on("error", () => down.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
  try {
    const relayPort = String((relay.address() as net.AddressInfo).port);
    const ws = new WebSocket(`ws://127.0.0.1:${relayPort}/realtime`);
    await new Promise((r, j) => {
      ws.onopen = r;
      ws.onerror = j;
    });
    let expected = messages.length + messages.filter((m) => m.startsWith("big")).length;
    const done = new Promise<void>((r) => {
      ws.onmessage = () => {
        if (--expected === 0) r();
      };
    });
    for (const m of messages) ws.send(m);
    await done;
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close(1000, "bye");
    await closed;
    await Bun.sleep(20);
  } finally {
    relay.close();
    server.stop(true);
  }
  return steps;
}

/** Bytes of one direction after its HTTP/1.1 head. */
function afterHead(steps: Array<{ dir: "c2s" | "s2c"; data: Uint8Array }>, dir: "c2s" | "s2c"): Uint8Array {
  const all = concat(...steps.filter((s) => s.dir === dir).map((s) => s.data));
  const end = Buffer.from(all).indexOf("\r\n\r\n");
  return all.subarray(end + 4);
}

function decodeAll(dec: WebSocketDecoder, bytes: Uint8Array, cut: number): WsItem[] {
  const items: WsItem[] = [];
  for (let i = 0; i < bytes.length; i += cut) items.push(...dec.push(bytes.subarray(i, i + cut), 1));
  return items;
}

const summary = (items: WsItem[]): Array<Record<string, unknown>> =>
  items.map((i) => (i.type === "message" ? { type: i.type, opcode: i.opcode, text: text(i.data), compressed: i.compressed } : i.type === "close" ? { type: "close", code: i.code, reason: i.reason } : { type: i.type }));

describe("real Bun WebSocket conversation", () => {
  test("upgrade, masked compressed client messages, server messages, close; split anywhere", async () => {
    const big = `big ${"the realtime session update ".repeat(40)}`;
    const steps = await captureWebSocket(["hello hello hello", '{"type":"response.create"}', big]);
    // The HTTP/1.1 decoder reports the upgrade with the negotiated extension.
    const http = new HttpConnectionDecoder("ws");
    const outs = steps.flatMap((s) => http.push(s.dir, s.data, 1));
    const upgrade = outs.find((o) => o.kind === "upgrade");
    expect(upgrade?.kind).toBe("upgrade");
    if (upgrade?.kind !== "upgrade") return;
    expect(upgrade.protocol.toLowerCase()).toBe("websocket");
    const deflate = negotiatedDeflate(upgrade.exchange.response!.headers);
    expect(deflate.c2s.enabled).toBe(true);

    const c2s = afterHead(steps, "c2s");
    const s2c = afterHead(steps, "s2c");
    const client = summary(decodeAll(new WebSocketDecoder({ deflate: deflate.c2s }), c2s, c2s.length));
    const server = summary(decodeAll(new WebSocketDecoder({ deflate: deflate.s2c }), s2c, s2c.length));
    // Bun's client compresses the messages it thinks worth it: at least the long one.
    expect(client).toEqual([
      { type: "message", opcode: "text", text: "hello hello hello", compressed: expect.any(Boolean) },
      { type: "message", opcode: "text", text: '{"type":"response.create"}', compressed: expect.any(Boolean) },
      { type: "message", opcode: "text", text: big, compressed: true },
      { type: "close", code: 1000, reason: "bye" },
    ]);
    expect(server.filter((i) => i.type === "message").map((i) => (i as { text: string }).text)).toEqual([
      "echo:hello hello hello",
      'echo:{"type":"response.create"}',
      `echo:${big}`,
      big.toUpperCase().repeat(3),
    ]);
    // The same through WebSocketConnection, set up from the 101's headers.
    const conn = new WebSocketConnection(upgrade.exchange.response!.headers);
    const both = [...conn.push("c2s", c2s, 1), ...conn.push("s2c", s2c, 2)];
    expect(summary(both.filter((i) => i.dir === "c2s"))).toEqual(client);
    expect(summary(both.filter((i) => i.dir === "s2c"))).toEqual(server);
    for (const cut of [1, 2, 3, 5, 17, 64]) {
      expect(summary(decodeAll(new WebSocketDecoder({ deflate: deflate.c2s }), c2s, cut))).toEqual(client);
      expect(summary(decodeAll(new WebSocketDecoder({ deflate: deflate.s2c }), s2c, cut))).toEqual(server);
    }
  }, 15_000);
});

describe("hand-built frames", () => {
  const frame = (opcode: number, payload: Uint8Array, opts: { fin?: boolean; rsv1?: boolean; mask?: number[] } = {}) => {
    const head: number[] = [(opts.fin === false ? 0 : 0x80) | (opts.rsv1 ? 0x40 : 0) | opcode];
    const maskBit = opts.mask ? 0x80 : 0;
    if (payload.length < 126) head.push(maskBit | payload.length);
    else if (payload.length < 65536) head.push(maskBit | 126, payload.length >> 8, payload.length & 0xff);
    else head.push(maskBit | 127, 0, 0, 0, 0, (payload.length >>> 24) & 0xff, (payload.length >> 16) & 0xff, (payload.length >> 8) & 0xff, payload.length & 0xff);
    let body = payload;
    if (opts.mask) {
      head.push(...opts.mask);
      body = payload.map((b, i) => b ^ opts.mask![i & 3]!);
    }
    return concat(Uint8Array.from(head), body);
  };
  const utf8 = (s: string) => new TextEncoder().encode(s);

  /** One real raw-deflate stream flushed after each message: what a context-takeover sender produces. */
  async function deflateMessages(messages: string[]): Promise<Uint8Array[]> {
    const d = zlib.createDeflateRaw();
    const out: Uint8Array[] = [];
    let pending: Buffer[] = [];
    d.on("data", (c: Buffer) => pending.push(c));
    for (const m of messages) {
      d.write(m);
      await new Promise<void>((r) => d.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
      const all = Buffer.concat(pending);
      pending = [];
      expect(all.subarray(-4).toString("hex")).toBe("0000ffff");
      out.push(new Uint8Array(all.subarray(0, -4)));
    }
    d.close();
    return out;
  }

  test("permessage-deflate with context takeover: later messages refer back to earlier ones", async () => {
    const messages = ['{"type":"response.text.delta","delta":"Hello"}', '{"type":"response.text.delta","delta":"Hello again"}', '{"type":"response.done"}'];
    const compressed = await deflateMessages(messages);
    // The second message really depends on the first: inflating it alone fails or differs.
    let standalone = "";
    try {
      standalone = zlib.inflateRawSync(concat(compressed[1]!, Uint8Array.of(0, 0, 0xff, 0xff)), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString();
    } catch {}
    expect(standalone).not.toBe(messages[1]);
    // Second message fragmented in two frames (only the first carries RSV1).
    const half = compressed[1]!.length >> 1;
    const wire = concat(
      frame(1, compressed[0]!, { rsv1: true }),
      frame(1, compressed[1]!.subarray(0, half), { rsv1: true, fin: false }),
      frame(9, utf8("ping!")), // control frame between fragments
      frame(0, compressed[1]!.subarray(half)),
      frame(1, compressed[2]!, { rsv1: true }),
    );
    const expected: Array<Record<string, unknown>> = [
      { type: "message", opcode: "text", text: messages[0], compressed: true },
      { type: "ping" },
      { type: "message", opcode: "text", text: messages[1], compressed: true },
      { type: "message", opcode: "text", text: messages[2], compressed: true },
    ];
    for (let cut = 1; cut <= wire.length; cut++) {
      expect(summary(decodeAll(new WebSocketDecoder({ deflate: { enabled: true, noContextTakeover: false } }), wire, cut))).toEqual(expected);
    }
    // Told there is no context takeover, the second message cannot be inflated: an error, not a crash.
    const wrong = decodeAll(new WebSocketDecoder({ deflate: { enabled: true, noContextTakeover: true } }), wire, wire.length);
    expect(wrong.some((i) => i.type === "error" && !i.fatal) || summary(wrong)[2]?.text !== messages[1]).toBe(true);
  });

  test("masked binary, 16- and 64-bit lengths, pong, close without code", () => {
    const mask = [0x11, 0x22, 0x33, 0x44];
    const mid = new Uint8Array(300).map((_, i) => i & 0xff);
    const large = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff);
    const wire = concat(frame(2, mid, { mask }), frame(2, large, { mask }), frame(10, utf8("p"), { mask }), frame(8, new Uint8Array(0), { mask }));
    const items = decodeAll(new WebSocketDecoder(), wire, 4096);
    expect(items.map((i) => i.type)).toEqual(["message", "message", "pong", "close"]);
    expect((items[0] as { data: Uint8Array }).data).toEqual(mid);
    expect((items[1] as { data: Uint8Array }).data).toEqual(large);
    expect(items[3]).toEqual({ type: "close", ts: 1 });
  });

  test("limits: a message above maxMessageBytes is cut and marked; a frame far above it is fatal", () => {
    const items = decodeAll(new WebSocketDecoder({ maxMessageBytes: 10 }), concat(frame(1, utf8("0123456789"), { fin: false }), frame(0, utf8("abc"))), 100);
    expect(items).toMatchObject([{ type: "message", truncated: true }]);
    expect(text((items[0] as { data: Uint8Array }).data)).toBe("0123456789");
    const huge = decodeAll(new WebSocketDecoder({ maxMessageBytes: 10 }), frame(2, new Uint8Array(5000)), 100);
    expect(huge).toMatchObject([{ type: "error", fatal: true }]);
  });

  test("protocol violations are fatal errors, never exceptions", () => {
    const cases: Array<[Uint8Array, RegExp]> = [
      [frame(0, utf8("x")), /continuation frame without a message/],
      [concat(frame(1, utf8("a"), { fin: false }), frame(1, utf8("b"))), /inside a fragmented message/],
      [frame(9, new Uint8Array(126)), /control frame/],
      [frame(1, utf8("x"), { rsv1: true }), /RSV1/],
      [Uint8Array.of(0xb1, 0x00), /RSV2|unknown|opcode/],
      [frame(3, utf8("x")), /unknown opcode 3/],
      [frame(8, Uint8Array.of(3)), /1-byte/],
    ];
    for (const [wire, message] of cases) {
      const items = decodeAll(new WebSocketDecoder(), wire, wire.length);
      const err = items.find((i) => i.type === "error");
      expect(err && err.type === "error" && err.fatal).toBe(true);
      expect(err && err.type === "error" ? err.message : "").toMatch(message);
    }
    let seed = 5;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256);
    for (let i = 0; i < 500; i++) decodeAll(new WebSocketDecoder({ deflate: { enabled: true, noContextTakeover: false } }), Uint8Array.from({ length: 1 + (i % 200) }, rand), 7);
  });

  test("negotiatedDeflate reads the accepted extension parameters", () => {
    expect(negotiatedDeflate([["Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover"]])).toEqual({
      c2s: { enabled: true, noContextTakeover: false },
      s2c: { enabled: true, noContextTakeover: true },
    });
    expect(negotiatedDeflate([])).toEqual({ c2s: { enabled: false, noContextTakeover: false }, s2c: { enabled: false, noContextTakeover: false } });
  });
});
