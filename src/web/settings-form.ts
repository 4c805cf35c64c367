// The settings form is generated from the SettingsFile zod schema, so a field added there appears here.
// Form strings → candidate object → SettingsFile.safeParse; issues are keyed by field for in-place errors.
// The schema (and zod, ~4.5 MB kept for the process's life) loads when the /control page is first served,
// not with the dashboard: `oisp up --web` runs in the relay thread.
import type { z } from "zod";
import type { SettingsFile } from "../config/settings-schema.ts";
import { settingsSchema } from "../config/settings.ts";

export type FieldKind = "string" | "boolean" | "number" | "list" | "enum";

export interface FieldSpec {
  key: string;
  kind: FieldKind;
  description?: string;
  options?: string[];
  min?: number;
  max?: number;
}

/** Form values as strings, keyed by settings field. */
export type FormValues = Record<string, string>;

export interface SettingsValidation {
  ok: boolean;
  settings?: SettingsFile;
  /** Messages per field key; "" holds errors not tied to one field. */
  errors: Record<string, string[]>;
}

interface Introspectable {
  description?: string;
  unwrap?: () => Introspectable;
  def: { type: string; element?: Introspectable };
  options?: readonly string[];
  minValue?: number | null;
  maxValue?: number | null;
}

export function settingsFields(schema: z.ZodObject = settingsSchema().SettingsFile): FieldSpec[] {
  return Object.entries(schema.shape).map(([key, field]) => {
    const outer = field as unknown as Introspectable;
    const inner = outer.def.type === "optional" && outer.unwrap ? outer.unwrap() : outer;
    const t = inner.def.type;
    const kind: FieldKind = t === "boolean" ? "boolean" : t === "number" ? "number" : t === "array" ? "list" : t === "enum" ? "enum" : "string";
    return {
      key,
      kind,
      description: outer.description ?? inner.description,
      options: kind === "enum" ? [...(inner.options ?? [])] : undefined,
      min: inner.minValue ?? undefined,
      max: inner.maxValue ?? undefined,
    };
  });
}

/** Current settings as form strings (lists one per line). */
export function settingsToForm(settings: Record<string, unknown>, fields = settingsFields()): FormValues {
  const out: FormValues = {};
  for (const f of fields) {
    const v = settings[f.key];
    if (v === undefined || v === null) out[f.key] = "";
    else if (Array.isArray(v)) out[f.key] = v.map(String).join("\n");
    else out[f.key] = String(v);
  }
  return out;
}

/** Turns posted strings into the candidate object; a value of the wrong type is kept so zod reports it. */
export function formToCandidate(body: Record<string, unknown>, fields = settingsFields()): { values: FormValues; candidate: Record<string, unknown> } {
  const values: FormValues = {};
  const candidate: Record<string, unknown> = {};
  for (const f of fields) {
    const raw = body[f.key];
    const s = typeof raw === "string" ? raw.slice(0, 4096) : "";
    values[f.key] = s;
    const t = s.trim();
    if (t === "") continue; // empty = not set: the default applies
    switch (f.kind) {
      case "boolean":
        candidate[f.key] = t === "true" ? true : t === "false" ? false : t;
        break;
      case "number":
        candidate[f.key] = /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
        break;
      case "list": {
        const items = t.split(/[\n,]/).map((x) => x.trim()).filter((x) => x !== "");
        if (items.length) candidate[f.key] = items;
        break;
      }
      default:
        candidate[f.key] = t;
    }
  }
  return { values, candidate };
}

export function validateSettings(candidate: Record<string, unknown>, schema: z.ZodType<SettingsFile> = settingsSchema().SettingsFile): SettingsValidation {
  const parsed = schema.safeParse(candidate);
  if (parsed.success) return { ok: true, settings: parsed.data, errors: {} };
  const errors: Record<string, string[]> = {};
  for (const issue of parsed.error.issues) {
    const key = typeof issue.path[0] === "string" ? issue.path[0] : "";
    (errors[key] ??= []).push(issue.message);
  }
  return { ok: false, errors };
}
