// Parsing of the GetExtendedTcpTable (TCP_TABLE_OWNER_PID_ALL) buffers and the owner lookup used for
// process attribution on Windows, on buffers laid out as iphlpapi's MIB structs.
import { expect, test } from "bun:test";
import { parseTcpTable4, parseTcpTable6 } from "../../ffi/win32.ts";
import { findOwner } from "../../src/capture/process/windows.ts";
import { formatIp, parseIp } from "../../src/capture/windivert/packet.ts";

function table4(rows: [string, number, string, number, number, number][]): Uint8Array {
  const buf = new Uint8Array(4 + rows.length * 24 + 8); // trailing slack as the API leaves
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, rows.length, true);
  rows.forEach(([la, lp, ra, rp, state, pid], i) => {
    const o = 4 + i * 24;
    dv.setUint32(o, state, true);
    buf.set(parseIp(la)!, o + 4);
    dv.setUint16(o + 8, lp, false); // port in network order in the low bytes of the DWORD
    buf.set(parseIp(ra)!, o + 12);
    dv.setUint16(o + 16, rp, false);
    dv.setUint32(o + 20, pid, true);
  });
  return buf;
}

function table6(rows: [string, number, string, number, number, number][]): Uint8Array {
  const buf = new Uint8Array(4 + rows.length * 56);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, rows.length, true);
  rows.forEach(([la, lp, ra, rp, state, pid], i) => {
    const o = 4 + i * 56;
    buf.set(parseIp(la)!, o);
    dv.setUint32(o + 16, 0, true);
    dv.setUint16(o + 20, lp, false);
    buf.set(parseIp(ra)!, o + 24);
    dv.setUint16(o + 44, rp, false);
    dv.setUint32(o + 48, state, true);
    dv.setUint32(o + 52, pid, true);
  });
  return buf;
}

test("IPv4 table rows: addresses, ports, state, PID", () => {
  const rows = parseTcpTable4(table4([["0.0.0.0", 135, "0.0.0.0", 0, 2, 1000], ["10.0.0.5", 50123, "162.159.140.245", 443, 5, 4321]]));
  expect(rows.map((r) => [formatIp(r.localAddr), r.localPort, formatIp(r.remoteAddr), r.remotePort, r.state, r.pid])).toEqual([
    ["0.0.0.0", 135, "0.0.0.0", 0, 2, 1000],
    ["10.0.0.5", 50123, "162.159.140.245", 443, 5, 4321],
  ]);
  expect(findOwner(rows, { ip: "10.0.0.5", port: 50123 }, { ip: "162.159.140.245", port: 443 })?.pid).toBe(4321);
  expect(findOwner(rows, { ip: "::ffff:10.0.0.5", port: 50123 })?.pid).toBe(4321);
  expect(findOwner(rows, { ip: "10.0.0.5", port: 50123 }, { ip: "1.1.1.1", port: 443 })).toBeUndefined();
});

test("IPv6 table rows", () => {
  const rows = parseTcpTable6(table6([["2001:db8::5", 50200, "2606:4700::1", 443, 5, 77]]));
  expect(rows[0]).toMatchObject({ localPort: 50200, remotePort: 443, state: 5, pid: 77 });
  expect(findOwner(rows, { ip: "2001:db8::5", port: 50200 }, { ip: "2606:4700::1", port: 443 })?.pid).toBe(77);
});

test("a count larger than the buffer is clamped, short buffers give nothing", () => {
  const buf = table4([["10.0.0.5", 1, "10.0.0.6", 2, 5, 9]]);
  new DataView(buf.buffer).setUint32(0, 1000, true);
  expect(parseTcpTable4(buf)).toHaveLength(1);
  expect(parseTcpTable4(new Uint8Array(2))).toEqual([]);
  expect(parseTcpTable6(new Uint8Array(3))).toEqual([]);
});
