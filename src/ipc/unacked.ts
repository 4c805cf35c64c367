// The redirector's record of frames the sensor has received but not yet acknowledged (IPC proto 2).
// A connection's frames are kept from its open frame until the sensor acks the connection (its close was
// processed and the events it produced are stored). If the sensor goes away, the frames of every
// unacknowledged connection are handed back, in the order they were first sent, to be resent from the
// open frame: the new sensor has no decoder state, so a connection can only be replayed whole.
//
// Bounded: past `maxBytes` the oldest connection is given up ("unprotected"): its frames are forgotten
// and counted; it keeps flowing to the sensor, but cannot be replayed if the sensor dies before acking it.
// Pure bookkeeping: no sockets, no clocks.

interface ConnRecord {
  connId: string;
  bytes: number;
  frames: number;
  /** Its close frame was sent: only the ack is missing. */
  closed: boolean;
  /** False once acked or given up: its entries are dead. */
  live: boolean;
}

interface Entry {
  conn: ConnRecord;
  bytes: Uint8Array;
}

export interface UnackedStats {
  /** Connections with frames kept. */
  conns: number;
  frames: number;
  bytes: number;
  /** Connections whose close was sent and whose ack is awaited. */
  awaitingAck: number;
  acked: number;
  /** Connections given up to stay within the bound. */
  unprotected: number;
}

export interface Replay {
  /** Frames of the unacknowledged connections, oldest first. */
  frames: Uint8Array[];
  /** Connections given up earlier that are still open: the next sensor never saw their open frame. */
  lostOpen: string[];
}

/** Bound on given-up connections remembered while they are still open. */
const MAX_UNPROTECTED_OPEN = 100_000;

export class UnackedFrames {
  private entries: Array<Entry | undefined> = [];
  private head = 0;
  private readonly conns = new Map<string, ConnRecord>();
  /** Given up while open: still sending, but a replay cannot include them. */
  private readonly unprotectedOpen = new Set<string>();
  private total = 0;
  private frameCount = 0;
  private awaiting = 0;
  private readonly counters = { acked: 0, unprotected: 0 };

  constructor(
    private readonly maxBytes: number,
    /** Told when a connection is given up (for a log line). */
    private readonly onGiveUp?: (connId: string, bytes: number) => void,
  ) {}

  /** A frame of `connId` was just sent. `kind` "close" means the connection now only waits for its ack. */
  add(connId: string, kind: "open" | "data" | "close", bytes: Uint8Array): void {
    if (this.unprotectedOpen.has(connId)) {
      if (kind === "close") this.unprotectedOpen.delete(connId);
      return;
    }
    let conn = this.conns.get(connId);
    if (!conn) {
      // A connection is replayable only from its open frame. Data of a connection we hold nothing of
      // (given up, or whose earlier frames predate this sensor) is not worth keeping.
      if (kind !== "open") return;
      conn = { connId, bytes: 0, frames: 0, closed: false, live: true };
      this.conns.set(connId, conn);
    }
    this.entries.push({ conn, bytes });
    conn.bytes += bytes.length;
    conn.frames++;
    this.total += bytes.length;
    this.frameCount++;
    if (kind === "close" && !conn.closed) {
      conn.closed = true;
      this.awaiting++;
    }
    while (this.total > this.maxBytes) this.giveUpOldest();
  }

  /** The sensor has stored everything of `connId`: forget its frames. Unknown ids are ignored. */
  ack(connId: string): void {
    const conn = this.conns.get(connId);
    if (!conn) return;
    this.counters.acked++;
    this.forget(conn);
  }

  /** The sensor went away: everything unacknowledged, to resend first. Leaves this record empty. */
  takeForReplay(): Replay {
    const frames: Uint8Array[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e?.conn.live) frames.push(e.bytes);
    }
    const lostOpen = [...this.unprotectedOpen];
    this.clear();
    return { frames, lostOpen };
  }

  /** Drops everything without replay (the peer does not ack, or we are shutting down). */
  clear(): void {
    this.entries = [];
    this.head = 0;
    this.conns.clear();
    this.unprotectedOpen.clear();
    this.total = 0;
    this.frameCount = 0;
    this.awaiting = 0;
  }

  /** Connections whose close was sent and whose ack has not come. */
  get awaitingAck(): number {
    return this.awaiting;
  }

  stats(): UnackedStats {
    return { conns: this.conns.size, frames: this.frameCount, bytes: this.total, awaitingAck: this.awaiting, ...this.counters };
  }

  private giveUpOldest(): void {
    while (this.head < this.entries.length && !this.entries[this.head]?.conn.live) this.entries[this.head++] = undefined;
    const oldest = this.entries[this.head]?.conn;
    if (!oldest) return;
    this.counters.unprotected++;
    this.onGiveUp?.(oldest.connId, oldest.bytes);
    if (!oldest.closed) {
      if (this.unprotectedOpen.size >= MAX_UNPROTECTED_OPEN) this.unprotectedOpen.delete(this.unprotectedOpen.values().next().value!);
      this.unprotectedOpen.add(oldest.connId);
    }
    this.forget(oldest);
  }

  private forget(conn: ConnRecord): void {
    if (!conn.live) return;
    conn.live = false;
    this.conns.delete(conn.connId);
    this.total -= conn.bytes;
    this.frameCount -= conn.frames;
    if (conn.closed) this.awaiting--;
    this.compact();
  }

  /** Dead entries are skipped lazily; the array is rebuilt once most of it is dead. */
  private compact(): void {
    while (this.head < this.entries.length && !this.entries[this.head]?.conn.live) this.entries[this.head++] = undefined;
    const span = this.entries.length - this.head;
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.entries.length > 1024 && this.frameCount * 2 < span) {
      this.entries = this.entries.slice(this.head).filter((e) => e?.conn.live);
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
