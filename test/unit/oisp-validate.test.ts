// The validator the end-to-end tests rely on: it must accept the spec's own examples and reject broken events.
import { expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { validateOispEvent } from "../support/oisp-validate.ts";

const examplesDir = [path.resolve(import.meta.dir, "../../spec/oisp-schema/examples"), path.resolve(import.meta.dir, "../../../shared/oisp-spec/examples")].find(
  (d) => fs.existsSync(d),
)!;
const examples = fs.readdirSync(examplesDir).map((f) => JSON.parse(fs.readFileSync(path.join(examplesDir, f), "utf8")));

test("every OISP example event validates", () => {
  expect(examples.length).toBeGreaterThan(5);
  for (const e of examples) validateOispEvent(e);
});

test("broken events are rejected with the failing path", () => {
  const request = examples.find((e) => e.event_type === "ai.request");
  expect(() => validateOispEvent({ ...request, extra_top_level: 1 })).toThrow(/additional/);
  expect(() => validateOispEvent({ ...request, data: { ...request.data, streaming: "yes" } })).toThrow(/data\/streaming/);
  expect(() => validateOispEvent({ ...request, event_type: "ai.unknown" })).toThrow(/no OISP schema/);
});
