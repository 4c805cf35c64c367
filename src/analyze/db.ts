// Feeds the events of a sensor database to an Analyzer, oldest first, a page at a time (keyset paging
// on the ts_ms index), through a read-only connection: bounded memory, and the sensor may keep writing.
import { and, asc, count, eq, gt, gte, lt, or, type SQL } from "drizzle-orm";
import { openStore } from "../store/index.ts";
import { events } from "../store/schema.ts";
import type { Analyzer } from "./aggregate.ts";

export interface DbScanOptions {
  sinceMs?: number;
  untilMs?: number;
  pageRows?: number;
  /** Rows read so far, of `total`. */
  onProgress?: (rows: number, total: number) => void;
}

export function scanDb(path: string, analyzer: Analyzer, opts: DbScanOptions = {}): { rows: number } {
  const store = openStore(path, { readonly: true });
  try {
    const range: Array<SQL | undefined> = [
      opts.sinceMs !== undefined ? gte(events.tsMs, opts.sinceMs) : undefined,
      opts.untilMs !== undefined ? lt(events.tsMs, opts.untilMs) : undefined,
    ];
    const total = store.db.select({ n: count() }).from(events).where(and(...range)).get()?.n ?? 0;
    const pageRows = opts.pageRows ?? 2000;
    let rows = 0;
    let after: { tsMs: number; eventId: string } | undefined;
    for (;;) {
      const keyset = after && or(gt(events.tsMs, after.tsMs), and(eq(events.tsMs, after.tsMs), gt(events.eventId, after.eventId)));
      const page = store.db
        .select({ eventId: events.eventId, tsMs: events.tsMs, json: events.json })
        .from(events)
        .where(and(...range, keyset))
        .orderBy(asc(events.tsMs), asc(events.eventId))
        .limit(pageRows)
        .all();
      for (const row of page) {
        rows++;
        let value: unknown;
        try {
          value = JSON.parse(row.json);
        } catch {
          analyzer.malformed(rows, `row ${row.eventId}: stored JSON does not parse`);
          continue;
        }
        analyzer.add(value, rows);
      }
      opts.onProgress?.(rows, total);
      if (page.length < pageRows) break;
      const last = page[page.length - 1]!;
      after = { tsMs: last.tsMs, eventId: last.eventId };
    }
    return { rows };
  } finally {
    store.close();
  }
}
