// `--config FILE` (TOML): everything a fleet sets for `oisp up` / `oisp sensor` in one file, so a systemd
// unit, a container or a Kubernetes ConfigMap carries no per-host flags. The file turns into the same flag
// values the command line gives; flags given on the command line win over the file, the file wins over
// settings.json. Reference: docs/config.md (every key, its flag and default).
//
//   capture = "proxy"                 # or "ebpf" (oisp up)
//   redaction = "safe"                # safe | full | minimal
//   process_filter = ["python3"]      # only these process names (empty: all)
//   db = "/var/lib/oisp/oisp.db"
//   output = "/var/log/oisp/events.jsonl"
//   verbose = false
//   [proxy]
//   listen = "0.0.0.0:8080"
//   tls_mitm = true
//   all_traffic = false
//   upstream_ca = ["corp-root.pem"]
//   [ebpf]
//   pids = [1234]                     # only these processes and their descendants (default: all)
//   [web]
//   enabled = true
//   host = "0.0.0.0"
//   port = 7777
//   token = "..."
//   [export.otlp] ...                 # src/sinks/config.ts
//
// Relative paths are relative to the file. The data directory is not here: it is $OISP_HOME, which
// `oisp status` reads too (a data dir set only in this file would hide the running sensor from it).
import fs from "node:fs";
import path from "node:path";
import { exportValuesFromToml, mergeExportValues } from "../sinks/config.ts";
import type { ExportFlagValues } from "../sinks/flags.ts";
import { UsageError } from "../util/args.ts";
import { anything, arrayOf, boolean, int, nonEmptyString, oneOf, strictObject } from "../util/plain-check.ts";
import type { ConfigFile } from "./config-file-schema.ts";

const SENSOR_KEYS = {
  capture: oneOf("proxy", "ebpf"),
  redaction: oneOf("safe", "full", "minimal"),
  process_filter: arrayOf(nonEmptyString),
  db: nonEmptyString,
  output: nonEmptyString,
  verbose: boolean,
};

/** config-file-schema.ts's ConfigFileSchema as a yes/no check: a valid file needs no zod (src/util/plain-check.ts). */
export const plainValidConfig = strictObject({
  ...SENSOR_KEYS,
  sensor: strictObject(SENSOR_KEYS),
  proxy: strictObject({ listen: nonEmptyString, tls_mitm: boolean, all_traffic: boolean, upstream_ca: arrayOf(nonEmptyString) }),
  ebpf: strictObject({ pids: arrayOf(int(1)) }),
  web: strictObject({ enabled: boolean, host: nonEmptyString, port: int(0, 65535), token: nonEmptyString }),
  export: anything,
});

/** The flag values a config file can set (a subset of `oisp up`'s flags). */
export type ConfigValues = ExportFlagValues & {
  capture?: string;
  redaction?: string;
  "process-filter"?: string[];
  db?: string;
  output?: string;
  verbose?: boolean;
  listen?: string;
  "tls-mitm"?: boolean;
  "no-tls-mitm"?: boolean;
  "all-traffic"?: boolean;
  "upstream-ca"?: string[];
  pid?: string[];
  web?: boolean;
  "web-host"?: string;
  "web-port"?: string;
  "web-token"?: string;
};

/**
 * Parses a config file's text into flag values. Throws one message naming the file and every bad key;
 * `warn` hears about settings that are valid but have no effect (a [web] table without enabled = true).
 */
export function configValuesFromToml(text: string, file: string, warn: (message: string) => void = (m) => console.error(`oisp: ${m}`)): ConfigValues {
  let doc: unknown;
  try {
    doc = Bun.TOML.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid TOML: ${(err as Error).message}`);
  }
  // A file the plain check refuses goes to the zod schema, which names every bad key.
  const { sensor, ...top }: ConfigFile = plainValidConfig(doc)
    ? (doc as ConfigFile)
    : (require("./config-file-schema.ts") as typeof import("./config-file-schema.ts")).parseConfigDocument(doc, file);
  const c = { ...sensor, ...Object.fromEntries(Object.entries(top).filter(([, value]) => value !== undefined)) } as typeof top;
  const base = path.dirname(path.resolve(file));
  const rel = (p: string) => path.resolve(base, p);
  const v: ConfigValues = exportValuesFromToml(text, file);
  if (v["jsonl-path"]) v["jsonl-path"] = rel(v["jsonl-path"]);
  if (v["kafka-ca"]) v["kafka-ca"] = rel(v["kafka-ca"]);
  if (c.capture) v.capture = c.capture;
  if (c.redaction) v.redaction = c.redaction;
  if (c.process_filter) v["process-filter"] = c.process_filter;
  if (c.db) v.db = rel(c.db);
  if (c.output) v.output = rel(c.output);
  if (c.verbose !== undefined) v.verbose = c.verbose;
  const p = c.proxy ?? {};
  if (p.listen) v.listen = p.listen;
  if (p.tls_mitm !== undefined) v[p.tls_mitm ? "tls-mitm" : "no-tls-mitm"] = true;
  if (p.all_traffic !== undefined) v["all-traffic"] = p.all_traffic;
  if (p.upstream_ca) v["upstream-ca"] = p.upstream_ca.map(rel);
  if (c.ebpf?.pids) v.pid = c.ebpf.pids.map(String);
  // host/port/token each turn the dashboard on (src/web/sensor-web.ts), so they count only when enabled.
  if (c.web && !c.web.enabled && c.web.enabled !== false && Object.keys(c.web).length > 0) {
    warn(`${file}: [web] ${Object.keys(c.web).join(", ")} ignored: the dashboard is off until [web] has enabled = true`);
  }
  if (c.web?.enabled) {
    v.web = true;
    if (c.web.host) v["web-host"] = c.web.host;
    if (c.web.port !== undefined) v["web-port"] = String(c.web.port);
    if (c.web.token) v["web-token"] = c.web.token;
  }
  return v;
}

export function readConfigFile(file: string): ConfigValues {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`--config: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return configValuesFromToml(text, file);
  } catch (err) {
    throw new UsageError(`--config: ${(err as Error).message}`);
  }
}

/**
 * The command line's values with `--config FILE`'s underneath: a flag given wins, --export kinds add up.
 * The result has no `config` key left, so a second call (sensorConfigFrom after upCommand) reads nothing twice.
 */
export function withConfigFile<T extends ConfigValues & { config?: string }>(flags: T): Omit<T, "config"> & ConfigValues {
  const { config, ...rest } = flags;
  if (!config) return rest;
  const fromFile = readConfigFile(config);
  // --tls-mitm / --no-tls-mitm on the command line replace the file's choice, whichever the file made.
  if (rest["tls-mitm"] !== undefined || rest["no-tls-mitm"] !== undefined) {
    delete fromFile["tls-mitm"];
    delete fromFile["no-tls-mitm"];
  }
  return mergeExportValues(fromFile, rest as ExportFlagValues & Record<string, unknown>) as Omit<T, "config"> & ConfigValues;
}
