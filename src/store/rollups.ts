// The rollups (event_rollup_hour / _day, model_answers) of one insert batch, summed in memory and written
// as one upsert per key when the batch ends, inside its transaction. Until migration 0004 a trigger on
// events did this with two or three upserts per inserted row: ~15 % of the insert's CPU, and the rollup
// pages it rewrote for every event. Same rows and sums as 0003's trigger (buckets, "" / -1 for unknown,
// an event counted under its call's model); only a key's float cost is now added per batch rather than
// per event, which may differ from the trigger in the last bits.
import type { Database, Statement } from "bun:sqlite";
import { bucketOf, DAY_MS, HOUR_MS } from "./buckets.ts";
import type { NewEventRow } from "./schema.ts";

interface Totals {
  key: Array<string | number>;
  events: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  lastMs: number;
  lastRowid: number;
  firstMs: number;
}

interface Answers {
  key: [bucketMs: number, provider: string, model: string, responseModel: string];
  responses: number;
  lastMs: number;
}

const KEY_COLUMNS = "`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_prefix`, `key_hash`, `auth_type`";

function upsertSql(table: string): string {
  return `INSERT INTO \`${table}\` (${KEY_COLUMNS}, \`events\`, \`errors\`, \`input_tokens\`, \`output_tokens\`, \`cost_usd\`, \`last_ms\`, \`last_rowid\`, \`first_ms\`)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (\`bucket_ms\`, \`event_type\`, \`provider\`, \`model\`, \`process_name\`, \`pid\`, \`key_hash\`, \`key_prefix\`, \`auth_type\`) DO UPDATE SET
      \`events\` = \`events\` + excluded.\`events\`,
      \`errors\` = \`errors\` + excluded.\`errors\`,
      \`input_tokens\` = \`input_tokens\` + excluded.\`input_tokens\`,
      \`output_tokens\` = \`output_tokens\` + excluded.\`output_tokens\`,
      \`cost_usd\` = \`cost_usd\` + excluded.\`cost_usd\`,
      \`last_ms\` = max(\`last_ms\`, excluded.\`last_ms\`),
      \`last_rowid\` = max(\`last_rowid\`, excluded.\`last_rowid\`),
      \`first_ms\` = min(\`first_ms\`, excluded.\`first_ms\`)`;
}

const ANSWERS_SQL = `INSERT INTO \`model_answers\` (\`bucket_ms\`, \`provider\`, \`model\`, \`response_model\`, \`responses\`, \`last_ms\`) VALUES (?, ?, ?, ?, ?, ?)
  ON CONFLICT (\`bucket_ms\`, \`provider\`, \`model\`, \`response_model\`) DO UPDATE SET
    \`responses\` = \`responses\` + excluded.\`responses\`,
    \`last_ms\` = max(\`last_ms\`, excluded.\`last_ms\`)`;

export class RollupBatch {
  private readonly hours = new Map<string, Totals>();
  private readonly days = new Map<string, Totals>();
  private readonly answers = new Map<string, Answers>();
  private statements: { hour: Statement; day: Statement; answers: Statement } | undefined;

  constructor(private readonly sqlite: Database) {}

  /** Counts a row the batch has just inserted (not a duplicate it ignored), with its rowid. */
  add(row: NewEventRow, rowid: number): void {
    // The part of the key shared by both grains: coalesce(...) as the trigger wrote it.
    const rest = [
      row.eventType,
      row.provider ?? "",
      row.callModel ?? row.model ?? "",
      row.processName ?? "",
      row.pid ?? -1,
      row.keyPrefix ?? "",
      row.keyHash ?? "",
      row.authType ?? "",
    ];
    const restKey = JSON.stringify(rest); // not a join: a model name may hold any separator
    const hour = bucketOf(row.tsMs, HOUR_MS);
    count(this.hours, hour, rest, restKey, row, rowid);
    count(this.days, bucketOf(row.tsMs, DAY_MS), rest, restKey, row, rowid);
    // Which other model answered a call to this one (an alias answered by a dated snapshot), per hour.
    if (row.eventType === "ai.response" && row.callModel != null && row.model != null && row.model !== row.callModel) {
      const key: Answers["key"] = [hour, row.provider ?? "", row.callModel, row.model];
      const id = JSON.stringify(key);
      const a = this.answers.get(id);
      if (a) {
        a.responses++;
        a.lastMs = Math.max(a.lastMs, row.tsMs);
      } else this.answers.set(id, { key, responses: 1, lastMs: row.tsMs });
    }
  }

  /** Writes the batch's totals (call inside its transaction), then starts over. */
  write(): void {
    const s = (this.statements ??= {
      hour: this.sqlite.prepare(upsertSql("event_rollup_hour")),
      day: this.sqlite.prepare(upsertSql("event_rollup_day")),
      answers: this.sqlite.prepare(ANSWERS_SQL),
    });
    for (const [stmt, totals] of [
      [s.hour, this.hours],
      [s.day, this.days],
    ] as const) {
      for (const t of totals.values()) stmt.run(...t.key, t.events, t.errors, t.inputTokens, t.outputTokens, t.costUsd, t.lastMs, t.lastRowid, t.firstMs);
    }
    for (const a of this.answers.values()) s.answers.run(...a.key, a.responses, a.lastMs);
    this.clear();
  }

  /** Forgets the batch (its transaction rolled back). */
  clear(): void {
    this.hours.clear();
    this.days.clear();
    this.answers.clear();
  }

  close(): void {
    this.statements?.hour.finalize();
    this.statements?.day.finalize();
    this.statements?.answers.finalize();
  }
}


function count(into: Map<string, Totals>, bucketMs: number, rest: Array<string | number>, restKey: string, row: NewEventRow, rowid: number): void {
  const id = `${bucketMs}${restKey}`;
  const t = into.get(id);
  const errors = row.success === 0 ? 1 : 0;
  if (t) {
    t.events++;
    t.errors += errors;
    t.inputTokens += row.inputTokens ?? 0;
    t.outputTokens += row.outputTokens ?? 0;
    t.costUsd += row.costUsd ?? 0;
    t.lastMs = Math.max(t.lastMs, row.tsMs);
    t.lastRowid = Math.max(t.lastRowid, rowid);
    t.firstMs = Math.min(t.firstMs, row.tsMs);
  } else {
    into.set(id, {
      key: [bucketMs, ...rest],
      events: 1,
      errors,
      inputTokens: row.inputTokens ?? 0,
      outputTokens: row.outputTokens ?? 0,
      costUsd: row.costUsd ?? 0,
      lastMs: row.tsMs,
      lastRowid: rowid,
      firstMs: row.tsMs,
    });
  }
}
