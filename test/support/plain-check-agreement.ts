// A plain check (src/util/plain-check.ts) stands before a zod schema: it may refuse more than the schema,
// never accept what the schema refuses, and what it accepts is used as parsed, so zod must return it unchanged.
import { expect } from "bun:test";
import type { z } from "zod";

export function expectCheckAgreesWithSchema(check: (v: unknown) => boolean, schema: z.ZodType, accepted: unknown[], refused: unknown[]): void {
  for (const doc of [...accepted, ...refused]) {
    const zod = schema.safeParse(doc);
    if (check(doc)) expect(zod).toEqual({ success: true, data: doc as never });
    if (!zod.success) expect(check(doc)).toBe(false);
  }
  expect(accepted.filter((doc) => !check(doc))).toEqual([]);
  expect(refused.filter((doc) => check(doc))).toEqual([]);
}
