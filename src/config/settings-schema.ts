// settings.json's zod schema and its error lines. Loaded only where a file fails the quick check in
// settings.ts (to name the field) or where the dashboard's form needs the schema: zod kept ~4.5 MB in
// `oisp up`'s relay thread for the process's life.
import { z } from "zod";

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
