// Our zod schema against the OISP v0.1 JSON Schemas: both must accept the spec's own examples (of the
// event types we emit), both must reject the same broken events, and the committed JSON Schema in
// spec/ must be what the zod schema generates today.
import { describe, expect, test } from "bun:test";
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import fs from "node:fs";
import path from "node:path";
import { EMITTED_EVENT_TYPES, hostInfo, validateEvent, type OispEventType } from "../../src/events/index.ts";
import { eventJsonSchema, eventJsonSchemaText } from "../../src/events/json-schema.ts";
import { validateOispEvent } from "../support/oisp-validate.ts";

const repoRoot = path.resolve(import.meta.dir, "../..");
const examplesDir = [path.join(repoRoot, "spec/oisp-schema/examples"), path.join(repoRoot, "../shared/oisp-spec/examples")].find((d) => fs.existsSync(d))!;
const examples: Array<{ file: string; event: any }> = fs
  .readdirSync(examplesDir)
  .filter((f) => f.endsWith(".json"))
  .map((file) => ({ file, event: JSON.parse(fs.readFileSync(path.join(examplesDir, file), "utf8")) }));
const emitted = examples.filter((x) => EMITTED_EVENT_TYPES.includes(x.event.event_type as OispEventType));

function oispAccepts(e: unknown): boolean {
  try {
    validateOispEvent(e);
    return true;
  } catch {
    return false;
  }
}

describe("OISP examples", () => {
  test("the OISP validator accepts every example (so it is a fair judge)", () => {
    expect(examples.length).toBeGreaterThan(5);
    for (const { event } of examples) validateOispEvent(event);
  });

  test("our zod schema accepts every example of an event type we emit", () => {
    expect(new Set(emitted.map((x) => x.event.event_type))).toEqual(new Set(EMITTED_EVENT_TYPES));
    for (const { file, event } of emitted) {
      const result = validateEvent(event);
      if (!result.ok) throw new Error(`${file}: ${result.error}`);
    }
  });

  test("event types we never emit are rejected by zod with a readable error", () => {
    const exec = examples.find((x) => x.event.event_type === "process.exec")!;
    const result = validateEvent({ ...exec.event, event_type: "process.exit" });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toContain("event_type");
  });

  const mutations: Array<[name: string, mutate: (e: any) => void]> = [
    ["extra top-level field", (e) => (e.extra_top_level = 1)],
    ["missing confidence", (e) => delete e.confidence],
    ["bad completeness", (e) => (e.confidence.completeness = "most")],
    ["missing source.collector", (e) => delete e.source.collector],
    ["bad capture_method", (e) => (e.source.capture_method = "magic")],
    ["bad related_events relationship", (e) => (e.related_events = [{ event_id: "x", relationship: "sibling" }])],
    ["bad oisp_version", (e) => (e.oisp_version = "v1")],
    ["bad host.os", (e) => (e.host = { os: "plan9" })],
    ["negative pid", (e) => (e.process = { pid: -1 })],
    [
      "data field of the wrong type",
      (e) =>
        e.event_type === "process.exec"
          ? (e.data.args = "x")
          : e.event_type === "file.write"
            ? (e.data.bytes_written = "12")
            : e.data.dest
              ? (e.data.dest.port = "443")
              : e.data.tool
                ? (e.data.tool = "x")
                : (e.data.provider = { name: "acme" }),
    ],
  ];
  for (const [name, mutate] of mutations) {
    test(`both reject: ${name}`, () => {
      for (const { file, event } of emitted) {
        const broken = structuredClone(event);
        mutate(broken);
        expect(oispAccepts(broken)).toBe(false);
        const z = validateEvent(broken);
        expect(z.ok).toBe(false);
      }
    });
  }

  test("zod errors name the failing path", () => {
    const broken = structuredClone(emitted.find((x) => x.event.event_type === "ai.request")!.event);
    broken.data.streaming = "yes";
    const result = validateEvent(broken);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/data\.streaming/);
  });
});

describe("spec/oisp-event.schema.json", () => {
  const file = path.join(repoRoot, "spec/oisp-event.schema.json");

  test("is up to date with src/events/schema.ts (run bun scripts/gen-event-schema.ts)", () => {
    expect(fs.readFileSync(file, "utf8")).toBe(eventJsonSchemaText());
  });

  test("is a working JSON Schema that accepts the examples we model and rejects the others", () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    const validate = ajv.compile(eventJsonSchema());
    for (const { file: f, event } of examples) {
      const ok = validate(event);
      if (emitted.some((x) => x.file === f) && !ok) throw new Error(`${f}: ${ajv.errorsText(validate.errors)}`);
      if (!emitted.some((x) => x.file === f)) expect(ok).toBe(false);
    }
  });
});

describe("hostInfo", () => {
  test("describes this machine in OISP terms, once", () => {
    const h = hostInfo();
    expect(h.hostname.length).toBeGreaterThan(0);
    expect(["linux", "darwin", "windows", "other"]).toContain(h.os);
    expect(["x86_64", "aarch64", "other"]).toContain(h.arch);
    expect(h.os_version.length).toBeGreaterThan(0);
    expect(hostInfo()).toBe(h);
  });
});
