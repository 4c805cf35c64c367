// Clients that refuse our certificate (certificate pinning, a private trust store) are passed through blind
// for a while, so the user's tool keeps working. Decided per client, never per host, at two strengths:
// - a certificate alert the client sent after our ServerHello (see tunnel.ts) pins the client: the executable
//   and user that own the connection (the pid when the executable is unknown), for `ttlMs`;
// - a client that completed our handshake and closed without a request (Node and Bun verify after the
//   handshake and hang up without an alert) is weaker evidence, cheap to fake: it pins that process only
//   (pid + start time, so a reused pid inherits nothing), for the shorter `processTtlMs`.
// A pin covers that client and that host only, so one app declining our CA (or a hostile local process
// pretending to) never blinds the others. A local client whose process cannot be found is never pinned (it
// would share its key with every other unidentified process); a remote one is keyed by its address.
// Evidence must be repeated: `threshold` rejections within the evidence window. Bounded: oldest first.
import type { ProcessInfo } from "../tap/types.ts";

export interface ClientIdentity {
  /** What pins are keyed by; undefined: a local process that could not be found, never pinned. */
  key?: string;
  /** For people: "curl (uid 0)". */
  label: string;
  /** One process (pid + start time; a remote client: its address), for the weaker evidence; undefined like `key`. */
  process?: string;
  /** For people: "pid 412 /usr/bin/node (root)". */
  processLabel?: string;
}

/** What a rejection pins: the client (exe + user) on a certificate alert, one process on a close after the handshake. */
export type PinScope = "client" | "process";

/** The client behind a connection: executable + user, else pid, else (a remote client) its address. */
export function clientIdentity(proc: ProcessInfo | undefined, clientIp: string): ClientIdentity {
  if (!proc) {
    if (isLoopback(clientIp)) return { label: "an unidentified local process" };
    return { key: `ip:${clientIp}`, label: `the host ${clientIp}`, process: `addr:${clientIp}`, processLabel: `the host ${clientIp}` };
  }
  const user = proc.user ?? (proc.uid !== undefined ? `uid ${proc.uid}` : "user unknown");
  // Where the lookup gives no start time (Windows), the pid alone: the shorter TTL bounds what a reuse inherits.
  const processKey = `pid:${proc.pid}@${proc.startTime ?? "?"}`;
  const processLabel = `pid ${proc.pid} ${proc.exe ?? proc.name ?? ""} (${user})`.replace("  (", " (");
  if (proc.exe) return { key: `exe:${proc.exe}\0uid:${proc.uid ?? "?"}`, label: `${proc.exe} (${user})`, process: processKey, processLabel };
  return { key: `pid:${proc.pid}`, label: `pid ${proc.pid}${proc.name ? ` ${proc.name}` : ""} (${user})`, process: processKey, processLabel };
}

function isLoopback(ip: string): boolean {
  return ip === "" || ip === "::1" || ip.startsWith("127.") || ip.startsWith("::ffff:127.");
}

export interface Pin {
  host: string;
  client: ClientIdentity;
  scope: PinScope;
  reason: string;
  /** Epoch ms when the pin lapses and the client is intercepted again. */
  until: number;
}

export interface PinnedClientsOptions {
  /** Pins and evidence records kept (each). */
  max?: number;
  /** Rejections that pin a client. */
  threshold?: number;
  /** Rejections older than this are forgotten. */
  evidenceMs?: number;
  /** How long a pin lasts. */
  ttlMs?: number;
  /** The same for a process pinned on the weaker evidence (closes after the handshake). */
  processEvidenceMs?: number;
  processTtlMs?: number;
  now?: () => number;
}

export class PinnedClients {
  private readonly pins = new Map<string, Pin>();
  private readonly evidence = new Map<string, { n: number; since: number }>();
  /** Pins per host: the common case (no pin for this host) is one lookup, no process lookup needed. */
  private readonly perHost = new Map<string, number>();
  private readonly max: number;
  readonly threshold: number;
  private readonly evidenceMs: number;
  readonly ttlMs: number;
  private readonly processEvidenceMs: number;
  readonly processTtlMs: number;
  private readonly now: () => number;

  constructor(opts: PinnedClientsOptions = {}) {
    this.max = opts.max ?? 10_000;
    this.threshold = opts.threshold ?? 2;
    this.evidenceMs = opts.evidenceMs ?? 10 * 60_000;
    this.ttlMs = opts.ttlMs ?? 60 * 60_000;
    // A Node client's retries come within seconds; an app that pools connections rarely opens two unused ones.
    this.processEvidenceMs = opts.processEvidenceMs ?? 2 * 60_000;
    this.processTtlMs = opts.processTtlMs ?? 15 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** Pins in force (expired ones are dropped as they are met). */
  get size(): number {
    return this.pins.size;
  }

  /** Whether any client is pinned for `host` (then the caller looks up who this client is). */
  hasPinsFor(host: string): boolean {
    return (this.perHost.get(host) ?? 0) > 0;
  }

  /** The pin of this client for this host, if one is in force. */
  pinned(host: string, client: ClientIdentity): Pin | undefined {
    for (const id of [client.key, client.process]) {
      if (id === undefined) continue;
      const k = pinKey(host, id);
      const pin = this.pins.get(k);
      if (pin && pin.until <= this.now()) this.drop(k, pin);
      else if (pin) return pin;
    }
    return undefined;
  }

  /**
   * One rejection of our certificate by `client` for `host`. Returns the new pin once the evidence reaches
   * the threshold, and how many rejections count so far.
   */
  noteRejection(host: string, client: ClientIdentity, reason: string, scope: PinScope = "client"): { pin?: Pin; count: number } {
    const id = scope === "client" ? client.key : client.process;
    if (id === undefined) return { count: 0 };
    const k = pinKey(host, id);
    const t = this.now();
    const prev = this.evidence.get(k);
    const window = scope === "client" ? this.evidenceMs : this.processEvidenceMs;
    const e = prev && t - prev.since <= window ? { n: prev.n + 1, since: prev.since } : { n: 1, since: t };
    if (e.n < this.threshold) {
      this.evidence.delete(k);
      if (this.evidence.size >= this.max) this.evidence.delete(this.evidence.keys().next().value!);
      this.evidence.set(k, e);
      return { count: e.n };
    }
    this.evidence.delete(k);
    const old = this.pins.get(k);
    if (old) this.drop(k, old);
    if (this.pins.size >= this.max) {
      const [firstKey, first] = this.pins.entries().next().value!;
      this.drop(firstKey, first);
    }
    const pin: Pin = { host, client, scope, reason, until: t + (scope === "client" ? this.ttlMs : this.processTtlMs) };
    this.pins.set(k, pin);
    this.perHost.set(host, (this.perHost.get(host) ?? 0) + 1);
    return { pin, count: e.n };
  }

  /** "host: client" for each pin in force, for `oisp status`. */
  list(): string[] {
    const t = this.now();
    const out: string[] = [];
    for (const [k, pin] of this.pins) {
      if (pin.until <= t) this.drop(k, pin);
      else out.push(`${pin.host}: ${pin.scope === "client" ? pin.client.label : `${pin.client.processLabel}, this process only`}`);
    }
    return out;
  }

  /** Forgets the pins of these hosts (all when none are named) so their clients are intercepted again; returns the hosts unpinned. */
  remove(hosts?: string[]): string[] {
    const wanted = hosts ? new Set(hosts) : undefined;
    const removed = new Set<string>();
    for (const [k, pin] of this.pins) {
      if (wanted && !wanted.has(pin.host)) continue;
      this.drop(k, pin);
      removed.add(pin.host);
    }
    for (const k of [...this.evidence.keys()]) if (!wanted || wanted.has(k.slice(0, k.indexOf("\n")))) this.evidence.delete(k);
    return [...removed];
  }

  private drop(k: string, pin: Pin): void {
    if (!this.pins.delete(k)) return;
    const n = (this.perHost.get(pin.host) ?? 1) - 1;
    if (n > 0) this.perHost.set(pin.host, n);
    else this.perHost.delete(pin.host);
  }
}

function pinKey(host: string, clientKey: string): string {
  return `${host}\n${clientKey}`;
}
