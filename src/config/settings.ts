// settings.json + environment + flags → one validated Settings. Flags win over the environment,
// the environment wins over settings.json, settings.json wins over defaults.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { RedactionMode, SettingsFile } from "./settings-schema.ts";
import { arrayOf, boolean, int, nonEmptyString, oneOf, strictObject, type Check } from "../util/plain-check.ts";
import { settingsPath } from "./paths.ts";

export type { RedactionMode, SettingsFile } from "./settings-schema.ts";

export class SettingsError extends Error {}

/** Reads settings.json if present. A broken file is an error naming the file and the field, not a silent default. */
export function readSettingsFile(dir: string, env: NodeJS.ProcessEnv = process.env): SettingsFile {
  const file = settingsPath(dir);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new SettingsError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SettingsError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const spelled = seedSpellings(json, env);
  const quick = plainValidSettings(spelled);
  if (quick) return quick;
  // Anything the plain check does not accept is zod's to judge: it names the field (or accepts it).
  const { SettingsFile, formatZodIssues } = settingsSchema();
  const parsed = SettingsFile.safeParse(spelled);
  if (!parsed.success) throw new SettingsError(`${file}: ${formatZodIssues(parsed.error)}`);
  return parsed.data;
}

/** The zod schema and its error lines, loaded on first need (a file the plain check refused, a write, the form). */
export function settingsSchema(): typeof import("./settings-schema.ts") {
  return require("./settings-schema.ts");
}

/** The redaction modes, as the schema's RedactionMode enum lists them. */
export const REDACTION_MODES: readonly RedactionMode[] = ["safe", "full", "minimal"];

const port = int(1, 65535);

/**
 * Each field of the schema in its order, with a check that accepts only values the schema accepts
 * (src/util/plain-check.ts). A field missing here is not lost: the file then goes to zod, which accepts
 * it (test/unit/settings.test.ts compares both on valid and broken files).
 */
const PLAIN_FIELDS: Record<keyof SettingsFile, Check> = {
  OutputPath: nonEmptyString,
  DatabasePath: nonEmptyString,
  AutoStartCapture: boolean,
  EnableTlsMitm: boolean,
  AiEndpointFilterEnabled: boolean,
  ProcessFilter: arrayOf(nonEmptyString),
  ProxyPort: port,
  VerboseLogging: boolean,
  Redaction: oneOf(...REDACTION_MODES),
  WebPort: port,
};
const plainValidFile = strictObject(PLAIN_FIELDS);

/**
 * settings.json checked without zod: the parsed settings (as zod returns them, fields in the schema's
 * order) when every field is known and valid, else undefined. zod kept ~4.5 MB in the relay thread of
 * `oisp up`; a valid file, the usual case, now costs none of it.
 */
export function plainValidSettings(json: unknown): SettingsFile | undefined {
  if (!plainValidFile(json)) return undefined;
  const input = json as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(PLAIN_FIELDS)) if (Object.hasOwn(input, key)) out[key] = Array.isArray(input[key]) ? [...(input[key] as unknown[])] : input[key];
  return out as SettingsFile;
}

/**
 * The Windows seed's settings.json as it wrote it, read as what it means (any other type is left for the
 * schema to reject by name):
 * - ProcessFilter as one string: "" for all processes, or "a.exe,b.exe";
 * - OutputPath "" for its default, %USERPROFILE%\Documents\OISP\events.jsonl;
 * - %NAME% environment references in OutputPath and DatabasePath, as Windows users write paths.
 */
export function seedSpellings(json: unknown, env: NodeJS.ProcessEnv = process.env): unknown {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return json;
  const o = { ...(json as Record<string, unknown>) };
  if (typeof o.ProcessFilter === "string") o.ProcessFilter = o.ProcessFilter.split(/[,;\n]/).map((x) => x.trim()).filter((x) => x !== "");
  if (o.OutputPath === "") o.OutputPath = seedDefaultOutputPath(env);
  for (const key of ["OutputPath", "DatabasePath"]) {
    const v = o[key];
    if (typeof v === "string") o[key] = v.replace(/%([A-Za-z_][A-Za-z0-9_()]*)%/g, (m, name: string) => envValue(env, name) ?? m);
  }
  return o;
}

/** The seed's events file: Documents\OISP\events.jsonl in the user's profile (home elsewhere). */
export function seedDefaultOutputPath(env: NodeJS.ProcessEnv = process.env): string {
  const profile = envValue(env, "USERPROFILE") ?? env.HOME ?? os.homedir();
  return path.join(profile, "Documents", "OISP", "events.jsonl");
}

/** Windows environment names are case-insensitive. */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  if (env[name] !== undefined) return env[name];
  const key = Object.keys(env).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : env[key];
}

export function writeSettingsFile(dir: string, settings: SettingsFile): void {
  const valid = settingsSchema().SettingsFile.parse(settings);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(settingsPath(dir), JSON.stringify(valid, null, 2) + "\n", { mode: 0o600 });
}
