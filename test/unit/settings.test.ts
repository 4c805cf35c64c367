// settings.json (%LOCALAPPDATA%\OISP\settings.json on Windows) with the Windows seed's fields: read and
// validated with zod, a bad file is one line naming the file and the field, and flags win over it.
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { redirectConfigFrom, redirectHelp } from "../../src/commands/redirect.ts";
import { sensorConfigFrom } from "../../src/commands/sensor.ts";
import { dataDir, settingsPath } from "../../src/config/paths.ts";
import { SettingsFile } from "../../src/config/settings-schema.ts";
import { plainValidSettings, readSettingsFile, SettingsError, writeSettingsFile } from "../../src/config/settings.ts";

const dirs: string[] = [];
function home(settings?: unknown, raw?: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-settings-"));
  dirs.push(dir);
  if (raw !== undefined) fs.writeFileSync(settingsPath(dir), raw);
  else if (settings !== undefined) fs.writeFileSync(settingsPath(dir), JSON.stringify(settings));
  return dir;
}
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function errorOf(dir: string): string {
  try {
    readSettingsFile(dir);
  } catch (e) {
    expect(e).toBeInstanceOf(SettingsError);
    return (e as Error).message;
  }
  throw new Error("expected a SettingsError");
}

const SEED = {
  OutputPath: "C:\\Users\\me\\oisp-events.jsonl",
  AutoStartCapture: true,
  EnableTlsMitm: true,
  AiEndpointFilterEnabled: false,
  ProcessFilter: ["python.exe", "node.exe"],
  ProxyPort: 9443,
  VerboseLogging: true,
};

describe("settings.json", () => {
  test("the Windows seed's fields are all accepted as written", () => {
    expect(readSettingsFile(home(SEED))).toEqual(SEED);
    expect(Object.keys(SettingsFile.shape)).toEqual(expect.arrayContaining(Object.keys(SEED)));
  });

  test("the seed's file verbatim: ProcessFilter as a string, OutputPath empty for its default, %VARS% in paths", () => {
    const env = { USERPROFILE: "C:\\Users\\me", LOCALAPPDATA: "C:\\Users\\me\\AppData\\Local" };
    const verbatim = { ...SEED, ProcessFilter: "", OutputPath: "" };
    expect(readSettingsFile(home(verbatim), env)).toEqual({ ...SEED, ProcessFilter: [], OutputPath: path.join("C:\\Users\\me", "Documents", "OISP", "events.jsonl") });
    expect(readSettingsFile(home({ ProcessFilter: "python.exe, node.exe;Code.exe" }), env).ProcessFilter).toEqual(["python.exe", "node.exe", "Code.exe"]);
    const paths = readSettingsFile(home({ OutputPath: "%USERPROFILE%\\out\\e.jsonl", DatabasePath: "%localappdata%\\OISP\\x.db" }), env);
    expect(paths).toEqual({ OutputPath: "C:\\Users\\me\\out\\e.jsonl", DatabasePath: "C:\\Users\\me\\AppData\\Local\\OISP\\x.db" });
    // An unknown variable stays as written (the path then says what was missing).
    expect(readSettingsFile(home({ OutputPath: "%NOPE%\\e.jsonl" }), env).OutputPath).toBe("%NOPE%\\e.jsonl");
  });

  test("no file → no settings; write then read round-trips", () => {
    const dir = home();
    expect(readSettingsFile(dir)).toEqual({});
    writeSettingsFile(dir, SEED);
    expect(readSettingsFile(dir)).toEqual(SEED);
  });

  test.each([
    [{ ProxyPort: "8443" }, "ProxyPort: Invalid input: expected number, received string"],
    [{ ProxyPort: 70000 }, "ProxyPort: Too big: expected number to be <=65535"],
    [{ ProxyPort: 80.5 }, "ProxyPort: Invalid input: expected int, received number"],
    [{ ProcessFilter: 5 }, "ProcessFilter: Invalid input: expected array, received number"],
    [{ ProcessFilter: ["ok.exe", ""] }, "ProcessFilter.1: Too small: expected string to have >=1 characters"],
    [{ EnableTlsMitm: "yes" }, "EnableTlsMitm: Invalid input: expected boolean, received string"],
    [{ AutoStartCapture: 1 }, "AutoStartCapture: Invalid input: expected boolean, received number"],
    [{ AiEndpointFilterEnabled: null }, "AiEndpointFilterEnabled: Invalid input: expected boolean, received null"],
    [{ VerboseLogging: "true" }, "VerboseLogging: Invalid input: expected boolean, received string"],
    [{ OutputPath: 7 }, "OutputPath: Invalid input: expected string, received number"],
    [{ proxyport: 8443 }, "proxyport: unknown setting (did you mean ProxyPort?)"],
    [{ Verbose_Logging: true }, "Verbose_Logging: unknown setting (did you mean VerboseLogging?)"],
    [{ Colour: "blue" }, "Colour: unknown setting (known: OutputPath, "],
    [[1], "(root): Invalid input: expected object, received array"],
  ])("%j → one line naming the file and the field", (settings, message) => {
    const dir = home(settings);
    const msg = errorOf(dir);
    expect(msg).toStartWith(`${settingsPath(dir)}: `);
    expect(msg).toContain(message);
    expect(msg).not.toContain("\n");
  });

  test("several problems are reported together, still on one line", () => {
    const msg = errorOf(home({ ProxyPort: 0, Foo: 1, VerboseLogging: "no" }));
    expect(msg).toContain("ProxyPort: Too small");
    expect(msg).toContain("VerboseLogging: Invalid input");
    expect(msg).toContain("Foo: unknown setting");
    expect(msg).not.toContain("\n");
  });

  test("the plain check (no zod) accepts only what the schema accepts, and returns what it returns", () => {
    const full = { ...SEED, DatabasePath: "/var/oisp.db", Redaction: "minimal", WebPort: 1, ProxyPort: 65535, ProcessFilter: [] };
    const accepted = [{}, SEED, full, { Redaction: "full" }, { WebPort: 7777, EnableTlsMitm: false }];
    const refused = [
      null, [], [SEED], "x", 5, { ...SEED, Extra: 1 }, { ProxyPort: 0 }, { ProxyPort: 65536 }, { ProxyPort: 1.5 }, { ProxyPort: "80" }, { ProxyPort: 1e300 },
      { WebPort: -1 }, { OutputPath: "" }, { DatabasePath: 1 }, { ProcessFilter: [""] }, { ProcessFilter: "a" }, { ProcessFilter: [1] },
      { Redaction: "none" }, { Redaction: "Safe" }, { VerboseLogging: 1 }, { AutoStartCapture: null }, { OutputPath: undefined },
      JSON.parse('{"__proto__": {"ProxyPort": 1}}'), { constructor: 1 }, { toString: "x" },
    ];
    for (const input of [...accepted, ...refused]) {
      const quick = plainValidSettings(input);
      const zod = SettingsFile.safeParse(input);
      if (quick !== undefined) expect(JSON.stringify(quick)).toBe(JSON.stringify(zod.data));
      if (!zod.success) expect(quick).toBeUndefined();
    }
    expect(accepted.map(plainValidSettings)).toEqual(accepted.map((a) => SettingsFile.parse(a)));
    // Every field of the schema is known to the plain check (a valid file never needs zod).
    expect(plainValidSettings(full)).toBeDefined();
    expect(Object.keys(full).sort()).toEqual(Object.keys(SettingsFile.shape).sort());
  });

  test("broken JSON names the file", () => {
    const dir = home(undefined, '{ "ProxyPort": 8443, }');
    expect(errorOf(dir)).toStartWith(`${settingsPath(dir)} is not valid JSON: `);
  });

  test("on Windows the file lives in %LOCALAPPDATA%\\OISP; OISP_HOME wins", () => {
    const local = path.join(os.tmpdir(), "AppData", "Local");
    expect(dataDir({ LOCALAPPDATA: local }, "win32")).toBe(path.join(local, "OISP"));
    expect(dataDir({ LOCALAPPDATA: local, OISP_HOME: "/x/oisp" }, "win32")).toBe(path.resolve("/x/oisp"));
  });
});

describe("flags override settings.json", () => {
  test("redirect --port in proxy mode is the proxy's port, and the help says so", () => {
    expect(redirectConfigFrom({ port: "9001" }, { tlsMitm: false }, home()).listen).toEqual({ host: "127.0.0.1", port: 9001 });
    expect(redirectConfigFrom({ listen: "0.0.0.0:8080", port: "9002" }, { tlsMitm: false }, home()).listen).toEqual({ host: "0.0.0.0", port: 9002 });
    expect(redirectHelp).toContain("proxy: the proxy's port");
  });

  test("sensor: OutputPath, ProcessFilter, VerboseLogging", () => {
    const dir = home(SEED);
    const fromFile = sensorConfigFrom({}, dir);
    expect(fromFile).toMatchObject({ outputPath: SEED.OutputPath, processFilter: SEED.ProcessFilter, verbose: true });
    const flags = sensorConfigFrom({ output: "/tmp/other.jsonl", "process-filter": ["curl"], verbose: false }, dir);
    expect(flags).toMatchObject({ outputPath: "/tmp/other.jsonl", processFilter: ["curl"], verbose: false });
    expect(sensorConfigFrom({}, home())).toMatchObject({ outputPath: undefined, processFilter: [], verbose: false });
  });

  test("redirect: EnableTlsMitm, AiEndpointFilterEnabled, ProxyPort, VerboseLogging", () => {
    const dir = home(SEED);
    const fromFile = redirectConfigFrom({}, { tlsMitm: false }, dir);
    expect(fromFile).toMatchObject({ tlsMitm: true, allTraffic: true, listen: { host: "127.0.0.1", port: 9443 } });
    const flags = redirectConfigFrom({ "no-tls-mitm": true, listen: "127.0.0.1:7000", verbose: false }, { tlsMitm: false }, dir);
    expect(flags).toMatchObject({ tlsMitm: false, listen: { port: 7000 } });
    expect(redirectConfigFrom({ port: "8443" }, { tlsMitm: false }, dir).listen.port).toBe(8443);
    const filtered = home({ AiEndpointFilterEnabled: true, EnableTlsMitm: false });
    expect(redirectConfigFrom({}, { tlsMitm: true }, filtered)).toMatchObject({ tlsMitm: false, allTraffic: false, listen: { port: 8080 } });
    expect(redirectConfigFrom({ "all-traffic": true, "tls-mitm": true }, { tlsMitm: false }, filtered)).toMatchObject({ tlsMitm: true, allTraffic: true });
  });

  test("a broken settings.json stops the command with that line (no silent defaults)", () => {
    const dir = home({ ProxyPort: "x" });
    expect(() => sensorConfigFrom({}, dir)).toThrow(`${settingsPath(dir)}: ProxyPort: Invalid input`);
    expect(() => redirectConfigFrom({}, { tlsMitm: false }, dir)).toThrow(`${settingsPath(dir)}: ProxyPort: Invalid input`);
  });
});
