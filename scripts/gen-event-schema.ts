// Writes spec/oisp-event.schema.json from the zod schemas in src/events/schema.ts (the source of truth).
// The output is committed; test/unit/events-schema.test.ts fails when it is stale.
//   bun scripts/gen-event-schema.ts          write it
//   bun scripts/gen-event-schema.ts --check  exit 1 if the committed file differs
import fs from "node:fs";
import path from "node:path";
import { eventJsonSchemaText } from "../src/events/json-schema.ts";

const target = path.resolve(import.meta.dir, "../spec/oisp-event.schema.json");
const text = eventJsonSchemaText();

if (process.argv.includes("--check")) {
  const current = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
  if (current !== text) {
    console.error(`${path.relative(process.cwd(), target)} is stale: run bun scripts/gen-event-schema.ts`);
    process.exit(1);
  }
  console.log(`${path.relative(process.cwd(), target)} is up to date`);
} else {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, text);
  console.log(`wrote ${path.relative(process.cwd(), target)} (${text.length} bytes)`);
}
