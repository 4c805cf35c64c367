// The values the dashboard's filter lists offer (providers, models, processes, event types), kept in
// event_values (migration 0005) instead of being read by skipping through an index on each column: those
// four indexes cost a page or two of every commit. A value is written the first time this store meets it
// (INSERT ... DO NOTHING: another writer may have written it already) and then remembered, so steady
// traffic writes nothing here.
import type { Database, Statement } from "bun:sqlite";
import type { NewEventRow } from "./schema.ts";

/** The events columns listed, with the row field each comes from. */
const COLUMNS = [
  ["provider", "provider"],
  ["model", "model"],
  ["process_name", "processName"],
  ["event_type", "eventType"],
] as const satisfies ReadonlyArray<readonly [string, keyof NewEventRow]>;

/** Values remembered at most; beyond that all are forgotten (and at worst written again: a no-op). */
const REMEMBERED = 10_000;

type Column = (typeof COLUMNS)[number][0];

export class FilterValues {
  /** Per column (no key strings to build per event: this runs for every stored event). */
  private readonly written = new Map<Column, Set<string>>(COLUMNS.map(([column]) => [column, new Set<string>()]));
  private count = 0;
  /** Values of the batch being written: remembered only once it commits. */
  private readonly pending = new Map<Column, Set<string>>(COLUMNS.map(([column]) => [column, new Set<string>()]));
  private insert: Statement | undefined;

  constructor(
    private readonly sqlite: Database,
    private readonly max = REMEMBERED,
  ) {}

  /** Call inside the batch's transaction for each row it inserted. */
  add(row: NewEventRow): void {
    for (const [column, field] of COLUMNS) {
      const value = row[field];
      if (typeof value !== "string" || this.written.get(column)!.has(value)) continue;
      const pending = this.pending.get(column)!;
      if (pending.has(value)) continue;
      this.insert ??= this.sqlite.prepare("INSERT INTO event_values (`column`, `value`) VALUES (?, ?) ON CONFLICT DO NOTHING");
      this.insert.run(column, value);
      pending.add(value);
    }
  }

  commit(): void {
    for (const [column, values] of this.pending) {
      for (const value of values) {
        if (this.count >= this.max) {
          for (const set of this.written.values()) set.clear();
          this.count = 0;
        }
        this.written.get(column)!.add(value);
        this.count++;
      }
      values.clear();
    }
  }

  rollback(): void {
    for (const values of this.pending.values()) values.clear();
  }

  close(): void {
    this.insert?.finalize();
  }
}
