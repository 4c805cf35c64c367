// Start-up seeding of AI host addresses: which names, bounded concurrency and deadline, and the real
// system resolver.
import { expect, test } from "bun:test";
import { aiHostsToSeed, resolveSeeds } from "../../src/capture/windivert/seed.ts";
import { isAiHost } from "../../src/spec/endpoints.ts";

test("the spec's exact public AI hosts, no local servers", () => {
  const hosts = aiHostsToSeed();
  expect(hosts).toContain("api.openai.com");
  expect(hosts).toContain("api.anthropic.com");
  expect(hosts.every((h) => isAiHost(h) && !h.includes(":") && h !== "localhost")).toBe(true);
});

test("resolves within the deadline and the concurrency cap; failures and hangs yield nothing", async () => {
  let running = 0;
  let peak = 0;
  const resolver = async (h: string) => {
    running++;
    peak = Math.max(peak, running);
    try {
      if (h === "hang.test") await new Promise(() => {});
      if (h === "fail.test") throw new Error("NXDOMAIN");
      await Bun.sleep(5);
      return [`10.0.0.${h.length}`];
    } finally {
      running--;
    }
  };
  const hosts = ["a.test", "bb.test", "hang.test", "fail.test", "ccc.test", "dddd.test"];
  // hang.test never settles: returning at all proves the deadline; the test's 1 s timeout bounds it.
  const seeds = await resolveSeeds(hosts, { resolver, timeoutMs: 200, concurrency: 2 });
  expect(peak).toBeLessThanOrEqual(2);
  expect(seeds.map((s) => s.host).sort()).toEqual(["a.test", "bb.test", "ccc.test", "dddd.test"]);
  expect(seeds.find((s) => s.host === "bb.test")?.ip).toBe("10.0.0.7");
}, 1000);

test("the system resolver answers for localhost", async () => {
  const seeds = await resolveSeeds(["localhost"], { timeoutMs: 2000 });
  expect(seeds.length).toBeGreaterThan(0);
  expect(seeds.every((s) => s.ip === "127.0.0.1" || s.ip === "::1")).toBe(true);
});
