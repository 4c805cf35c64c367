// Sensor side of the IPC: accepts redirectors on a unix socket / named pipe, checks their token, decodes
// their frames and hands them to the sink in order. A misbehaving peer is dropped alone; the server and
// the other peers keep running.
// A redirector speaking proto 2 (see frames.ts) gets an ack for each connection once its close has been
// handed to the sink and `whenDurable` says the events it produced are stored; only then may it drop the
// connection's frames. The protocol itself (hello, token, acks, bounds) is ./peer-session.ts, without the socket.
import fs from "node:fs";
import net from "node:net";
import type { TapSink } from "../tap/types.ts";
import { silentLogger, type Logger } from "../util/log.ts";
import { createRunToken, isWindowsPipePath, prepareSocketDir, restrictSocketAccess } from "./endpoint.ts";
import { encodeFrame, MAX_ACK_IDS } from "./frames.ts";
import { IpcPeerSession, type PeerAction } from "./peer-session.ts";

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
  socket: net.Socket;
  session: IpcPeerSession;
  helloTimer?: ReturnType<typeof setTimeout>;
  dropped: boolean;
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

  /** Carries out what a peer's session decided, in order. */
  const run = (peer: Peer, actions: PeerAction[]) => {
    for (const a of actions) {
      switch (a.t) {
        case "open":
          toSink(() => opts.sink.open(a.meta));
          break;
        case "data":
          toSink(() => opts.sink.data(a.connId, a.dir, a.bytes, a.ts));
          break;
        case "close":
          toSink(() => opts.sink.close(a.connId, a.ts, a.error));
          break;
        case "activity":
          toSink(() => opts.sink.activity?.(a.items));
          break;
        case "close-at-sink":
          // The redirector can no longer finish these; close them so the sensor emits what it has and frees state.
          toSink(() => opts.sink.close(a.connId, Date.now(), a.reason));
          break;
        case "ack-when-stored":
          ackWhenStored(peer, a.connId);
          break;
        case "to-peer":
          if (a.frame.t === "welcome" && peer.session.state.s === "authed") {
            clearTimeout(peer.helloTimer);
            const { version, proto } = peer.session.state;
            log("debug", `ipc: ${peer.session.label} (version ${version}, ipc proto ${proto}) connected`);
          }
          peer.socket.write(encodeFrame(a.frame));
          break;
        case "drop":
          peer.dropped = true;
          log("warn", `ipc: dropped peer: ${a.reason} (${peer.session.label})`);
          forget(peer);
          peer.socket.destroy();
          break;
      }
    }
  };

  const forget = (peer: Peer) => {
    if (peer.helloTimer) clearTimeout(peer.helloTimer);
    peers.delete(peer);
  };

  const server = net.createServer((socket) => {
    counters.peersSeen++;
    const peer: Peer = { socket, session: new IpcPeerSession(nextPeerId++, token, maxOpenConns, counters), dropped: false, ackQueue: [], ackScheduled: false };
    peers.add(peer);
    peer.helloTimer = setTimeout(() => run(peer, peer.session.helloTimeout(helloTimeoutMs)), helloTimeoutMs);
    socket.on("data", (chunk: Buffer) => {
      if (peer.dropped) return;
      counters.bytesIn += chunk.length;
      run(peer, peer.session.push(chunk));
    });
    socket.on("error", () => {}); // a reset peer ends in "close" below
    socket.on("close", () => {
      if (peer.dropped) return;
      forget(peer);
      run(peer, peer.session.end("ipc: redirector disconnected"));
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
    stats: () => ({ peers: peers.size, redirectors: [...peers].filter((p) => p.session.authed).length, ...counters }),
    async close() {
      if (closed) return;
      closed = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const peer of [...peers]) {
        if (peer.ackQueue.length > 0) sendAcks(peer); // stored already: spare the redirector a resend
        peer.dropped = true;
        forget(peer);
        // A redirector that gets acks resends its open connections whole to the next sensor: closing them
        // here would store a "cut short" answer for each call in flight, beside the real one later.
        run(peer, peer.session.end("ipc: sensor stopped", !peer.session.acks));
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
    // The socket file is created by bind(2) with the process umask: under a tight umask it never exists,
    // even for a moment, with a mode another local user could connect through (chmod follows below too).
    const previous = isWindowsPipePath(path) ? undefined : process.umask(0o177);
    try {
      server.listen(path);
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
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
