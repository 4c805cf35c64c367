// The divert engine: decides, per packet WinDivert hands over, whether to leave it alone, drop it, or
// rewrite it so the connection lands on the local proxy; and rewrites it. Sans-IO: bytes and a clock in,
// a verdict out. The packet loop (worker.ts) does the I/O.
//
// Rewrite method: REFLECTION (the scheme of WinDivert's streamdump example), not NAT to 127.0.0.1.
//   Windows drops packets whose source is a real interface address but whose destination is loopback,
//   so "dst → 127.0.0.1:proxy" does not work for non-loopback traffic. Reflection keeps both addresses
//   real and swaps them, then re-injects the packet as INBOUND so the local stack delivers it:
//
//   client → server   C:cp → S:sp     becomes   S:cp → C:P     (P = proxy port; sent inbound)
//   proxy  → client   C:P  → S:cp     becomes   S:sp → C:cp    (sent inbound: the client sees S:sp)
//
//   The proxy therefore accepts a connection whose peer is S:cp: the peer IP *is* the original server,
//   and the pair (S, cp) names the connection. The table remembers, per (S, cp), the original server
//   port sp (443, 11434...), the client address C, the hostname learned from DNS and the owning PID;
//   the proxy asks for it by its peer address (see directory.ts). The proxy must listen on the wildcard
//   address (the reflected packets are addressed to C, the client's own interface address); packets
//   that really arrive from the network for port P are dropped here so the proxy is not exposed.
//
// Only SYNs (without ACK) create entries, so connections that existed before start are never touched;
// every later packet is rewritten only if its connection is in the table. The proxy's own upstream
// connections are recognised by owner PID and never diverted (no loops). Loopback packets (local
// providers such as Ollama) are re-injected outbound, as Windows loops outbound loopback packets back.
import { setIpv4HeaderChecksum, setTransportChecksum } from "./checksum.ts";
import { DnsCache, parseDnsAnswers } from "./dns.ts";
import {
  formatIp, isLoopback, isParsed, parsePacket, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN,
  writePort, type ParsedPacket,
} from "./packet.ts";
import { ConnTable, connKey, DEFAULT_LIMITS, type DivertedConn, type TableLimits } from "./table.ts";

/** What WinDivert says about a packet (from WINDIVERT_ADDRESS) that the engine needs. */
export interface PacketMeta {
  outbound: boolean;
  loopback: boolean;
}

export type Verdict =
  /** Re-inject unchanged, with the address it came with. */
  | { kind: "pass"; reason: string }
  /** Do not re-inject. */
  | { kind: "drop"; reason: string }
  /** The packet was rewritten in place (checksums included); re-inject with this direction. */
  | { kind: "rewritten"; outbound: boolean; conn: DivertedConn };

export interface FlowId {
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
}

export interface EngineOptions {
  /** Port the proxy's transparent listener accepts reflected connections on. */
  proxyPort: number;
  /** Divert every TCP connection to a TLS port, not only those to addresses learned for AI hosts. */
  allTraffic: boolean;
  isAiHost: (host: string) => boolean;
  /** PID of the process whose own connections must never be diverted (the proxy). */
  selfPid: number;
  /** Other PIDs never to divert. */
  excludedPids?: ReadonlySet<number>;
  /** Owner of a connecting socket, if known (SOCKET layer / TCP table). */
  ownerPid?: (flow: FlowId) => number | undefined;
  tlsPorts?: readonly number[];
  /** Local providers captured on loopback (Ollama 11434, LM Studio 1234). */
  localPorts?: readonly number[];
  limits?: Partial<TableLimits>;
  dnsCache?: DnsCache;
  onDiverted?: (conn: DivertedConn) => void;
  onClosed?: (conn: DivertedConn) => void;
}

export interface EngineStats {
  packets: number;
  rewritten: number;
  passed: number;
  dropped: number;
  diverted: number;
  closed: number;
  selfExcluded: number;
  tableFull: number;
  dnsLearned: number;
  quicBlocked: number;
  malformed: number;
}

function readSeq(pkt: Uint8Array, l4: number): number {
  return ((pkt[l4 + 4]! << 24) >>> 0) + (pkt[l4 + 5]! << 16) + (pkt[l4 + 6]! << 8) + pkt[l4 + 7]!;
}

export class DivertEngine {
  readonly table: ConnTable;
  readonly dns: DnsCache;
  readonly stats: EngineStats = {
    packets: 0, rewritten: 0, passed: 0, dropped: 0, diverted: 0, closed: 0, selfExcluded: 0,
    tableFull: 0, dnsLearned: 0, quicBlocked: 0, malformed: 0,
  };
  private readonly tlsPorts: ReadonlySet<number>;
  private readonly localPorts: ReadonlySet<number>;

  constructor(private readonly opts: EngineOptions) {
    this.table = new ConnTable({ ...DEFAULT_LIMITS, ...opts.limits });
    this.dns = opts.dnsCache ?? new DnsCache();
    this.tlsPorts = new Set(opts.tlsPorts ?? [443]);
    this.localPorts = new Set(opts.localPorts ?? [11434, 1234]);
  }

  /** Decides about one packet, rewriting it in place when it belongs to a diverted connection. */
  handle(pkt: Uint8Array, meta: PacketMeta, now: number): Verdict {
    this.stats.packets++;
    const v = this.decide(pkt, meta, now);
    if (v.kind === "pass") this.stats.passed++;
    else if (v.kind === "drop") this.stats.dropped++;
    else this.stats.rewritten++;
    return v;
  }

  /** Expires old connections; call about once a second. */
  expire(now: number): void {
    for (const c of this.table.expire(now)) {
      this.stats.closed++;
      this.opts.onClosed?.(c);
    }
  }

  private decide(pkt: Uint8Array, meta: PacketMeta, now: number): Verdict {
    const p = parsePacket(pkt);
    if (!isParsed(p)) {
      // ICMP, fragments and the like are not ours; only broken TCP/UDP/IP headers count as malformed.
      if (!/^(protocol |IPv[46] fragment)/.test(p.error)) this.stats.malformed++;
      return { kind: "pass", reason: p.error };
    }
    if (p.protocol === PROTO_UDP) return this.udp(pkt, p, meta, now);
    if (p.protocol !== PROTO_TCP) return { kind: "pass", reason: "not TCP/UDP" };
    const src = formatIp(pkt, p.srcOff, p.addrLen);
    const dst = formatIp(pkt, p.dstOff, p.addrLen);
    const P = this.opts.proxyPort;

    if (!meta.outbound && !meta.loopback && p.dstPort === P) {
      return { kind: "drop", reason: "inbound from the network to the proxy port" };
    }
    if (!meta.outbound) return { kind: "pass", reason: "inbound" };

    // Proxy → client: C:P → S:cp.
    if (p.srcPort === P) {
      const conn = this.table.get(connKey(dst, p.dstPort));
      if (!conn) return { kind: "pass", reason: "proxy packet for a connection not diverted" };
      this.table.observe(conn, false, (p.tcpFlags & TCP_FIN) !== 0, (p.tcpFlags & TCP_RST) !== 0, now);
      return this.reflect(pkt, p, meta, conn, "srcPort", conn.serverPort);
    }

    // Client → server: C:cp → S:sp.
    const key = connKey(dst, p.srcPort);
    const isSyn = (p.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN;
    if (isSyn) {
      const existing = this.table.get(key);
      const isn = readSeq(pkt, p.l4);
      if (existing && existing.clientIsn === isn && existing.clientIp === src && existing.serverPort === p.dstPort) {
        existing.lastSeen = now; // SYN retransmission
        return this.reflect(pkt, p, meta, existing, "dstPort", P);
      }
      const why = this.divertReason(p, pkt, src, dst, meta, now);
      if (typeof why !== "object") {
        if (existing) {
          this.table.delete(key); // port reused for a connection we do not divert
          this.opts.onClosed?.(existing);
        }
        return { kind: "pass", reason: why };
      }
      const conn: DivertedConn = {
        key, clientIp: src, clientPort: p.srcPort, serverIp: dst, serverPort: p.dstPort, host: why.host,
        pid: why.pid, clientIsn: isn, createdAt: now, lastSeen: now, state: "syn", clientFin: false, proxyFin: false,
      };
      if (!this.table.add(conn)) {
        this.stats.tableFull++;
        return { kind: "pass", reason: "connection table full" };
      }
      if (existing) this.opts.onClosed?.(existing);
      this.stats.diverted++;
      this.opts.onDiverted?.(conn);
      return this.reflect(pkt, p, meta, conn, "dstPort", P);
    }
    const conn = this.table.get(key);
    if (!conn || conn.clientIp !== src || conn.serverPort !== p.dstPort) {
      return { kind: "pass", reason: "connection not diverted" };
    }
    this.table.observe(conn, true, (p.tcpFlags & TCP_FIN) !== 0, (p.tcpFlags & TCP_RST) !== 0, now);
    return this.reflect(pkt, p, meta, conn, "dstPort", P);
  }

  /** Why a new outbound connection is diverted ({host, pid}) or not (a reason string). */
  private divertReason(
    p: ParsedPacket, pkt: Uint8Array, src: string, dst: string, meta: PacketMeta, now: number,
  ): { host?: string; pid?: number } | string {
    let host: string | undefined; // none for local providers: the proxy reads SNI or the Host header
    if (this.localPorts.has(p.dstPort) && meta.loopback && isLoopback(pkt, p.dstOff, p.addrLen)) {
      // a local provider (Ollama, LM Studio)
    } else if (this.tlsPorts.has(p.dstPort)) {
      host = this.dns.lookup(dst, now);
      if (!host && !this.opts.allTraffic) return "not an AI address";
    } else {
      return "port not diverted";
    }
    if (p.dstPort === this.opts.proxyPort) return "connection to the proxy itself";
    const pid = this.opts.ownerPid?.({ clientIp: src, clientPort: p.srcPort, serverIp: dst, serverPort: p.dstPort });
    if (pid !== undefined && (pid === this.opts.selfPid || this.opts.excludedPids?.has(pid))) {
      this.stats.selfExcluded++;
      return "the proxy's own connection";
    }
    return { host, pid };
  }

  /** Swaps the addresses, sets one port, fixes checksums. */
  private reflect(
    pkt: Uint8Array, p: ParsedPacket, meta: PacketMeta, conn: DivertedConn, port: "srcPort" | "dstPort", value: number,
  ): Verdict {
    for (let i = 0; i < p.addrLen; i++) {
      const s = pkt[p.srcOff + i]!;
      pkt[p.srcOff + i] = pkt[p.dstOff + i]!;
      pkt[p.dstOff + i] = s;
    }
    writePort(pkt, port === "srcPort" ? p.l4 : p.l4 + 2, value);
    if (p.version === 4) setIpv4HeaderChecksum(pkt, p.l4);
    setTransportChecksum(pkt, p.version, p.l4, p.end, PROTO_TCP);
    return { kind: "rewritten", outbound: meta.loopback, conn };
  }

  private udp(pkt: Uint8Array, p: ParsedPacket, meta: PacketMeta, now: number): Verdict {
    if (p.srcPort === 53 && (!meta.outbound || meta.loopback)) {
      for (const a of parseDnsAnswers(pkt.subarray(p.payload, p.payload + p.payloadLen))) {
        const ai = a.names.some((n) => this.opts.isAiHost(n));
        if (!ai) continue;
        this.dns.learn(formatIp(a.ip), a.query, a.ttlSeconds, now);
        this.stats.dnsLearned++;
      }
      return { kind: "pass", reason: "DNS answer" };
    }
    if (meta.outbound && this.tlsPorts.has(p.dstPort)) {
      const dst = formatIp(pkt, p.dstOff, p.addrLen);
      if (this.opts.allTraffic || this.dns.lookup(dst, now)) {
        // QUIC to an AI host: dropping it makes the client fall back to TCP, which is diverted.
        this.stats.quicBlocked++;
        return { kind: "drop", reason: "QUIC to an AI address" };
      }
    }
    return { kind: "pass", reason: "UDP" };
  }
}
