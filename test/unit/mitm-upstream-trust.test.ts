// What a new connection may take on trust from earlier ones: KnownUpstreams (which upstreams were verified
// recently, and the ALPN each chose) and UpstreamTrust's sessions, the latter against real local TLS servers.
import { afterEach, expect, test } from "bun:test";
import net from "node:net";
import tls from "node:tls";
import { KnownUpstreams, UNKNOWN } from "../../src/mitm/known-upstreams.ts";
import { upgradeTls, UpstreamTrust, type Target, type UpstreamLeg } from "../../src/mitm/upstream.ts";
import { createTestCa } from "../support/upstream.ts";

const target: Target = { host: "127.0.0.1", port: 4443 };

test("an upstream vouches for the offers it answered, until it fails or its time is up", () => {
  let now = 1_000;
  const known = new KnownUpstreams({ ttlMs: 60_000, now: () => now });
  const key = KnownUpstreams.key("api.openai.com", target);
  expect(known.chosenFor(key, ["h2", "http/1.1"])).toBe(UNKNOWN);
  known.verified(key, ["h2", "http/1.1"], "h2");
  known.verified(key, [], undefined);
  expect(known.chosenFor(key, ["h2", "http/1.1"])).toBe("h2");
  // No ALPN chosen is an answer too, distinct from not knowing.
  expect(known.chosenFor(key, [])).toBeUndefined();
  // Another offer, another address or another name was never answered.
  expect(known.chosenFor(key, ["http/1.1"])).toBe(UNKNOWN);
  expect(known.chosenFor(KnownUpstreams.key("api.openai.com", { host: "127.0.0.2", port: 4443 }), [])).toBe(UNKNOWN);
  expect(known.chosenFor(KnownUpstreams.key("api.anthropic.com", target), [])).toBe(UNKNOWN);
  // A failure forgets every offer of that upstream.
  known.forget(key);
  expect(known.chosenFor(key, ["h2", "http/1.1"])).toBe(UNKNOWN);
  expect(known.chosenFor(key, [])).toBe(UNKNOWN);
  // Each verification renews the time; past it, the upstream is verified first again.
  known.verified(key, ["http/1.1"], "http/1.1");
  now += 59_000;
  known.verified(key, ["http/1.1"], "http/1.1");
  now += 59_000;
  expect(known.chosenFor(key, ["http/1.1"])).toBe("http/1.1");
  now += 1_000;
  expect(known.chosenFor(key, ["http/1.1"])).toBe(UNKNOWN);
  expect(known.size).toBe(0);
});

test("known upstreams are bounded: the least recently verified goes first", () => {
  const known = new KnownUpstreams({ max: 2 });
  const keys = ["a.test", "b.test", "c.test"].map((n) => KnownUpstreams.key(n, target));
  known.verified(keys[0]!, [], undefined);
  known.verified(keys[1]!, [], undefined);
  known.verified(keys[0]!, [], undefined); // a is now the most recent
  known.verified(keys[2]!, [], undefined);
  expect(known.size).toBe(2);
  expect(known.chosenFor(keys[1]!, [])).toBe(UNKNOWN);
  expect(known.chosenFor(keys[0]!, [])).toBeUndefined();
  expect(known.chosenFor(keys[2]!, [])).toBeUndefined();
});

const servers: tls.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

/** A TLS server for api.openai.com that answers one line and hangs up, like a short request. */
async function server(ca: Awaited<ReturnType<typeof createTestCa>>, maxVersion: tls.SecureVersion = "TLSv1.3"): Promise<number> {
  const { cert, key } = await ca.issue(["api.openai.com"]);
  const s = tls.createServer({ cert, key, maxVersion }, (sock) => {
    sock.on("error", () => {});
    sock.on("data", () => sock.end("ok\n"));
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return (s.address() as net.AddressInfo).port;
}

async function leg(trust: UpstreamTrust, port: number): Promise<UpstreamLeg> {
  const tcp = net.connect(port, "127.0.0.1");
  await new Promise((r) => tcp.once("connect", r));
  return upgradeTls(tcp, { servername: "api.openai.com", verifyHost: "api.openai.com", alpn: [], trust, target: { host: "127.0.0.1", port }, timeoutMs: 5000 });
}

/** One exchange on a verified leg (TLS 1.3 tickets arrive after the handshake), then close. */
async function use(up: UpstreamLeg): Promise<void> {
  await new Promise<void>((resolve) => {
    up.leg.on("data", () => {});
    up.leg.once("end", () => resolve());
    up.leg.resume();
    up.leg.write(Buffer.from("hi\n"));
  });
  up.leg.destroy();
}

test("a verified leg's session is resumed by the next leg to the same server; a server that fails verification is refused every time", async () => {
  const trustedCa = await createTestCa("trusted upstream CA");
  const otherCa = await createTestCa("untrusted upstream CA");
  const good = await server(trustedCa);
  // TLS 1.2: its session comes during the handshake, before the certificate is checked.
  const bad = await server(otherCa, "TLSv1.2");
  const trust = new UpstreamTrust([trustedCa.certPem]);
  const first = await leg(trust, good);
  expect(first.sessionReused).toBe(false);
  await use(first);
  const second = await leg(trust, good);
  expect(second.sessionReused).toBe(true);
  await use(second);

  // The same name at another address (with a certificate we do not trust) is refused, the second time too:
  // nothing from the first attempt lets the second skip the check.
  for (let i = 0; i < 2; i++) await expect(leg(trust, bad)).rejects.toThrow(/certificate|self.signed|issuer/i);
  const third = await leg(trust, good);
  expect(third.sessionReused).toBe(true);
  await use(third);
});
