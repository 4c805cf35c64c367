// The relay between two real TCP socket pairs: bytes and copies both ways, backpressure, half-close,
// aborts in either direction, and a leg that died before the relay started.
import { describe, expect, test } from "bun:test";
import net from "node:net";
import { relay } from "../../src/mitm/relay.ts";

/** A connected socket pair: [outer end kept by the test, inner end handed to the relay]. */
async function pair(allowHalfOpen = true): Promise<[net.Socket, net.Socket, () => void]> {
  let inner!: net.Socket;
  const srv = net.createServer({ allowHalfOpen }, (s) => (inner = s));
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const outer = net.connect({ port: (srv.address() as net.AddressInfo).port, host: "127.0.0.1", allowHalfOpen: true });
  await new Promise((r) => outer.once("connect", r));
  while (!inner) await Bun.sleep(1);
  inner.on("error", () => {});
  outer.on("error", () => {});
  return [outer, inner, () => srv.close()];
}

function collect(s: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on("data", (d: Buffer) => parts.push(d));
  return new Promise((resolve) => s.once("end", () => resolve(Buffer.concat(parts))));
}

describe("relay", () => {
  test("bytes both ways with copies; half-close mirrored; resolves when both legs closed", async () => {
    const [client, clientInner, c1] = await pair();
    const [server, serverInner, c2] = await pair();
    const copies: string[] = [];
    const done = relay(clientInner, serverInner, { onData: (dir, b) => copies.push(`${dir}:${Buffer.from(b).toString()}`) });
    const atServer = collect(server);
    client.end("hello");
    expect((await atServer).toString()).toBe("hello");
    const atClient = collect(client);
    server.end("world");
    expect((await atClient).toString()).toBe("world");
    expect(await done).toEqual({ error: undefined });
    expect(copies).toEqual(["c2s:hello", "s2c:world"]);
    c1();
    c2();
  });

  test("answers held for holdServer reach the client whole, even when the server hangs up meanwhile", async () => {
    const [client, clientInner, c1] = await pair();
    // The upstream leg as a TLS client socket is: no half-open, so the server's FIN ends and closes it.
    const [server, serverInner, c2] = await pair(false);
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const copies: string[] = [];
    const done = relay(clientInner, serverInner, { holdServer: hold, onData: (dir, b) => copies.push(`${dir}:${Buffer.from(b).toString()}`) });
    const atClient = collect(client);
    server.end("the answer");
    await Bun.sleep(150); // the server's bytes and FIN arrive while the answer is held
    expect(copies).toEqual([]);
    release();
    expect((await atClient).toString()).toBe("the answer");
    expect(copies).toEqual(["s2c:the answer"]);
    client.destroy();
    await done;
    c1();
    c2();
  });

  test("answers go to the client only through afterTap, and the server's hang-up after them", async () => {
    const [client, clientInner, c1] = await pair();
    const [server, serverInner, c2] = await pair(false);
    // A tap that lets forwards go only when told (as the journal does after its write).
    const gated: Array<() => void> = [];
    const copies: string[] = [];
    const done = relay(clientInner, serverInner, {
      onData: (dir, b) => copies.push(`${dir}:${Buffer.from(b).toString()}`),
      afterTap: (fn) => void gated.push(fn),
    });
    const parts: string[] = [];
    client.on("data", (d: Buffer) => parts.push(d.toString()));
    const ended = new Promise((r) => client.once("end", r));
    server.end("the answer");
    await Bun.sleep(150); // tapped, but not released: nothing reaches the client, not even the FIN
    expect(copies).toEqual(["s2c:the answer"]);
    expect(parts).toEqual([]);
    expect(gated.length).toBeGreaterThanOrEqual(2); // the chunk, then the end/close
    for (const fn of gated.splice(0)) fn();
    await ended;
    expect(parts.join("")).toBe("the answer");
    while (gated.length) gated.shift()!();
    client.destroy();
    await done;
    c1();
    c2();
  });

  test("large transfer to a slow reader arrives whole (backpressure, no loss)", async () => {
    const [client, clientInner, c1] = await pair();
    const [server, serverInner, c2] = await pair();
    void relay(clientInner, serverInner);
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    client.pause();
    server.end(big);
    await Bun.sleep(100); // the client reads nothing for a while: the relay must pause, not drop
    const got = collect(client);
    client.resume();
    expect((await got).equals(big)).toBe(true);
    client.destroy();
    c1();
    c2();
  });

  test("a side that goes away: FIN is mirrored, and the next write tears both legs down", async () => {
    for (const side of ["client", "server"] as const) {
      const [client, clientInner, c1] = await pair();
      const [server, serverInner, c2] = await pair();
      const done = relay(clientInner, serverInner);
      const other = side === "client" ? server : client;
      const otherEnded = new Promise((r) => other.once("end", r));
      other.resume();
      (side === "client" ? client : server).destroy();
      await otherEnded;
      // Like an upstream still streaming to a client that left: the write fails and everything closes.
      const timer = setInterval(() => other.writable && other.write("more"), 5);
      const res = await done;
      clearInterval(timer);
      expect(res.error).toBeDefined();
      other.destroy();
      c1();
      c2();
    }
  });

  test("a leg already closed when the relay starts closes the other", async () => {
    const [client, clientInner, c1] = await pair();
    const [, serverInner, c2] = await pair();
    serverInner.destroy();
    await Bun.sleep(5);
    const clientClosed = new Promise((r) => {
      client.once("end", r);
      client.once("close", r);
    });
    client.resume();
    await relay(clientInner, serverInner);
    await clientClosed;
    c1();
    c2();
  });
});
