// The JSON Schema form of OispEventSchema, as committed in spec/oisp-event.schema.json.
import { z } from "zod";
import { OispEventSchema } from "./schema.ts";

export const EVENT_SCHEMA_ID = "urn:oisp-sensor:spec:oisp-event.schema.json";

export function eventJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(OispEventSchema, { target: "draft-2020-12" }) as Record<string, unknown>;
  return { $schema: schema.$schema, $id: EVENT_SCHEMA_ID, ...schema };
}

/** Stable text (2-space JSON + newline) so the committed file diffs cleanly. */
export function eventJsonSchemaText(): string {
  return `${JSON.stringify(eventJsonSchema(), null, 2)}\n`;
}
