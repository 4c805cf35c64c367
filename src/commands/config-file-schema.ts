// The config file's zod schema (src/commands/config-file.ts). Its own module, loaded only with --config:
// zod kept ~4.5 MB in `oisp up`'s relay thread for the process's life.
import { z } from "zod";

const Port = z.int().min(0).max(65535);

const SensorKeys = {
  capture: z.enum(["proxy", "ebpf"]).optional(),
  redaction: z.enum(["safe", "full", "minimal"]).optional(),
  process_filter: z.array(z.string().min(1)).optional(),
  db: z.string().min(1).optional(),
  output: z.string().min(1).optional(),
  verbose: z.boolean().optional(),
};

export const ConfigFileSchema = z.strictObject({
  ...SensorKeys,
  // The seed grouped these under [sensor]: the same keys, read the same way (top-level ones win).
  sensor: z.strictObject(SensorKeys).optional(),
  proxy: z
    .strictObject({
      listen: z.string().min(1).optional(),
      tls_mitm: z.boolean().optional(),
      all_traffic: z.boolean().optional(),
      upstream_ca: z.array(z.string().min(1)).optional(),
    })
    .optional(),
  ebpf: z.strictObject({ pids: z.array(z.int().positive()).optional() }).optional(),
  web: z.strictObject({ enabled: z.boolean().optional(), host: z.string().min(1).optional(), port: Port.optional(), token: z.string().min(1).optional() }).optional(),
  // Checked by exportValuesFromToml, which reports its own paths.
  export: z.unknown().optional(),
});
export type ConfigFile = z.infer<typeof ConfigFileSchema>;

/** The parsed TOML document as the schema reads it, or an Error naming the file and every bad key. */
export function parseConfigDocument(doc: unknown, file: string): ConfigFile {
  const parsed = ConfigFileSchema.safeParse(doc);
  if (!parsed.success) throw new Error(`${file}: ${z.prettifyError(parsed.error).replace(/\n/g, "; ")}`);
  return parsed.data;
}
