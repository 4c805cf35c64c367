// Redirector side of the IPC: a TapSink that forwards every tapped connection to the sensor.
// It never throws into the relay and never makes it wait: frames go to the socket when it can take
// them, else to a bounded memory queue, else to the disk spool; past the spool limit they are dropped
// and counted. Frames always leave in the order they were tapped:
//   memory queue (oldest) → spool → new frames.
// With a sensor that acknowledges (IPC proto 2, see frames.ts), every frame sent is also kept until the
// sensor acks its connection; if the sensor goes away first, those connections are put back in front of
// the spool and resent from their open frame, so a sensor killed mid-load loses nothing.
import net from "node:net";
import path from "node:path";
import { ulid } from "ulidx";
import type { ConnMeta, Direction, TapSink } from "../tap/types.ts";
import { silentLogger, type Logger } from "../util/log.ts";
import { VERSION } from "../version.ts";
import { readRunToken, tokenPath as defaultTokenPath } from "./endpoint.ts";
import type { HostActivity } from "../tap/activity.ts";
import { encodeFrame, FrameDecoder, frameConnection, IPC_PROTO, MAX_PAYLOAD_BYTES, type IpcFrame } from "./frames.ts";
import { Spool } from "./spool.ts";
import { UnackedFrames } from "./unacked.ts";

export interface IpcTapClientOptions {
  path: string;
  /** The sensor's token; else read from tokenPath (or <dataDir>/run/ipc.token) at every connect attempt. */
  token?: string;
  tokenPath?: string;
  dataDir?: string;
  spoolDir: string;
  maxQueueBytes?: number;
  maxSpoolBytes?: number;
  /** Bound on frames kept in memory until the sensor acknowledges their connection (default 64 MiB). */
  maxUnackedBytes?: number;
  log?: Logger;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How long the sensor has to answer our hello. */
  helloTimeoutMs?: number;
}

export interface IpcTapClientStats {
  /** Connected and accepted by the sensor. */
  connected: boolean;
  /** Frames handed to the socket. */
  sent: number;
  /** Bytes waiting in memory. */
  queuedBytes: number;
  /** Bytes waiting in the disk spool. */
  spooledBytes: number;
  /** Frames lost: spool full, disk error, or sent after close(). */
  dropped: number;
  /** The sensor acknowledges stored connections (IPC proto 2). */
  acks: boolean;
  /** Bytes sent and kept until the sensor acks their connection. */
  unackedBytes: number;
  /** Connections whose close was sent and whose ack is awaited. */
  awaitingAck: number;
  /** Frames resent because the sensor went away before acknowledging their connection. */
  resent: number;
  /** Connections whose kept frames were given up (unacked bound reached): not replayable if the sensor dies. */
  unprotected: number;
  /** process.exec / file.write items not sent: no sensor of IPC proto >= 3 connected, or frames waiting. */
  activityDropped: number;
}

/** Replay is done in slices so a large spool does not hold up the relay's event loop. */
const PUMP_SLICE_BYTES = 1024 * 1024;
/** Bound on connections remembered as having lost frames. */
const MAX_TAINTED_CONNS = 100_000;

export class IpcTapClient implements TapSink {
  readonly runId = ulid();
  private readonly log: Logger;
  private readonly maxQueueBytes: number;
  private readonly spool: Spool;
  private readonly tokenFile?: string;

  private socket?: net.Socket;
  private ready = false;
  private blocked = false;
  private closing = false;
  private memQueue = new FrameQueue();
  /** Frames sent to the current sensor and not yet acknowledged (only when it acks). */
  private readonly unacked: UnackedFrames;
  private acking = false;
  private memBytes = 0;
  private pumpScheduled = false;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private reconnectDelay: number;
  /** Connections with a lost frame → what was lost first. Their later data is dropped too (a gap garbles decoding). */
  private readonly tainted = new Map<string, "open" | "data">();
  private idleWaiters: Array<() => void> = [];
  private readonly counters = { sent: 0, dropped: 0, resent: 0, activityDropped: 0 };
  /** The connected sensor's IPC protocol revision (from its welcome). */
  private peerProto = 1;
  /** One log line per episode, not per frame. */
  private readonly said = new Set<"away" | "full" | "disk" | "internal" | "rejected" | "notoken" | "unprotected">();

  constructor(private readonly opts: IpcTapClientOptions) {
    this.log = opts.log ?? silentLogger;
    this.maxQueueBytes = opts.maxQueueBytes ?? 64 * 1024 * 1024;
    this.reconnectDelay = opts.reconnectMinMs ?? 100;
    this.tokenFile = opts.token ? undefined : (opts.tokenPath ?? (opts.dataDir ? defaultTokenPath(opts.dataDir) : undefined));
    const maxUnacked = opts.maxUnackedBytes ?? 64 * 1024 * 1024;
    this.unacked = new UnackedFrames(maxUnacked, () => {
      if (this.said.has("unprotected")) return;
      this.said.add("unprotected");
      this.log("warn", `ipc: more than ${maxUnacked} bytes sent and not yet acknowledged by the sensor; the oldest connections can no longer be resent if the sensor dies`);
    });
    this.spool = new Spool({
      dir: opts.spoolDir,
      runId: this.runId,
      maxBytes: opts.maxSpoolBytes ?? 1024 * 1024 * 1024,
      onLoss: (message) => {
        this.counters.dropped++;
        this.log("warn", message);
      },
    });
    const adopted = this.spool.adoptOrphans();
    if (adopted > 0) this.log("info", `ipc: ${adopted} bytes spooled by an earlier redirector will be sent to the sensor first`);
    this.guard(() => this.connect());
  }

  open(meta: ConnMeta): void {
    this.guard(() => this.route(meta.connId, "open", { t: "open", meta }));
  }

  data(connId: string, dir: Direction, bytes: Uint8Array, ts: number): void {
    this.guard(() => {
      // Big chunks are split: one frame's payload is bounded.
      let off = 0;
      do {
        this.route(connId, "data", { t: "data", connId, dir, ts, bytes: bytes.subarray(off, off + MAX_PAYLOAD_BYTES) });
        off += MAX_PAYLOAD_BYTES;
      } while (off < bytes.length);
    });
  }

  /**
   * eBPF activity (IPC proto 3). Best effort by design: written only straight onto a live link to a sensor
   * that knows the frame, never queued or spooled (a spooled frame could reach an older sensor, which would
   * drop the link on the unknown type); otherwise counted as dropped.
   */
  activity(items: HostActivity[]): void {
    this.guard(() => {
      for (const batch of activityBatches(items)) {
        if (!this.ready || this.peerProto < 3 || this.closing || this.blocked || this.memQueue.length > 0 || !this.spool.isEmpty) {
          this.counters.activityDropped += batch.length;
          continue;
        }
        let bytes: Uint8Array;
        try {
          bytes = encodeFrame({ t: "activity", items: batch });
        } catch {
          this.counters.activityDropped += batch.length;
          continue;
        }
        this.write(bytes, undefined, undefined);
      }
    });
  }

  close(connId: string, ts: number, error?: string): void;
  /** Stops reconnecting, sends what it can within `timeoutMs`, and leaves the rest spooled for the next run. */
  close(): Promise<void>;
  close(connIdOrNothing?: string, ts?: number, error?: string): void | Promise<void> {
    if (connIdOrNothing === undefined) return this.shutdown();
    this.guard(() => {
      const connId = connIdOrNothing;
      const lost = this.tainted.get(connId);
      this.tainted.delete(connId);
      // The sensor never heard of a connection whose open was lost: its close would mean nothing.
      if (lost === "open") return void this.counters.dropped++;
      const err = lost ? [error, "ipc: some captured bytes were lost (spool full or disk error)"].filter(Boolean).join("; ") : error;
      this.route(connId, "close", { t: "close", connId, ts: ts ?? Date.now(), error: err });
    });
  }

  stats(): IpcTapClientStats {
    return {
      connected: this.ready,
      sent: this.counters.sent,
      queuedBytes: this.memBytes,
      spooledBytes: this.spool.pendingBytes,
      dropped: this.counters.dropped,
      acks: this.acking,
      unackedBytes: this.unacked.stats().bytes,
      awaitingAck: this.unacked.awaitingAck,
      resent: this.counters.resent,
      unprotected: this.unacked.stats().unprotected,
      activityDropped: this.counters.activityDropped,
    };
  }

  async shutdown(timeoutMs = 2000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    try {
      await this.flushAndDisconnect(timeoutMs);
    } catch (err) {
      this.log("error", `ipc: closing the tap client: ${(err as Error).message}`);
    }
    // Unacknowledged frames are not spooled for the next run (see onDisconnect); only frames never sent are.
    this.unacked.clear();
    this.moveMemoryQueueToSpool([]);
    const left = this.spool.pendingBytes;
    if (left > 0) this.log("warn", `ipc: ${left} bytes stay spooled in ${this.opts.spoolDir} for the next redirector run`);
    this.spool.close();
  }

  private async flushAndDisconnect(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // Settled: everything written, and every closed connection acknowledged (when the sensor acks).
    if (this.ready && !this.isSettled()) await withTimeout(new Promise<void>((resolve) => this.idleWaiters.push(resolve)), timeoutMs);
    const unconfirmed = this.unacked.awaitingAck;
    if (this.ready && unconfirmed > 0) this.log("warn", `ipc: stopping before the sensor confirmed ${unconfirmed} closed connections as stored`);
    const socket = this.socket;
    if (socket && !socket.destroyed) {
      const gone = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      socket.end();
      await withTimeout(gone, Math.max(0, deadline - Date.now()));
      socket.destroy();
    }
  }

  // ---- routing: socket, memory queue, spool, or drop ----

  private route(connId: string, kind: FrameKind, frame: IpcFrame): void {
    if (kind === "data" && this.tainted.has(connId)) return void this.counters.dropped++;
    if (this.closing) return void this.counters.dropped++;
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(frame);
    } catch (err) {
      return this.lose(connId, kind, "internal", `ipc: frame not encodable: ${(err as Error).message}`);
    }
    // Anything already spooled is older than this frame, so it goes behind it; same while disconnected.
    if (!this.ready || !this.spool.isEmpty) return this.toSpool(connId, kind, bytes);
    if (this.memQueue.length === 0 && !this.blocked) return this.write(bytes, connId, kind);
    if (this.memBytes + bytes.length <= this.maxQueueBytes) {
      this.memQueue.push({ bytes, connId, kind });
      this.memBytes += bytes.length;
      return;
    }
    this.toSpool(connId, kind, bytes);
  }

  private markLost(connId: string, kind: "open" | "data"): void {
    if (this.tainted.has(connId)) return;
    if (this.tainted.size >= MAX_TAINTED_CONNS) this.tainted.delete(this.tainted.keys().next().value!);
    this.tainted.set(connId, kind);
  }

  private toSpool(connId: string, kind: FrameKind, bytes: Uint8Array): void {
    const res = this.spool.append(bytes);
    if (res.ok) return;
    if (res.reason === "full") return this.lose(connId, kind, "full", `ipc: spool full (${this.opts.maxSpoolBytes ?? "1 GiB"} bytes in ${this.opts.spoolDir}); dropping captured frames until the sensor is back`);
    this.lose(connId, kind, "disk", `ipc: cannot write the spool in ${this.opts.spoolDir}: ${res.message}; dropping captured frames`);
  }

  private lose(connId: string, kind: FrameKind, why: "full" | "disk" | "internal", message: string): void {
    this.counters.dropped++;
    if (kind !== "close") this.markLost(connId, kind);
    if (!this.said.has(why)) {
      this.said.add(why);
      this.log(why === "internal" ? "error" : "warn", message);
    }
  }

  private write(bytes: Uint8Array, connId: string | undefined, kind: FrameKind | undefined): void {
    this.counters.sent++;
    if (this.acking && connId !== undefined && kind !== undefined) this.unacked.add(connId, kind, bytes);
    if (!this.socket!.write(bytes)) this.blocked = true;
  }

  // ---- sending what waits: memory queue first, then the spool ----

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.guard(() => this.pump());
    });
  }

  private pump(): void {
    let budget = PUMP_SLICE_BYTES;
    while (this.ready && !this.blocked && budget > 0) {
      let next = this.memQueue.shift();
      if (next) this.memBytes -= next.bytes.length;
      else {
        const bytes = this.spool.readNext();
        // Spooled frames are bytes only: their connection is read back from the header when it is needed.
        if (bytes) next = { bytes, ...(this.acking ? frameConnection(bytes) : {}) };
      }
      if (!next) break;
      budget -= next.bytes.length;
      this.write(next.bytes, next.connId, next.kind);
    }
    if (!this.ready) return;
    if (this.isIdle()) {
      // The spool is empty again: a later spool-full or disk error is a new episode worth a new log line.
      this.said.delete("full");
      this.said.delete("disk");
      if (this.said.delete("away")) this.log("info", "ipc: caught up with the sensor");
      this.wakeIdleWaiters();
    } else if (!this.blocked) this.schedulePump();
  }

  private isIdle(): boolean {
    return this.memQueue.length === 0 && this.spool.isEmpty && !this.blocked;
  }

  private isSettled(): boolean {
    return this.isIdle() && this.unacked.awaitingAck === 0;
  }

  private wakeIdleWaiters(): void {
    if (this.idleWaiters.length > 0 && this.isSettled()) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /**
   * Frames still in memory when the socket goes away are older than anything spooled: put them in front,
   * behind `resend` (frames the sensor got but never acknowledged, older still).
   */
  private moveMemoryQueueToSpool(resend: Uint8Array[]): void {
    if (this.memQueue.length === 0 && resend.length === 0) return;
    const frames = resend.concat(this.memQueue.takeAll().map((f) => f.bytes));
    this.memBytes = 0;
    const { written, error } = this.spool.prepend(frames);
    if (written < frames.length) {
      this.counters.dropped += frames.length - written;
      this.log("warn", `ipc: ${frames.length - written} queued frames lost: ${error ?? "spool unavailable"}`);
    }
  }

  // ---- connection lifecycle ----

  private connect(): void {
    if (this.closing) return;
    const token = this.opts.token ?? (this.tokenFile ? readRunToken(this.tokenFile) : undefined);
    if (!token) {
      if (!this.said.has("notoken")) {
        this.said.add("notoken");
        this.log("warn", `ipc: no sensor token at ${this.tokenFile ?? "(none configured)"}; is \`oisp sensor\` running? spooling meanwhile`);
      }
      return this.scheduleReconnect();
    }
    this.said.delete("notoken");
    const socket = net.createConnection(this.opts.path);
    this.socket = socket;
    const decoder = new FrameDecoder();
    let helloTimer: ReturnType<typeof setTimeout> | undefined;
    socket.on("connect", () => {
      socket.write(encodeFrame({ t: "hello", token, version: VERSION, pid: process.pid, runId: this.runId, proto: IPC_PROTO }));
      const ms = this.opts.helloTimeoutMs ?? 5000;
      helloTimer = setTimeout(() => {
        this.log("warn", `ipc: sensor at ${this.opts.path} did not accept us within ${ms} ms`);
        socket.destroy();
      }, ms);
    });
    socket.on("data", (chunk: Buffer) => {
      const { frames, error } = decoder.push(chunk);
      for (const frame of frames) {
        if (frame.t === "ack" && this.ready && this.acking) {
          for (const connId of frame.connIds) this.unacked.ack(connId);
          this.wakeIdleWaiters();
          continue;
        }
        if (frame.t !== "welcome" || this.ready) {
          this.log("warn", `ipc: unexpected ${frame.t} frame from the sensor; reconnecting`);
          socket.destroy();
          return;
        }
        clearTimeout(helloTimer);
        this.onWelcome(frame.proto ?? 1);
      }
      if (error) {
        this.log("warn", `ipc: bad bytes from the sensor (${error}); reconnecting`);
        socket.destroy();
      }
    });
    socket.on("drain", () => {
      this.blocked = false;
      this.schedulePump();
    });
    socket.on("error", () => {}); // followed by "close"
    socket.on("close", () => {
      clearTimeout(helloTimer);
      if (this.socket === socket) this.onDisconnect(socket);
    });
  }

  private onWelcome(proto: number): void {
    this.ready = true;
    // An older sensor never acks: keeping frames for it would only fill memory.
    this.acking = proto >= 2;
    this.peerProto = proto;
    this.said.delete("rejected");
    this.reconnectDelay = this.opts.reconnectMinMs ?? 100;
    const waiting = this.spool.pendingBytes;
    this.log("info", `ipc: connected to the sensor at ${this.opts.path}${waiting > 0 ? `; replaying ${waiting} spooled bytes` : ""}`);
    this.schedulePump();
  }

  private onDisconnect(socket: net.Socket): void {
    const wasReady = this.ready;
    const acceptedBefore = socket.bytesWritten > 0 && !wasReady;
    this.ready = false;
    this.blocked = false;
    this.socket = undefined;
    // While shutting down the sensor is alive and has these frames: resending them to the next run would
    // only repeat connections it has already closed.
    const replay = this.acking && !this.closing ? this.unacked.takeForReplay() : { frames: [], lostOpen: [] };
    this.unacked.clear();
    this.acking = false;
    this.counters.resent += replay.frames.length;
    if (replay.frames.length > 0) this.log("info", `ipc: the sensor went away before confirming ${replay.frames.length} frames; they will be sent again`);
    // Connections given up earlier cannot be replayed from their open: the next sensor will not know them.
    for (const connId of replay.lostOpen) this.markLost(connId, "open");
    this.moveMemoryQueueToSpool(replay.frames);
    if (this.closing) return;
    if (acceptedBefore && !this.said.has("rejected")) {
      this.said.add("rejected");
      this.log("warn", `ipc: the sensor at ${this.opts.path} refused our hello (stale token file? another user's sensor?)`);
    }
    if (!this.said.has("away")) {
      this.said.add("away");
      this.log("warn", `ipc: sensor not reachable at ${this.opts.path}; spooling to ${path.resolve(this.opts.spoolDir)}`);
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(delay * 2, this.opts.reconnectMaxMs ?? 5000);
    this.reconnectTimer = setTimeout(() => this.guard(() => this.connect()), delay);
    this.reconnectTimer.unref?.();
  }

  /** The relay must never see an exception from observation. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.counters.dropped++;
      if (!this.said.has("internal")) {
        this.said.add("internal");
        this.log("error", `ipc: internal error in the tap client: ${(err as Error).message}`);
      }
    }
  }
}

type FrameKind = "open" | "data" | "close";

/** Items in frames whose JSON header stays well under the 64 KiB limit (an exec's argv is at most 4 KiB). */
function activityBatches(items: HostActivity[]): HostActivity[][] {
  const out: HostActivity[][] = [];
  let batch: HostActivity[] = [];
  let size = 0;
  for (const item of items) {
    const n = JSON.stringify(item).length;
    if (batch.length > 0 && (size + n > 48 * 1024 || batch.length >= 1024)) {
      out.push(batch);
      batch = [];
      size = 0;
    }
    batch.push(item);
    size += n;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}

/** A frame waiting to be sent, with what the unacked record needs to know about it. */
interface QueuedFrame {
  bytes: Uint8Array;
  connId?: string;
  kind?: FrameKind;
}

/** FIFO of frames with O(1) shift (Array#shift is linear on large arrays). */
class FrameQueue {
  private items: QueuedFrame[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(frame: QueuedFrame): void {
    this.items.push(frame);
  }
  shift(): QueuedFrame | undefined {
    if (this.head >= this.items.length) return undefined;
    const frame = this.items[this.head]!;
    this.items[this.head++] = EMPTY;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return frame;
  }
  takeAll(): QueuedFrame[] {
    const all = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return all;
  }
}
const EMPTY: QueuedFrame = { bytes: new Uint8Array(0) };

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    p.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
