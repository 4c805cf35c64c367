// settings.json + environment + flags → one validated Settings. Flags win over the environment,
// the environment wins over settings.json, settings.json wins over defaults.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { settingsPath } from "./paths.ts";

export const RedactionMode = z.enum(["safe", "full", "minimal"]);
export type RedactionMode = z.infer<typeof RedactionMode>;

/** settings.json as users write it. PascalCase names are the ones the Windows seed documented. */
export const SettingsFile = z
  .object({
    OutputPath: z.string().min(1).optional().describe("Also append every event to this JSONL file"),
    DatabasePath: z.string().min(1).optional(),
    AutoStartCapture: z
      .boolean()
      .optional()
      .describe("oisp sensor starts capture as the dashboard's Start capture does (Windows: elevated oisp redirect --tls-mitm)"),
    EnableTlsMitm: z.boolean().optional().describe("Decrypt TLS to AI hosts with the local CA (redirect --tls-mitm)"),
    AiEndpointFilterEnabled: z.boolean().optional().describe("false = intercept all TLS traffic (--all-traffic)"),
    ProcessFilter: z.array(z.string().min(1)).optional().describe("Only capture these process names (empty = all)"),
    ProxyPort: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe("Explicit proxy port (default 8080); in WinDivert mode the port diverted connections arrive on (default 8443)"),
    VerboseLogging: z.boolean().optional().describe("Log every connection (-v)"),
    Redaction: RedactionMode.optional(),
    WebPort: z.number().int().min(1).max(65535).optional(),
  })
  .strict();
export type SettingsFile = z.infer<typeof SettingsFile>;

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
  const parsed = SettingsFile.safeParse(seedSpellings(json, env));
  if (!parsed.success) throw new SettingsError(`${file}: ${formatZodIssues(parsed.error)}`);
  return parsed.data;
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
  const valid = SettingsFile.parse(settings);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(settingsPath(dir), JSON.stringify(valid, null, 2) + "\n", { mode: 0o600 });
}

export function formatZodIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => (i.code === "unrecognized_keys" && i.path.length === 0 ? i.keys.map(unknownSetting).join("; ") : `${i.path.join(".") || "(root)"}: ${i.message}`))
    .join("; ");
}

/** "ProxyPOrt: unknown setting (did you mean ProxyPort?)": names are case-sensitive, typos are common. */
function unknownSetting(key: string): string {
  const known = Object.keys(SettingsFile.shape);
  const near = known.find((k) => k.toLowerCase() === key.toLowerCase().replace(/[\s_-]/g, ""));
  return `${key}: unknown setting (${near ? `did you mean ${near}?` : `known: ${known.join(", ")}`})`;
}
