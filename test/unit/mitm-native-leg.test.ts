// NativeLeg over real Bun sockets on loopback: what arrives while it is paused waits in order (no chunk is
// overtaken by the end or the close), and a large write to a reader reaches it whole before the FIN.
import { afterEach, expect, test } from "bun:test";
import { NativeLeg } from "../../src/mitm/native-leg.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A Bun.listen socket served by a NativeLeg; `peer` is the Bun.connect socket at the other end. */
async function legPair(peerData: (d: Uint8Array) => void = () => {}, peerEnd: () => void = () => {}) {
  const leg = new NativeLeg();
  const attached = Promise.withResolvers<void>();
  const h = leg.handlers();
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        leg.attach(s);
        attached.resolve();
      },
      data: h.data,
      drain: h.drain,
      end: h.end,
      close: h.close,
      error: h.error,
    },
  });
  const peer = await Bun.connect({ hostname: "127.0.0.1", port: server.port, socket: { data: (_s, d) => peerData(d), end: peerEnd, close: peerEnd } });
  cleanups.push(() => (peer.terminate(), server.stop(true)));
  await attached.promise;
  return { leg, peer };
}

test("data, end and close that arrive while paused are delivered in that order on resume", async () => {
  const { leg, peer } = await legPair();
  const events: string[] = [];
  leg.on("data", (d: Uint8Array) => events.push(`data:${Buffer.from(d).toString()}`));
  leg.on("end", () => events.push("end"));
  leg.once("close", () => events.push("close"));
  peer.write("request");
  peer.end();
  await Bun.sleep(100);
  expect(events).toEqual([]); // a leg starts paused: the relay resumes it once it is wired
  leg.resume();
  await Bun.sleep(20);
  expect(events[0]).toBe("data:request");
  expect(events.slice(1)).toEqual(["end", "close"]);
  expect(leg.destroyed).toBe(true);
});

test("a large write reaches a reader whole, drains, and the FIN comes after the last byte", async () => {
  const received: Uint8Array[] = [];
  const ended = Promise.withResolvers<void>();
  const { leg } = await legPair((d) => received.push(new Uint8Array(d)), () => ended.resolve());
  const big = new Uint8Array(16 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  let drained = false;
  leg.once("drain", () => (drained = true));
  expect(leg.write(big)).toBe(false); // more than the socket takes at once: the rest waits in the outbox
  leg.end();
  expect(leg.writableEnded).toBe(true);
  await ended.promise;
  const got = Buffer.concat(received);
  expect(got.length).toBe(big.length);
  expect(got.equals(Buffer.from(big))).toBe(true);
  expect(drained).toBe(true);
});

test("destroy closes the socket and emits close once", async () => {
  const peerGone = Promise.withResolvers<void>();
  const { leg } = await legPair(undefined, () => peerGone.resolve());
  let closes = 0;
  leg.on("close", () => closes++);
  leg.destroy();
  leg.destroy();
  await peerGone.promise;
  await Bun.sleep(10);
  expect(closes).toBe(1);
  expect(leg.write(new Uint8Array([1]))).toBe(false);
});
