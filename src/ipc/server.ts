// Sensor side of the IPC: accepts redirectors on a unix socket / named pipe, checks their token, decodes
// their frames and hands them to the sink in order. A misbehaving peer is dropped alone; the server and
// the other peers keep running.
// A redirector speaking proto 2 (see frames.ts) gets an ack for each connection once its close has been
// handed to the sink and `whenDurable` says the events it produced are stored; only then may it drop the
// connection's frames.
import fs from "node:fs";
import net from "node:net";
import type { TapSink } from "../tap/types.ts";
import { silentLogger, type Logger } from "../util/log.ts";
import { VERSION } from "../version.ts";
import { createRunToken, isWindowsPipePath, prepareSocketDir, restrictSocketAccess, tokensEqual } from "./endpoint.ts";
import { encodeFrame, FrameDecoder, IPC_PROTO, MAX_ACK_IDS, type IpcFrame } from "./frames.ts";

export interface IpcServerOptions {
  path: string;
  /** The token redirectors must present. Omit it and give dataDir to have a fresh one written to <dataDir>/run/ipc.token. */
  token?: string;
  dataDir?: string;
  sink: TapSink;
  log?: Logger;
  /** A peer that has not sent a good hello by then is dropped. */
  helloTimeoutMs?: number;
  /** Bound on connections a single peer may hold open at the sink. */
  maxOpenConnsPerPeer?: number;
  /**
   * Calls `done` once everything the sink has produced so far is durably stored (e.g. StoreOutput's commit).
   * Connections are acknowledged to the redirector only then. Without it, a connection is acknowledged as
   * soon as the sink has processed its close.
   */
  whenDurable?: (done: () => void) => void;
}

export interface IpcServerStats {
  /** Peers connected right now (authenticated or not). */
  peers: number;
  /** Of those, redirectors that presented the right token: what `oisp status` calls connected. */
  redirectors: number;
  /** Peer connections accepted since start. */
  peersSeen: number;
  framesIn: number;
  bytesIn: number;
  badFrames: number;
  authFailures: number;
  /** Tapped connections (open frames) received since start. */
  connsSeen: number;
  /** The sink threw (it must not); counted and ignored. */
  sinkErrors: number;
  /** Connections acknowledged to redirectors as stored. */
  acksSent: number;
}

export interface IpcServer {
  path: string;
  token: string;
  stats(): IpcServerStats;
  close(): Promise<void>;
}

export class IpcListenError extends Error {
  override name = "IpcListenError";
}

interface Peer {
  id: number;
  socket: net.Socket;
  decoder: FrameDecoder;
  authed: boolean;
  helloTimer?: ReturnType<typeof setTimeout>;
  /** Connections this peer opened and has not closed: closed for it if it goes away. */
  openConns: Set<string>;
  label: string;
  dropped: boolean;
  /** The redirector speaks proto >= 2: it wants acks. */
  acks: boolean;
  /** Connections stored and not yet acknowledged; sent in batches. */
  ackQueue: string[];
  ackScheduled: boolean;
}

export async function startIpcServer(opts: IpcServerOptions): Promise<IpcServer> {
  const log = opts.log ?? silentLogger;
  const helloTimeoutMs = opts.helloTimeoutMs ?? 5000;
  const maxOpenConns = opts.maxOpenConnsPerPeer ?? 100_000;
  const pipe = isWindowsPipePath(opts.path);

  if (!pipe) {
    prepareSocketDir(opts.path, opts.dataDir);
    await removeStaleSocket(opts.path);
  } else if (await someoneListens(opts.path)) {
    // Windows lets a second server create instances of an existing pipe name (Wine even ignores
    // FILE_FLAG_FIRST_PIPE_INSTANCE); redirectors would then reach either sensor at random.
    throw new IpcListenError(`another sensor is already listening on ${opts.path}`);
  }
  // The token is written only once we know no live sensor owns this path, so we never clobber its token.
  const token = opts.token ?? (opts.dataDir ? createRunToken(opts.dataDir) : undefined);
  if (!token) throw new IpcListenError("ipc: startIpcServer needs a token or a dataDir to write one to");

  const counters: Omit<IpcServerStats, "peers" | "redirectors"> = { peersSeen: 0, framesIn: 0, bytesIn: 0, badFrames: 0, authFailures: 0, connsSeen: 0, sinkErrors: 0, acksSent: 0 };
  const whenDurable = opts.whenDurable ?? ((done: () => void) => done());
  const peers = new Set<Peer>();
  let nextPeerId = 1;

  const toSink = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      counters.sinkErrors++;
      log("error", `ipc: sink failed: ${(err as Error).message}`);
    }
  };

  /** Acks go out in batches: one frame per tick for all the connections stored meanwhile. */
  const sendAcks = (peer: Peer) => {
    peer.ackScheduled = false;
    if (peer.dropped || peer.socket.destroyed) return void (peer.ackQueue.length = 0);
    const ids = peer.ackQueue.splice(0);
    for (let i = 0; i < ids.length; i += MAX_ACK_IDS) peer.socket.write(encodeFrame({ t: "ack", connIds: ids.slice(i, i + MAX_ACK_IDS) }));
    counters.acksSent += ids.length;
  };
  const ackWhenStored = (peer: Peer, connId: string) => {
    whenDurable(() => {
      if (peer.dropped || peer.socket.destroyed) return;
      peer.ackQueue.push(connId);
      if (peer.ackScheduled) return;
      peer.ackScheduled = true;
      setImmediate(() => sendAcks(peer));
    });
  };

  const release = (peer: Peer, reason: string, closeAtSink = true) => {
    if (peer.helloTimer) clearTimeout(peer.helloTimer);
    peers.delete(peer);
    // The redirector can no longer finish these; close them so the sensor emits what it has and frees state.
    if (closeAtSink) for (const connId of peer.openConns) toSink(() => opts.sink.close(connId, Date.now(), reason));
    peer.openConns.clear();
  };

  const drop = (peer: Peer, reason: string, counter?: "badFrames" | "authFailures") => {
    if (peer.dropped) return;
    peer.dropped = true;
    if (counter) counters[counter]++;
    log("warn", `ipc: dropped peer: ${reason} (${peer.label})`);
    release(peer, `ipc: redirector dropped: ${reason}`);
    peer.socket.destroy();
  };

  const onFrame = (peer: Peer, frame: IpcFrame): void => {
    counters.framesIn++;
    if (!peer.authed) {
      if (frame.t !== "hello") return drop(peer, `expected hello, got ${frame.t}`, "authFailures");
      if (!tokensEqual(frame.token, token)) return drop(peer, `wrong token from pid ${frame.pid}`, "authFailures");
      peer.authed = true;
      clearTimeout(peer.helloTimer);
      peer.label = `redirector pid ${frame.pid} run ${frame.runId}`;
      // A proto-1 redirector would reject ack frames (unknown type): it gets none.
      peer.acks = (frame.proto ?? 1) >= 2;
      log("debug", `ipc: ${peer.label} (version ${frame.version}, ipc proto ${frame.proto ?? 1}) connected`);
      peer.socket.write(encodeFrame({ t: "welcome", version: VERSION, proto: IPC_PROTO }));
      return;
    }
    switch (frame.t) {
      case "open":
        if (peer.openConns.size >= maxOpenConns) return drop(peer, `more than ${maxOpenConns} open connections`, "badFrames");
        peer.openConns.add(frame.meta.connId);
        counters.connsSeen++;
        return toSink(() => opts.sink.open(frame.meta));
      case "data":
        return toSink(() => opts.sink.data(frame.connId, frame.dir, frame.bytes, frame.ts));
      case "close":
        peer.openConns.delete(frame.connId);
        toSink(() => opts.sink.close(frame.connId, frame.ts, frame.error));
        // Acked even if the sink threw: resending the same bytes would throw again.
        if (peer.acks) ackWhenStored(peer, frame.connId);
        return;
      case "activity":
        return toSink(() => opts.sink.activity?.(frame.items));
      default:
        return drop(peer, `unexpected ${frame.t} frame after hello`, "badFrames");
    }
  };

  const server = net.createServer((socket) => {
    counters.peersSeen++;
    const peer: Peer = {
      id: nextPeerId++,
      socket,
      decoder: new FrameDecoder(),
      authed: false,
      openConns: new Set(),
      label: `peer #${nextPeerId - 1}`,
      dropped: false,
      acks: false,
      ackQueue: [],
      ackScheduled: false,
    };
    peers.add(peer);
    peer.helloTimer = setTimeout(() => drop(peer, `no hello within ${helloTimeoutMs} ms`, "authFailures"), helloTimeoutMs);
    socket.on("data", (chunk: Buffer) => {
      if (peer.dropped) return;
      counters.bytesIn += chunk.length;
      const { frames, error } = peer.decoder.push(chunk);
      for (const frame of frames) {
        if (peer.dropped) return;
        onFrame(peer, frame);
      }
      if (error && !peer.dropped) drop(peer, error, peer.authed ? "badFrames" : "authFailures");
    });
    socket.on("error", () => {}); // a reset peer ends in "close" below
    socket.on("close", () => {
      if (!peer.dropped) release(peer, "ipc: redirector disconnected");
    });
  });

  await listen(server, opts.path);
  let socketIno: number | undefined;
  if (!pipe) {
    restrictSocketAccess(opts.path);
    socketIno = fs.statSync(opts.path).ino;
  } else {
    restrictSocketAccess(opts.path);
  }

  let closed = false;
  return {
    path: opts.path,
    token,
    stats: () => ({ peers: peers.size, redirectors: [...peers].filter((p) => p.authed).length, ...counters }),
    async close() {
      if (closed) return;
      closed = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const peer of [...peers]) {
        if (peer.ackQueue.length > 0) sendAcks(peer); // stored already: spare the redirector a resend
        peer.dropped = true;
        // A redirector that gets acks resends its open connections whole to the next sensor: closing them
        // here would store a "cut short" answer for each call in flight, beside the real one later.
        release(peer, "ipc: sensor stopped", !peer.acks);
        peer.socket.destroy();
      }
      await done;
      // Remove the socket file only if it is still ours (a newer sensor may have replaced it).
      if (!pipe && socketIno !== undefined) {
        try {
          if (fs.statSync(opts.path).ino === socketIno) fs.unlinkSync(opts.path);
        } catch {
          // already gone
        }
      }
    },
  };
}

function listen(server: net.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      if (err.code === "EADDRINUSE") reject(new IpcListenError(`another sensor is already listening on ${path}`));
      else reject(new IpcListenError(`ipc: cannot listen on ${path}: ${err.message}`));
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(path);
  });
}

/**
 * A socket file left by a sensor that died is removed; one with a live sensor behind it is an error.
 * Anything that is not a socket is left alone (we never delete a user's file).
 */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return; // nothing there
  }
  if (!stat.isSocket()) throw new IpcListenError(`ipc: ${socketPath} exists and is not a socket; remove it or choose another --pipe`);
  if (await someoneListens(socketPath)) throw new IpcListenError(`another sensor is already listening on ${socketPath}`);
  fs.unlinkSync(socketPath);
}

/** True when something accepts connections at `socketPath` (a unix socket or a named pipe). */
function someoneListens(socketPath: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const probe = net.createConnection(socketPath);
    const timer = setTimeout(() => {
      probe.destroy();
      resolve(true); // a listener that accepts but never answers is still someone's live socket
    }, 1000);
    probe.once("connect", () => {
      clearTimeout(timer);
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
