// Finding WinDivert.dll + WinDivert64.sys: explicit dir, next to the exe, the data dir, extraction of an
// embedded copy; and the error that names every place looked at.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { findWinDivertDll, WinDivertMissingError } from "../../src/capture/windivert/dll.ts";
import { networkFilter } from "../../src/capture/windivert/filter.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-dll-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function dir(name: string, files: string[]): string {
  const d = path.join(root, name);
  fs.mkdirSync(d, { recursive: true });
  for (const f of files) fs.writeFileSync(path.join(d, f), `${name}/${f}`);
  return d;
}

test("order: explicit dir, next to the exe, data dir; the driver must sit beside the DLL", () => {
  const exe = dir("exe", ["WinDivert.dll", "WinDivert64.sys"]);
  const data = dir("data", ["WinDivert.dll", "WinDivert64.sys"]);
  const explicit = dir("explicit", ["WinDivert.dll"]); // no .sys: not usable on Windows
  expect(findWinDivertDll({ explicitDir: explicit, exeDir: exe, dataDir: data, requireDriver: true })).toBe(path.join(exe, "WinDivert.dll"));
  expect(findWinDivertDll({ explicitDir: explicit, exeDir: exe, dataDir: data, requireDriver: false })).toBe(path.join(explicit, "WinDivert.dll"));
  expect(findWinDivertDll({ exeDir: dir("empty1", []), dataDir: data, requireDriver: true })).toBe(path.join(data, "WinDivert.dll"));
});

test("an embedded copy is extracted into the data dir (and refreshed when it differs)", () => {
  const src = dir("embedded", ["WinDivert.dll", "WinDivert64.sys"]);
  const data = path.join(root, "data2");
  const found = findWinDivertDll({
    exeDir: dir("empty2", []), dataDir: data, requireDriver: true,
    embedded: { dll: path.join(src, "WinDivert.dll"), sys: path.join(src, "WinDivert64.sys") },
  });
  expect(found).toBe(path.join(data, "WinDivert.dll"));
  expect(fs.readFileSync(path.join(data, "WinDivert64.sys"), "utf8")).toBe("embedded/WinDivert64.sys");
});

test("missing everywhere: one error naming each place", () => {
  const exe = dir("empty3", []);
  const data = dir("empty4", []);
  let err: unknown;
  try {
    findWinDivertDll({ explicitDir: path.join(root, "nope"), exeDir: exe, dataDir: data, requireDriver: true });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(WinDivertMissingError);
  const msg = (err as Error).message;
  expect(msg).toContain("WinDivert.dll and WinDivert64.sys (WinDivert 2.2) were not found");
  for (const d of [path.join(root, "nope"), exe, data]) expect(msg).toContain(`  ${d}\n`);
});

test("the NETWORK filter captures only what the engine needs, and rejects bad ports", () => {
  const f = networkFilter({ proxyPort: 8443, tlsPorts: [443], localPorts: [11434, 1234] });
  expect(f).toBe(
    "(udp and udp.SrcPort == 53 and (inbound or loopback)) or (outbound and udp and (udp.DstPort == 443)) or " +
      "(outbound and tcp and (tcp.DstPort == 443 or tcp.SrcPort == 8443 or (loopback and (tcp.DstPort == 11434 or tcp.DstPort == 1234)))) or " +
      "(inbound and !loopback and tcp and tcp.DstPort == 8443)",
  );
  expect(() => networkFilter({ proxyPort: 0, tlsPorts: [443], localPorts: [] })).toThrow("invalid port 0");
  expect(() => networkFilter({ proxyPort: 8443, tlsPorts: [70000], localPorts: [] })).toThrow("invalid port 70000");
});
