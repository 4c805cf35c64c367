// Small yes/no checks for configuration files, used before their zod schemas: a file they accept is valid
// without loading zod (~4.5 MB kept for the process's life in `oisp up`'s relay thread); a file they refuse
// goes to the schema, which names every mistake with its own messages. So a check may refuse more than
// its schema (that only costs the memory) but never accept what the schema refuses: each use is compared
// with its schema in the tests.
export type Check = (v: unknown) => boolean;

/** An object as JSON and TOML parsers return them: no array, no prototype tricks. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return (proto === Object.prototype || proto === null) && !Object.hasOwn(v, "__proto__");
}

export const string: Check = (v) => typeof v === "string";
export const nonEmptyString: Check = (v) => typeof v === "string" && v.length >= 1;
export const boolean: Check = (v) => typeof v === "boolean";
export const anything: Check = () => true;

/** zod's `z.int().min(min).max(max)`: a safe integer in range. */
export const int =
  (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): Check =>
  (v) =>
    Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;

export const oneOf =
  (...values: readonly unknown[]): Check =>
  (v) =>
    values.includes(v);

export const arrayOf =
  (item: Check, minLength = 0): Check =>
  (v) =>
    Array.isArray(v) && v.length >= minLength && v.every(item);

export const either =
  (...checks: Check[]): Check =>
  (v) =>
    checks.some((c) => c(v));

/** `z.record(z.string(), value)`. */
export const recordOf =
  (value: Check): Check =>
  (v) =>
    isPlainObject(v) && Object.values(v).every(value);

/**
 * zod's `z.strictObject(shape)` where every key is optional except `required`: no other keys, each
 * present key's value passes its check (an explicit undefined does not: the schema decides those).
 */
export const strictObject =
  (shape: Record<string, Check>, required: readonly string[] = []): Check =>
  (v) =>
    isPlainObject(v) && required.every((k) => Object.hasOwn(v, k)) && Object.keys(v).every((k) => Object.hasOwn(shape, k) && shape[k]!(v[k]));
