// `--config FILE`: every key a fleet sets turns into the flag the command line would give, relative paths
// resolve against the file, flags win, mistakes name the file and the key.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { configValuesFromToml, plainValidConfig, withConfigFile } from "../../src/commands/config-file.ts";
import { expectCheckAgreesWithSchema } from "../support/plain-check-agreement.ts";
import { sensorConfigFrom } from "../../src/commands/sensor.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-config-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, "etc", "oisp.toml");

const FLEET = `
capture = "proxy"
redaction = "minimal"
process_filter = ["python3", "node"]
db = "data/oisp.db"
output = "/var/log/oisp/events.jsonl"
verbose = true

[proxy]
listen = "0.0.0.0:3128"
tls_mitm = false
all_traffic = true
upstream_ca = ["corp.pem"]

[ebpf]
pids = [1234, 5678]

[web]
enabled = true
host = "0.0.0.0"
port = 7000
token = "t0ken"

[export.otlp]
endpoint = "http://collector:4318"

[export.jsonl]
path = "out/events.jsonl"
`;

test("every fleet setting maps to its flag; relative paths are relative to the file", () => {
  expect(configValuesFromToml(FLEET, file)).toEqual({
    capture: "proxy",
    redaction: "minimal",
    "process-filter": ["python3", "node"],
    db: path.join(dir, "etc", "data", "oisp.db"),
    output: "/var/log/oisp/events.jsonl",
    verbose: true,
    listen: "0.0.0.0:3128",
    "no-tls-mitm": true,
    "all-traffic": true,
    "upstream-ca": [path.join(dir, "etc", "corp.pem")],
    pid: ["1234", "5678"],
    web: true,
    "web-host": "0.0.0.0",
    "web-port": "7000",
    "web-token": "t0ken",
    export: ["otlp", "jsonl"],
    "otlp-endpoint": "http://collector:4318",
    "jsonl-path": path.join(dir, "etc", "out", "events.jsonl"),
  });
});

test("the dashboard stays off unless [web] enabled = true, whatever else the table says; ignored keys are warned about", () => {
  const warnings: string[] = [];
  expect(configValuesFromToml(`[web]\nport = 7000\n`, file, (m) => warnings.push(m))).toEqual({});
  expect(warnings).toEqual([`${file}: [web] port ignored: the dashboard is off until [web] has enabled = true`]);
  expect(configValuesFromToml(`[web]\nenabled = false\nhost = "0.0.0.0"\n`, file)).toEqual({});
  expect(configValuesFromToml(`[web]\nenabled = true\n`, file)).toEqual({ web: true });
});

test("flags given on the command line win; --export kinds add up; TLS interception either way", () => {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, FLEET);
  const v = withConfigFile({ config: file, redaction: "safe", export: ["webhook"], "webhook-url": "http://127.0.0.1:9/h", "tls-mitm": true });
  expect(v).not.toHaveProperty("config");
  expect(v.redaction).toBe("safe");
  expect(v.listen).toBe("0.0.0.0:3128");
  expect(v.export).toEqual(["otlp", "jsonl", "webhook"]);
  expect(v["tls-mitm"]).toBe(true);
  expect(v["no-tls-mitm"]).toBeUndefined(); // the file said false; --tls-mitm replaced it
  expect(withConfigFile({ config: file })["no-tls-mitm"]).toBe(true);
  // Through the sensor's own config builder, as `oisp sensor --config` and `oisp up --config` use it.
  const cfg = sensorConfigFrom({ config: file, "process-filter": ["curl"] }, dir);
  expect(cfg).toMatchObject({ redaction: "minimal", processFilter: ["curl"], dbPath: path.join(dir, "etc", "data", "oisp.db"), verbose: true });
});

test("the seed's [sensor] table is read like the top-level keys (which win)", () => {
  expect(configValuesFromToml(`[sensor]\nredaction = "full"\nverbose = true\nprocess_filter = ["python3"]\n`, file)).toEqual({ redaction: "full", verbose: true, "process-filter": ["python3"] });
  expect(configValuesFromToml(`redaction = "minimal"\n[sensor]\nredaction = "full"\n`, file)).toEqual({ redaction: "minimal" });
  expect(() => configValuesFromToml(`[sensor]\nredacton = "full"\n`, "c.toml")).toThrow(/c\.toml: .*redacton/);
});

test("mistakes name the file and the key; unknown keys are refused, not ignored", () => {
  expect(() => configValuesFromToml(`[tui]\nenabled = true\n`, "c.toml")).toThrow(/c\.toml: .*"tui"/);
  expect(() => configValuesFromToml(`redacton = "safe"\n`, "/etc/oisp/config.toml")).toThrow(/\/etc\/oisp\/config\.toml: .*redacton/);
  expect(() => configValuesFromToml(`capture = "pcap"\n`, "c.toml")).toThrow(/c\.toml: .*capture/);
  expect(() => configValuesFromToml(`[proxy]\nlisten = 8080\n`, "c.toml")).toThrow(/proxy\.listen/);
  expect(() => configValuesFromToml(`[web]\nport = 70000\n`, "c.toml")).toThrow(/web\.port/);
  expect(() => configValuesFromToml(`[ebpf]\npids = [-1]\n`, "c.toml")).toThrow(/ebpf\.pids/);
  expect(() => configValuesFromToml(`[export.otlp]\nendpont = "x"\n`, "c.toml")).toThrow(/\[export\].*endpont/);
  expect(() => configValuesFromToml(`capture = \n`, "c.toml")).toThrow(/not valid TOML/);
  expect(() => withConfigFile({ config: path.join(dir, "missing.toml") })).toThrow(/--config: cannot read .*missing\.toml: ENOENT/);
});

test("the plain check (no zod) accepts only what the schema accepts; every key of a valid file passes it", () => {
  const fleet = Bun.TOML.parse(FLEET) as Record<string, unknown>;
  const accepted: unknown[] = [{}, fleet, { ...fleet, sensor: { redaction: "safe", verbose: false } }, { web: { enabled: false } }, { web: { port: 0 } }, { ebpf: {} }];
  const refused: unknown[] = [
    null, [], "x", { tui: {} }, { capture: "pcap" }, { redaction: "Safe" }, { process_filter: [""] }, { process_filter: "a" }, { db: "" }, { output: 1 },
    { verbose: "yes" }, { sensor: { capture: "x" } }, { sensor: { web: {} } }, { sensor: [] }, { proxy: { listen: 8080 } }, { proxy: { upstream_ca: [""] } },
    { proxy: { tls_mitm: 1 } }, { proxy: { other: 1 } }, { ebpf: { pids: [-1] } }, { ebpf: { pids: [1.5] } }, { ebpf: { pids: [2 ** 60] } }, { ebpf: { pids: 1 } },
    { web: { port: 70000 } }, { web: { port: -1 } }, { web: { host: "" } }, { web: { token: "" } }, { web: { enabled: "true" } }, { web: null },
    JSON.parse('{"__proto__": {"db": "x"}}'), { proxy: JSON.parse('{"__proto__": {}}') }, { sensor: Object.create({ db: "x" }) },
  ];
  const { ConfigFileSchema } = require("../../src/commands/config-file-schema.ts") as typeof import("../../src/commands/config-file-schema.ts");
  expectCheckAgreesWithSchema(plainValidConfig, ConfigFileSchema, accepted, refused);
  expect(Object.keys(fleet).sort()).toEqual(Object.keys(ConfigFileSchema.shape).filter((k) => k !== "sensor").sort());
});
