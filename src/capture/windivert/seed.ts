// Seeding the IP → AI host table at start. Windows' DNS client caches answers, so an app that resolved
// api.openai.com before `oisp redirect` started sends no DNS packet we could sniff until the TTL runs
// out. Resolving the known AI hosts ourselves goes through the same cache and yields the addresses those
// apps are using. Bounded: a fixed set of names, a concurrency cap, one deadline.
import dns from "node:dns";
import { bundle } from "../../spec/bundle.ts";
import { isAiHost, parseHost } from "../../spec/endpoints.ts";

export interface Seed {
  host: string;
  ip: string;
}

export type Resolver = (host: string) => Promise<string[]>;

const systemResolver: Resolver = async (host) =>
  (await dns.promises.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** The spec bundle's exact public AI hostnames (no port: local servers are captured by port instead). */
export function aiHostsToSeed(): string[] {
  const out = new Set<string>();
  for (const key of Object.keys(bundle.domain_lookup)) {
    const { host, port } = parseHost(key);
    if (host && port === undefined && !/^(localhost|\d+\.\d+\.\d+\.\d+)$/.test(host) && !host.includes(":") && isAiHost(host)) out.add(host);
  }
  return [...out].sort();
}

/** Resolves `hosts`, `concurrency` at a time, giving up on whatever is left after `timeoutMs`. */
export async function resolveSeeds(
  hosts: string[], opts: { resolver?: Resolver; timeoutMs?: number; concurrency?: number } = {},
): Promise<Seed[]> {
  const resolver = opts.resolver ?? systemResolver;
  const deadline = Date.now() + (opts.timeoutMs ?? 3000);
  const seeds: Seed[] = [];
  const queue = [...hosts];
  const worker = async () => {
    for (let host = queue.shift(); host !== undefined; host = queue.shift()) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ips = await Promise.race([
        resolver(host).catch(() => [] as string[]),
        new Promise<string[]>((r) => (timer = setTimeout(() => r([]), left))),
      ]);
      clearTimeout(timer);
      for (const ip of ips) seeds.push({ host, ip });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 8) }, worker));
  return seeds;
}
