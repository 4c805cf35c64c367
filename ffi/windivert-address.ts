// WINDIVERT_ADDRESS (WinDivert 2.2, windivert.h), 80 bytes, read and written with a DataView:
//   0  INT64  Timestamp
//   8  UINT32 bitfield: Layer:8 Event:8 Sniffed:1 Outbound:1 Loopback:1 Impostor:1 IPv6:1
//             IPChecksum:1 TCPChecksum:1 UDPChecksum:1 Reserved1:8   (LSB first, as MSVC/mingw lay it out)
//  12  UINT32 Reserved2
//  16  union (64 bytes):
//        NETWORK: UINT32 IfIdx, UINT32 SubIfIdx
//        FLOW / SOCKET: UINT64 EndpointId, UINT64 ParentEndpointId, UINT32 ProcessId,
//                       UINT32 LocalAddr[4], UINT32 RemoteAddr[4], UINT16 LocalPort, UINT16 RemotePort,
//                       UINT8 Protocol
// Little-endian throughout (x86-64). FLOW/SOCKET addresses are IPv6 in host order with the 32-bit words
// reversed (WinDivertHelperNtohIPv6Address): the 16 bytes in memory are the network-order address
// reversed; IPv4 appears as the IPv4-mapped ::ffff:a.b.c.d.

export const ADDRESS_SIZE = 80;

export const LAYER_NETWORK = 0;
export const LAYER_NETWORK_FORWARD = 1;
export const LAYER_FLOW = 2;
export const LAYER_SOCKET = 3;
export const LAYER_REFLECT = 4;

export const EVENT_NETWORK_PACKET = 0;
export const EVENT_SOCKET_BIND = 3;
export const EVENT_SOCKET_CONNECT = 4;
export const EVENT_SOCKET_LISTEN = 5;
export const EVENT_SOCKET_ACCEPT = 6;
export const EVENT_SOCKET_CLOSE = 7;

export interface AddressFlags {
  layer: number;
  event: number;
  sniffed: boolean;
  outbound: boolean;
  loopback: boolean;
  impostor: boolean;
  ipv6: boolean;
  ipChecksum: boolean;
  tcpChecksum: boolean;
  udpChecksum: boolean;
}

export interface NetworkAddress extends AddressFlags {
  timestamp: bigint;
  ifIdx: number;
  subIfIdx: number;
}

export interface SocketData {
  endpointId: bigint;
  parentEndpointId: bigint;
  processId: number;
  /** Network-order address bytes: 4 for IPv4 (mapped addresses unwrapped), 16 for IPv6. */
  localAddr: Uint8Array;
  remoteAddr: Uint8Array;
  localPort: number;
  remotePort: number;
  protocol: number;
}

const BITS = ["sniffed", "outbound", "loopback", "impostor", "ipv6", "ipChecksum", "tcpChecksum", "udpChecksum"] as const;

function dv(buf: Uint8Array, index: number): DataView {
  return new DataView(buf.buffer, buf.byteOffset + index * ADDRESS_SIZE, ADDRESS_SIZE);
}

export function readFlags(buf: Uint8Array, index = 0): AddressFlags {
  const bits = dv(buf, index).getUint32(8, true);
  const f = { layer: bits & 0xff, event: (bits >>> 8) & 0xff } as AddressFlags;
  BITS.forEach((name, i) => { (f as unknown as Record<string, boolean>)[name] = ((bits >>> (16 + i)) & 1) === 1; });
  return f;
}

export function writeFlags(buf: Uint8Array, index: number, f: Partial<AddressFlags>): void {
  const d = dv(buf, index);
  let bits = d.getUint32(8, true);
  if (f.layer !== undefined) bits = (bits & ~0xff) | (f.layer & 0xff);
  if (f.event !== undefined) bits = (bits & ~0xff00) | ((f.event & 0xff) << 8);
  BITS.forEach((name, i) => {
    const v = f[name];
    if (v === undefined) return;
    bits = v ? bits | (1 << (16 + i)) : bits & ~(1 << (16 + i));
  });
  d.setUint32(8, bits >>> 0, true);
}

export function readNetwork(buf: Uint8Array, index = 0): NetworkAddress {
  const d = dv(buf, index);
  return { ...readFlags(buf, index), timestamp: d.getBigInt64(0, true), ifIdx: d.getUint32(16, true), subIfIdx: d.getUint32(20, true) };
}

export function writeNetwork(buf: Uint8Array, index: number, a: Partial<NetworkAddress>): void {
  const d = dv(buf, index);
  if (a.timestamp !== undefined) d.setBigInt64(0, a.timestamp, true);
  writeFlags(buf, index, a);
  if (a.ifIdx !== undefined) d.setUint32(16, a.ifIdx, true);
  if (a.subIfIdx !== undefined) d.setUint32(20, a.subIfIdx, true);
}

/** 16 reversed bytes at `off` → network-order bytes (IPv4-mapped unwrapped to 4 bytes). */
function readSocketIp(d: DataView, off: number): Uint8Array {
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = d.getUint8(off + 15 - i);
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return mapped ? b.slice(12) : b;
}

function writeSocketIp(d: DataView, off: number, ip: Uint8Array): void {
  const b = new Uint8Array(16);
  if (ip.length === 4) {
    b[10] = 0xff;
    b[11] = 0xff;
    b.set(ip, 12);
  } else b.set(ip);
  for (let i = 0; i < 16; i++) d.setUint8(off + 15 - i, b[i]!);
}

export function readSocket(buf: Uint8Array, index = 0): SocketData & AddressFlags {
  const d = dv(buf, index);
  return {
    ...readFlags(buf, index),
    endpointId: d.getBigUint64(16, true),
    parentEndpointId: d.getBigUint64(24, true),
    processId: d.getUint32(32, true),
    localAddr: readSocketIp(d, 36),
    remoteAddr: readSocketIp(d, 52),
    localPort: d.getUint16(68, true),
    remotePort: d.getUint16(70, true),
    protocol: d.getUint8(72),
  };
}

export function writeSocket(buf: Uint8Array, index: number, s: SocketData & Partial<AddressFlags>): void {
  const d = dv(buf, index);
  writeFlags(buf, index, s);
  d.setBigUint64(16, s.endpointId, true);
  d.setBigUint64(24, s.parentEndpointId, true);
  d.setUint32(32, s.processId, true);
  writeSocketIp(d, 36, s.localAddr);
  writeSocketIp(d, 52, s.remoteAddr);
  d.setUint16(68, s.localPort, true);
  d.setUint16(70, s.remotePort, true);
  d.setUint8(72, s.protocol);
}
