// Upstreams that passed verification recently, with the ALPN each chose for a given offer. For one of
// these a new connection answers the client with that ALPN while the upstream's own handshake is still
// under way, so the two handshakes overlap (tunnel.ts); the first connection to an upstream stays serial.
// Any failure of the upstream forgets it, and so does time: the next connection verifies first again.
import type { Target } from "./upstream.ts";

interface Known {
  /** Epoch ms after which the entry no longer vouches. */
  until: number;
  /** The client's offer (as sent upstream, joined) → the protocol the upstream chose ("" for none). */
  alpn: Map<string, string>;
}

export interface KnownUpstreamsOptions {
  max?: number;
  ttlMs?: number;
  now?: () => number;
}

export class KnownUpstreams {
  private readonly map = new Map<string, Known>();
  private readonly max: number;
  readonly ttlMs: number;
  private readonly now: () => number;

  constructor(opts: KnownUpstreamsOptions = {}) {
    this.max = opts.max ?? 1000;
    this.ttlMs = opts.ttlMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** The name verified and the address connected to: --resolve can send one name to two servers. */
  static key(name: string, target: Target): string {
    return `${name}\n${target.host}:${target.port}`;
  }

  /** What the upstream chose for `offer` when last verified (undefined: none), or `unknown` when it cannot vouch. */
  chosenFor(key: string, offer: readonly string[]): string | undefined | typeof UNKNOWN {
    const k = this.map.get(key);
    if (!k) return UNKNOWN;
    if (k.until <= this.now()) {
      this.map.delete(key);
      return UNKNOWN;
    }
    const chosen = k.alpn.get(offer.join(","));
    return chosen === undefined ? UNKNOWN : chosen || undefined;
  }

  /** A leg to this upstream passed verification and chose `chosen` for `offer`. */
  verified(key: string, offer: readonly string[], chosen: string | undefined): void {
    const k = this.map.get(key) ?? { until: 0, alpn: new Map<string, string>() };
    k.until = this.now() + this.ttlMs;
    k.alpn.set(offer.join(","), chosen ?? "");
    this.map.delete(key); // most recently verified goes last
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, k);
  }

  forget(key: string): void {
    this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }
}

/** chosenFor's answer when the upstream is not known (distinct from "known to choose no ALPN"). */
export const UNKNOWN: unique symbol = Symbol("unknown upstream");
