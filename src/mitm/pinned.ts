// Hosts whose clients refused our certificate (certificate pinning, a private trust store). They are
// passed through blind from then on, so the user's tool keeps working. Bounded: oldest entries go first.

export class PinnedHosts {
  private readonly hosts = new Map<string, string>();
  /** Handshakes that ended in a silent close (no alert), per host; two in a row count as a rejection. */
  private readonly silentCloses = new Map<string, number>();

  constructor(private readonly max = 10_000) {}

  get size(): number {
    return this.hosts.size;
  }

  has(host: string): boolean {
    return this.hosts.has(host);
  }

  list(): string[] {
    return [...this.hosts.keys()];
  }

  reason(host: string): string | undefined {
    return this.hosts.get(host);
  }

  /** Returns true when the host was not pinned before. */
  add(host: string, reason: string): boolean {
    this.silentCloses.delete(host);
    if (this.hosts.has(host)) return false;
    if (this.hosts.size >= this.max) this.hosts.delete(this.hosts.keys().next().value!);
    this.hosts.set(host, reason);
    return true;
  }

  /** Forgets hosts (all when none are named) so they are intercepted again; returns the ones removed. */
  remove(hosts?: string[]): string[] {
    const removed = hosts ? hosts.filter((h) => this.hosts.delete(h)) : this.list();
    if (!hosts) this.hosts.clear();
    for (const h of hosts ?? removed) this.silentCloses.delete(h);
    return removed;
  }

  /** A client closed during our handshake without an alert. Returns true when the host is now pinned. */
  noteSilentClose(host: string, reason: string): boolean {
    const n = (this.silentCloses.get(host) ?? 0) + 1;
    if (n >= 2) return this.add(host, reason);
    if (this.silentCloses.size >= this.max) this.silentCloses.delete(this.silentCloses.keys().next().value!);
    this.silentCloses.set(host, n);
    return false;
  }

  /** A handshake with this host's client succeeded: forget earlier silent closes. */
  noteSuccess(host: string): void {
    this.silentCloses.delete(host);
  }
}
