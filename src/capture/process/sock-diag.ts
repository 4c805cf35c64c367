// One socket's owner uid and inode from the kernel over NETLINK_SOCK_DIAG, instead of reading all of
// /proc/net/tcp{,6} (milliseconds of kernel time with thousands of TIME_WAIT rows; this is microseconds).
// An exact query (SOCK_DIAG_BY_FAMILY without NLM_F_DUMP) names the socket by its 4-tuple as seen from
// its own side: src/sport = the client end, dst/dport = the proxy end. The kernel answers in the
// sender's context, so the reply is queued before send() returns; SO_RCVTIMEO only guards the recv.
//
// One netlink socket per thread (module state, and every Worker has its own), reopened after any error.
// "No such socket" and "inet_diag/tcp_diag not available" both come back as ENOENT, so each newly opened
// socket is first checked against a loopback listener of our own: the query must find it.
import { AF_INET, AF_INET6, AF_NETLINK, loadLibc, SO_RCVTIMEO, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET } from "../../../ffi/libc.ts";
import type { Endpoint } from "../../tap/types.ts";
import { canonicalIp, canonicalIpBytes } from "./ip.ts";

export interface SocketRow {
  inode: number;
  uid: number;
}

/** A row, undefined when the kernel has no such socket (or it is in TIME_WAIT: no inode), or "unavailable". */
export type SockDiagAnswer = SocketRow | undefined | "unavailable";

// linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h (sizes and offsets checked with gcc on x86-64).
// Host-order fields are read and written little-endian, as on x86-64 and arm64.
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 1;
const IPPROTO_TCP = 6;
const ENOENT = 2;
const NLMSGHDR_SIZE = 16; // u32 len, u16 type, u16 flags, u32 seq, u32 pid
const REQ_V2_SIZE = 56; // u8 family, u8 protocol, u8 ext, u8 pad, u32 states, inet_diag_sockid (48)
const SOCKID_OFFSET = 8; // in inet_diag_req_v2: be16 sport, be16 dport, be32 src[4], be32 dst[4], u32 if, u32 cookie[2]
const MSG_SIZE = 72; // inet_diag_msg: u8 family, state, timer, retrans, inet_diag_sockid (48), ...
const MSG_ID_OFFSET = 4;
const MSG_UID_OFFSET = 64;
const MSG_INODE_OFFSET = 68;
export const REQUEST_SIZE = NLMSGHDR_SIZE + REQ_V2_SIZE;

/** How long a recv may block: the reply is normally there already. */
const RECV_TIMEOUT_US = 50_000;
/** After the self-check fails, netlink is not tried again for this long. */
const RETRY_AFTER_MS = 60_000;

export interface DiagQuery {
  family: typeof AF_INET | typeof AF_INET6;
  /** Network-order address bytes: 4 for AF_INET, 16 for AF_INET6. */
  src: Uint8Array;
  sport: number;
  dst: Uint8Array;
  dport: number;
}

/** Writes nlmsghdr + inet_diag_req_v2 for one exact TCP socket lookup into `buf` (REQUEST_SIZE bytes). */
export function encodeRequest(buf: Uint8Array, seq: number, q: DiagQuery): void {
  buf.fill(0, 0, REQUEST_SIZE);
  const dv = new DataView(buf.buffer, buf.byteOffset, REQUEST_SIZE);
  dv.setUint32(0, REQUEST_SIZE, true);
  dv.setUint16(4, SOCK_DIAG_BY_FAMILY, true);
  dv.setUint16(6, NLM_F_REQUEST, true);
  dv.setUint32(8, seq, true);
  const r = NLMSGHDR_SIZE;
  buf[r] = q.family;
  buf[r + 1] = IPPROTO_TCP;
  dv.setUint32(r + 4, 0xffffffff, true); // every TCP state
  const id = r + SOCKID_OFFSET;
  dv.setUint16(id, q.sport, false);
  dv.setUint16(id + 2, q.dport, false);
  buf.set(q.src, id + 4);
  buf.set(q.dst, id + 20);
  dv.setUint32(id + 40, 0xffffffff, true); // INET_DIAG_NOCOOKIE
  dv.setUint32(id + 44, 0xffffffff, true);
}

/**
 * Reads the answer to request `seq` for the socket with ports `q` from one recv'd datagram; "other" when it
 * holds none (a late reply to an earlier request).
 */
export function decodeReply(buf: Uint8Array, len: number, seq: number, q: Pick<DiagQuery, "sport" | "dport">): SockDiagAnswer | "other" {
  const dv = new DataView(buf.buffer, buf.byteOffset, len);
  for (let o = 0; o + NLMSGHDR_SIZE <= len; ) {
    const msgLen = dv.getUint32(o, true);
    if (msgLen < NLMSGHDR_SIZE || o + msgLen > len) return "unavailable";
    const type = dv.getUint16(o + 4, true);
    if (dv.getUint32(o + 8, true) === seq) {
      if (type === NLMSG_ERROR) {
        if (msgLen < NLMSGHDR_SIZE + 4) return "unavailable";
        return dv.getInt32(o + NLMSGHDR_SIZE, true) === -ENOENT ? undefined : "unavailable";
      }
      if (type === NLMSG_DONE) return undefined;
      if (type === SOCK_DIAG_BY_FAMILY) {
        if (msgLen < NLMSGHDR_SIZE + MSG_SIZE) return "unavailable";
        // With no connected socket the kernel's lookup falls back to a listener on the client's port:
        // not the client's socket.
        const id = o + NLMSGHDR_SIZE + MSG_ID_OFFSET;
        if (dv.getUint16(id, false) !== q.sport || dv.getUint16(id + 2, false) !== q.dport) return undefined;
        const inode = dv.getUint32(o + NLMSGHDR_SIZE + MSG_INODE_OFFSET, true);
        return inode > 0 ? { inode, uid: dv.getUint32(o + NLMSGHDR_SIZE + MSG_UID_OFFSET, true) } : undefined;
      }
    }
    o += (msgLen + 3) & ~3; // NLMSG_ALIGN
  }
  return "other";
}

/** The exact query for the socket whose local end is `client` and remote end `proxy`; undefined when no socket can match. */
export function queryFor(client: Endpoint, proxy: Endpoint): DiagQuery | undefined {
  const c = canonicalIp(client.ip);
  const p = canonicalIp(proxy.ip);
  if (!c || !p) return undefined;
  const src = canonicalIpBytes(c);
  const dst = canonicalIpBytes(p);
  if (src.length !== dst.length) return undefined;
  // IPv4 and IPv4-mapped IPv6 both as AF_INET: the kernel finds a dual-stack socket by its v4 addresses too.
  return { family: src.length === 4 ? AF_INET : AF_INET6, src, sport: client.port, dst, dport: proxy.port };
}

let fd = -1;
let seq = 0;
let disabledUntil = 0;
const request = new Uint8Array(REQUEST_SIZE);
const reply = new Uint8Array(8192);

/**
 * The uid and inode of the socket whose local end is `client` and remote end `proxy`, from one netlink
 * query; "unavailable" when netlink cannot answer here (not Linux, no libc/FFI, seccomp, no inet_diag),
 * and the caller reads the /proc/net tables instead.
 */
export function sockDiagRow(client: Endpoint, proxy: Endpoint): SockDiagAnswer {
  const q = queryFor(client, proxy);
  if (!q) return undefined;
  return sockDiagQuery(q);
}

/** One exact query (exported for tests: AF_INET6 with a v4-mapped address must work as well). */
export function sockDiagQuery(q: DiagQuery): SockDiagAnswer {
  if (fd < 0 && !open()) return "unavailable";
  const answer = exchange(q);
  if (answer === "unavailable") closeSocket();
  return answer;
}

function exchange(q: DiagQuery): SockDiagAnswer {
  const libc = loadLibc();
  if (!libc || fd < 0) return "unavailable";
  seq = (seq + 1) >>> 0 || 1;
  encodeRequest(request, seq, q);
  if (Number(libc.send(fd, request, REQUEST_SIZE, 0)) !== REQUEST_SIZE) return "unavailable";
  // Skips replies to earlier requests that timed out; each recv is one whole datagram.
  for (let tries = 0; tries < 8; tries++) {
    const n = Number(libc.recv(fd, reply, reply.length, 0));
    if (n <= 0) return "unavailable";
    const answer = decodeReply(reply, n, seq, q);
    if (answer !== "other") return answer;
  }
  return "unavailable";
}

function open(): boolean {
  if (Date.now() < disabledUntil) return false;
  const libc = loadLibc();
  if (!libc) {
    disabledUntil = Infinity;
    return false;
  }
  fd = libc.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    disabledUntil = Date.now() + RETRY_AFTER_MS;
    return false;
  }
  const timeout = new BigInt64Array([0n, BigInt(RECV_TIMEOUT_US)]); // struct timeval (64-bit)
  if (libc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, 16) !== 0 || !selfCheck()) {
    closeSocket();
    disabledUntil = Date.now() + RETRY_AFTER_MS;
    return false;
  }
  return true;
}

function closeSocket(): void {
  if (fd >= 0) loadLibc()?.close(fd);
  fd = -1;
}

/**
 * Without inet_diag/tcp_diag (modules missing, unusual kernels) every query would answer ENOENT, "no such
 * socket", and every lookup would silently fail. So a fresh netlink socket must first find a TCP listener
 * this process opens on 127.0.0.1 for the purpose.
 */
function selfCheck(): boolean {
  const libc = loadLibc()!;
  const tcp = libc.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (tcp < 0) return false;
  try {
    const addr = new Uint8Array(16); // sockaddr_in: u16 family, be16 port, be32 addr, 8 zero bytes
    new DataView(addr.buffer).setUint16(0, AF_INET, true);
    addr.set([127, 0, 0, 1], 4);
    const addrLen = new Uint32Array([16]);
    if (libc.bind(tcp, addr, 16) !== 0 || libc.listen(tcp, 1) !== 0 || libc.getsockname(tcp, addr, addrLen) !== 0) return false;
    const port = new DataView(addr.buffer).getUint16(2, false);
    const row = exchange({ family: AF_INET, src: addr.slice(4, 8), sport: port, dst: new Uint8Array(4), dport: 0 });
    return typeof row === "object" && row.inode > 0;
  } finally {
    libc.close(tcp);
  }
}
