// The [export] table's zod schema (src/sinks/config.ts). Its own module, loaded only when a config file
// has an [export] table: zod kept ~4.5 MB in `oisp up`'s relay thread for the process's life.
import { z } from "zod";

const Headers = z.record(z.string(), z.string());
const Int = z.int().positive();

export const ExportFileSchema = z.strictObject({
  spool_mb: Int.optional(),
  batch_size: Int.optional(),
  otlp: z.strictObject({ endpoint: z.string().optional(), protocol: z.enum(["http/protobuf", "http/json", "grpc"]).optional(), headers: Headers.optional() }).optional(),
  webhook: z.strictObject({ url: z.string(), secret: z.string().optional(), headers: Headers.optional() }).optional(),
  kafka: z
    .strictObject({
      brokers: z.union([z.array(z.string()).min(1), z.string()]),
      topic: z.string().optional(),
      client_id: z.string().optional(),
      sasl: z.strictObject({ mechanism: z.enum(["plain", "scram-sha-256", "scram-sha-512"]), username: z.string(), password: z.string().optional() }).optional(),
      tls: z.boolean().optional(),
      ca: z.string().optional(),
    })
    .optional(),
  jsonl: z.strictObject({ path: z.string().optional(), max_mb: Int.optional(), keep: Int.optional() }).optional(),
});
export type ExportFile = z.infer<typeof ExportFileSchema>;

/** The [export] table as the schema reads it, or an Error naming the file and every problem. */
export function parseExportSection(section: unknown, file: string): ExportFile {
  const parsed = ExportFileSchema.safeParse(section);
  if (!parsed.success) throw new Error(`${file}: [export]: ${z.prettifyError(parsed.error).replace(/\n/g, "; ")}`);
  return parsed.data;
}
