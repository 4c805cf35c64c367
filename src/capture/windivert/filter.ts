// WinDivert filter strings. Narrow on purpose: every packet matching the NETWORK filter waits in our
// queue, so only what the engine may need is captured: DNS answers (to learn AI addresses), outbound
// TCP to the TLS ports and the local providers, the proxy's outbound packets, QUIC to the TLS ports
// (dropped for AI addresses), and packets from the network aimed at the proxy port (dropped).

export interface FilterPorts {
  proxyPort: number;
  tlsPorts: readonly number[];
  localPorts: readonly number[];
}

const anyPort = (field: string, ports: readonly number[]) => ports.map((p) => `${field} == ${p}`).join(" or ");

function port(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`invalid port ${n}`);
  return n;
}

export function networkFilter(f: FilterPorts): string {
  const P = port(f.proxyPort);
  const tls = f.tlsPorts.map(port);
  const local = f.localPorts.map(port);
  const tcpOut = [anyPort("tcp.DstPort", tls), `tcp.SrcPort == ${P}`];
  if (local.length > 0) tcpOut.push(`(loopback and (${anyPort("tcp.DstPort", local)}))`);
  return [
    "(udp and udp.SrcPort == 53 and (inbound or loopback))",
    `(outbound and udp and (${anyPort("udp.DstPort", tls)}))`,
    `(outbound and tcp and (${tcpOut.join(" or ")}))`,
    `(inbound and !loopback and tcp and tcp.DstPort == ${P})`,
  ].join(" or ");
}

/** SOCKET layer, sniffed and receive-only: who connects where (process attribution, self-exclusion). */
export const SOCKET_FILTER = "tcp and (event == CONNECT or event == CLOSE)";
