// Validates events against the OISP v0.1 JSON Schemas themselves (not our zod copy), working around the two
// schema defects listed in spec/README.md: the envelope is checked whole, `data` against the $def whose title
// is the event_type, and tool_call.arguments' oneOf is read as anyOf.
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import fs from "node:fs";
import path from "node:path";

const repoRoot = path.resolve(import.meta.dir, "../..");
const schemaDir = [path.join(repoRoot, "spec/oisp-schema/v0.1"), path.join(repoRoot, "../shared/oisp-spec/schema/v0.1")].find((d) =>
  fs.existsSync(path.join(d, "envelope.schema.json")),
);

function load(rel: string): any {
  if (!schemaDir) throw new Error("OISP schemas not found (spec/oisp-schema/v0.1)");
  return JSON.parse(fs.readFileSync(path.join(schemaDir, rel), "utf8"));
}

let ajv: Ajv2020 | undefined;
const dataValidators = new Map<string, ReturnType<Ajv2020["compile"]>>();

function setup(): Ajv2020 {
  if (ajv) return ajv;
  ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  for (const f of fs.readdirSync(path.join(schemaDir!, "common"))) ajv.addSchema(load(`common/${f}`));
  ajv.addSchema(load("envelope.schema.json"));
  const eventSchemas = fs.readdirSync(path.join(schemaDir!, "events")).map((f) => load(`events/${f}`));
  for (const schema of eventSchemas) {
    const toolCallArgs = schema.$defs?.tool_call?.properties?.arguments;
    if (toolCallArgs?.oneOf) {
      toolCallArgs.anyOf = toolCallArgs.oneOf;
      delete toolCallArgs.oneOf;
    }
    delete schema.oneOf; // root oneOf over overlapping $defs rejects valid events (known defect)
    ajv.addSchema(schema);
  }
  // Compile only once every schema is known: agent.schema.json refers into ai.schema.json.
  for (const schema of eventSchemas) {
    for (const [name, def] of Object.entries<any>(schema.$defs ?? {})) {
      if (typeof def.title === "string" && def.title.includes(".")) {
        dataValidators.set(def.title, ajv.compile({ $ref: `${schema.$id}#/$defs/${name}` }));
      }
    }
  }
  return ajv;
}

/** Throws with every schema error when the event is not valid OISP v0.1. */
export function validateOispEvent(event: unknown): void {
  const a = setup();
  const envelope = a.getSchema("https://oisp.dev/schema/v0.1/envelope.schema.json")!;
  const errors: string[] = [];
  if (!envelope(event)) errors.push(...(envelope.errors ?? []).map((e) => `envelope${e.instancePath} ${e.message}`));
  const e = event as { event_type?: string; data?: unknown };
  const dataValidator = dataValidators.get(e.event_type ?? "");
  if (!dataValidator) errors.push(`no OISP schema for event_type "${e.event_type}"`);
  else if (!dataValidator(e.data ?? {})) errors.push(...(dataValidator.errors ?? []).map((x) => `data${x.instancePath} ${x.message}`));
  if (errors.length) throw new Error(`invalid OISP ${e.event_type} event:\n  ${errors.join("\n  ")}\n${JSON.stringify(event, null, 1).slice(0, 2000)}`);
}
