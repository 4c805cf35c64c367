// The state table of diverted connections: one entry per client connection, keyed the way both the
// packet rewriter and the proxy can name it (original server address + client port), bounded in size,
// expired on FIN/RST and on idle timeouts. Time is passed in by the caller (sans-IO).

export interface DivertedConn {
  /** `${serverIp}|${clientPort}`: the proxy sees exactly this pair as its peer address. */
  key: string;
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
  /** AI hostname learned from DNS for serverIp, when known (the SNI confirms it later). */
  host?: string;
  /** Process that opened the connection, when the SOCKET layer or the TCP table knew it. */
  pid?: number;
  /** Sequence number of the client's SYN: a SYN with the same one is a retransmission. */
  clientIsn: number;
  createdAt: number;
  lastSeen: number;
  /** syn: SYN seen, no reply yet; open: the proxy answered; closing: FIN both ways or RST seen. */
  state: "syn" | "open" | "closing";
  clientFin: boolean;
  proxyFin: boolean;
  /** Set when closing: the entry is kept until then to rewrite the last ACKs and retransmissions. */
  closeAt?: number;
}

export interface TableLimits {
  maxEntries: number;
  /** A SYN the proxy never answered. */
  synTimeoutMs: number;
  /** An open connection with no packets at all. */
  idleTimeoutMs: number;
  /** After FIN both ways or a RST. */
  closeLingerMs: number;
}

export const DEFAULT_LIMITS: TableLimits = {
  maxEntries: 16384,
  synTimeoutMs: 30_000,
  idleTimeoutMs: 60 * 60_000,
  closeLingerMs: 10_000,
};

export function connKey(serverIp: string, clientPort: number): string {
  return `${serverIp}|${clientPort}`;
}

export class ConnTable {
  private readonly conns = new Map<string, DivertedConn>();
  constructor(readonly limits: TableLimits = DEFAULT_LIMITS) {}

  get size(): number {
    return this.conns.size;
  }

  get(key: string): DivertedConn | undefined {
    return this.conns.get(key);
  }

  /** Adds a connection; false when the table is full (the caller then leaves the connection alone). */
  add(conn: DivertedConn): boolean {
    if (!this.conns.has(conn.key) && this.conns.size >= this.limits.maxEntries) return false;
    this.conns.set(conn.key, conn);
    return true;
  }

  delete(key: string): void {
    this.conns.delete(key);
  }

  /** Records TCP flags seen in one direction; starts the close linger on FIN both ways or RST. */
  observe(conn: DivertedConn, fromClient: boolean, fin: boolean, rst: boolean, now: number): void {
    conn.lastSeen = now;
    if (!fromClient && conn.state === "syn") conn.state = "open";
    if (fin) {
      if (fromClient) conn.clientFin = true;
      else conn.proxyFin = true;
    }
    if (rst || (conn.clientFin && conn.proxyFin)) {
      if (conn.state !== "closing") {
        conn.state = "closing";
        conn.closeAt = now + this.limits.closeLingerMs;
      }
    }
  }

  /** Removes expired entries and returns them. */
  expire(now: number): DivertedConn[] {
    const gone: DivertedConn[] = [];
    for (const c of this.conns.values()) {
      const dead =
        (c.state === "closing" && c.closeAt !== undefined && c.closeAt <= now) ||
        (c.state === "syn" && now - c.lastSeen >= this.limits.synTimeoutMs) ||
        now - c.lastSeen >= this.limits.idleTimeoutMs;
      if (dead) gone.push(c);
    }
    for (const c of gone) this.conns.delete(c.key);
    return gone;
  }
}
