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

/** Values remembered at most; beyond that the oldest are forgotten (and at worst written again, a no-op). */
const REMEMBERED = 10_000;

export class FilterValues {
  private readonly written = new Set<string>();
  /** Values of the batch being written: remembered only once it commits. */
  private readonly pending = new Set<string>();
  private insert: Statement | undefined;

  constructor(
    private readonly sqlite: Database,
    private readonly max = REMEMBERED,
  ) {}

  /** Call inside the batch's transaction for each row it inserted. */
  add(row: NewEventRow): void {
    for (const [column, field] of COLUMNS) {
      const value = row[field];
      if (typeof value !== "string") continue;
      const key = `${column}\u0000${value}`;
      if (this.written.has(key) || this.pending.has(key)) continue;
      this.insert ??= this.sqlite.prepare("INSERT INTO event_values (`column`, `value`) VALUES (?, ?) ON CONFLICT DO NOTHING");
      this.insert.run(column, value);
      this.pending.add(key);
    }
  }

  commit(): void {
    for (const key of this.pending) {
      this.written.add(key);
      if (this.written.size > this.max) this.written.delete(this.written.values().next().value!);
    }
    this.pending.clear();
  }

  rollback(): void {
    this.pending.clear();
  }

  close(): void {
    this.insert?.finalize();
  }
}
