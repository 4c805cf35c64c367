// The dashboard's SQL builders and row folds without a database: which table, which bound parameters in
// which order, how a page continues. web-queries.test.ts runs the same SQL against a real store.
import { describe, expect, test } from "bun:test";
import {
  answerKey,
  CONFIDENCE_ROWS,
  confidenceOf,
  exportChunkSql,
  exportNext,
  firstWholeHour,
  foldAnswers,
  foldRequests,
  MAX_PAGE,
  olderThan,
  relatedSql,
  requestsSql,
  textFloorSql,
  timelinePage,
  timelineSql,
  usageSql,
  bucketSpan,
  filterBucketsSql,
} from "../../src/store/query-sql.ts";
import { bucketOf } from "../../src/store/buckets.ts";
import type { EventRecord, TimelineRow } from "../../src/store/queries.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const row = (i: number): TimelineRow => ({ event_id: `E${i}`, ts_ms: 1_000_000 - i }) as TimelineRow;

describe("timeline", () => {
  test("one row past the limit means a next page after the last row kept", () => {
    const rows = [0, 1, 2, 3].map(row);
    const page = timelinePage(rows, 3, undefined);
    expect(page.rows.map((r) => r.event_id)).toEqual(["E0", "E1", "E2"]);
    expect(page.next).toEqual({ tsMs: 1_000_000 - 2, eventId: "E2" });
    expect(page.searchedToMs).toBeUndefined();
  });

  test("a text search window that ran out first continues strictly below its floor", () => {
    const page = timelinePage([row(0)], 3, 500);
    expect(page).toEqual({ rows: [row(0)], next: { tsMs: 500, eventId: "0" }, searchedToMs: 500 });
    // A full page still continues after its last row, not at the floor.
    expect(timelinePage([0, 1].map(row), 1, 500).next).toEqual({ tsMs: 1_000_000, eventId: "E0" });
    expect(timelinePage([row(0)], 3, undefined)).toEqual({ rows: [row(0)] });
  });

  test("the keyset condition and the page query bind cursor and limit + 1 after the filter", () => {
    const w = olderThan({ tsMs: 7, eventId: "E9" });
    expect(w.params).toEqual([7, 7, "E9"]);
    const q = timelineSql({ sql: "WHERE (provider = ?)", params: ["openai"] }, 50);
    expect(q.sql).toContain("ORDER BY ts_ms DESC, event_id DESC LIMIT ?");
    expect(q.params).toEqual(["openai", 51]);
  });

  test("the text floor reads from the cursor (or the top) at least one row down", () => {
    expect(textFloorSql(undefined, 100).params).toEqual([Number.MAX_SAFE_INTEGER, 100]);
    expect(textFloorSql({ tsMs: 42, eventId: "E" }, 0).params).toEqual([42, 1]);
  });
});

describe("a filter's days and hours, from the rollups", () => {
  test("a bucket truncates toward zero as SQLite's integer division, and spans exactly its events' times", () => {
    for (const size of [HOUR, DAY]) {
      for (const ts of [0, 1, size - 1, size, 5 * size + 7, -1, -size + 1, -size, -size - 1, -5 * size - 7]) {
        const [from, to] = bucketSpan(bucketOf(ts, size), size);
        expect(ts >= from && ts < to).toBe(true);
        expect(bucketOf(from, size)).toBe(bucketOf(ts, size));
        expect(bucketOf(to - 1, size)).toBe(bucketOf(ts, size));
        expect(bucketOf(from - 1, size)).not.toBe(bucketOf(ts, size));
        expect(bucketOf(to, size)).not.toBe(bucketOf(ts, size));
      }
    }
    expect(Object.is(bucketOf(-1, HOUR), 0)).toBe(true); // not -0, which would bind as a REAL
  });

  test("equality columns on the rollup, bucket bounds first, the page size last; model also matches where it answered", () => {
    const q = filterBucketsSql("event_rollup_hour", { provider: "openai", process: "node", type: "ai.request" }, 0, 10 * HOUR, "desc", 256, "hour");
    expect(q.sql).toContain("FROM event_rollup_hour r");
    expect(q.sql).toContain("r.provider = ? AND r.process_name = ? AND r.event_type = ?");
    expect(q.sql).toContain("ORDER BY r.bucket_ms DESC LIMIT ?");
    expect(q.params).toEqual([0, 10 * HOUR, "openai", "node", "ai.request", 256]);
    const m = filterBucketsSql("event_rollup_day", { model: "gpt-4o-2024-08-06" }, 0, DAY, "asc", 5, "hour");
    expect(m.sql).toContain(`r.bucket_ms IN (SELECT (a.bucket_ms / ${DAY}) * ${DAY} FROM model_answers a WHERE a.response_model = ?)`);
    expect(m.sql).toContain("ORDER BY r.bucket_ms ASC");
    expect(m.params).toEqual([0, DAY, "gpt-4o-2024-08-06", "gpt-4o-2024-08-06", 5]);
    expect(filterBucketsSql("event_rollup_hour", { model: "x" }, 0, HOUR, "asc", 5, "pair").sql).toContain("r.model IN (SELECT a.model FROM model_answers a");
    expect(filterBucketsSql("event_rollup_hour", { model: "x" }, 0, HOUR, "asc", 5, "none").sql).not.toContain("model_answers");
    // A status filter counts its own rows (the rollups count failures) and skips buckets without any.
    const errors = filterBucketsSql("event_rollup_hour", { provider: "openai", status: "error" }, 0, HOUR, "desc", 5, "hour").sql;
    expect(errors).toContain("sum(r.errors) AS n");
    expect(errors).toContain("AND r.provider = ? AND r.errors > 0");
    expect(filterBucketsSql("event_rollup_hour", { status: "ok", type: "ai.response" }, 0, HOUR, "desc", 5, "hour").sql).toContain("AND r.events > r.errors");
  });
});

describe("related and export", () => {
  test("related: by request id and at most 50 named ids, limit clamped; nothing to look for is no query", () => {
    expect(relatedSql(null, [], 10)).toBeUndefined();
    const ids = Array.from({ length: 60 }, (_, i) => `E${i}`);
    const q = relatedSql("req_1", ids, 10_000)!;
    expect(q.sql).toContain("WHERE request_id = ? OR event_id IN (");
    expect(q.params).toEqual(["req_1", ...ids.slice(0, 50), MAX_PAGE]);
    expect(relatedSql(null, ["E1"], 5)!.params).toEqual(["E1", 5]);
  });

  test("export chunks: filter, then the rowid ceiling, the span, the position after the last row; short chunk ends", () => {
    const first = exportChunkSql({ provider: "openai" }, 99, undefined, 500);
    expect(first.sql).toContain("(+provider = ?) AND (+rowid <= ?)");
    expect(first.params).toEqual(["openai", 99, 500]);
    const next = exportChunkSql({ provider: "openai" }, 99, { tsMs: 5, eventId: "E5" }, 500, [0, HOUR]);
    expect(next.sql).toContain("(+provider = ?) AND (+rowid <= ?) AND (ts_ms >= ? AND ts_ms < ?)");
    expect(next.params).toEqual(["openai", 99, 0, HOUR, 5, 5, "E5", 500]);
    const rec = (i: number) => ({ ts_ms: i, event_id: `E${i}` }) as EventRecord;
    expect(exportNext([rec(1), rec(2)], 2)).toEqual({ tsMs: 2, eventId: "E2" });
    expect(exportNext([rec(1)], 2)).toBeUndefined();
    expect(exportNext([], 2)).toBeUndefined();
  });
});

describe("usage", () => {
  test("UTC whole days read the day rollup from the day's start; a local offset needs the hours", () => {
    const since = 3 * DAY + 5 * HOUR + 17;
    const utc = usageSql("provider", DAY, since, 0);
    expect(utc.sql).toContain("FROM event_rollup_day WHERE bucket_ms >= ? AND provider <> ''");
    expect(utc.params).toEqual([0, DAY, DAY, 0, 3 * DAY]);
    const local = usageSql("model", DAY, since, 2 * HOUR);
    expect(local.sql).toContain("FROM event_rollup_hour WHERE bucket_ms >= ? AND model <> ''");
    expect(local.params).toEqual([2 * HOUR, DAY, DAY, 2 * HOUR, 3 * DAY + 5 * HOUR]);
  });

  test("buckets below an hour become an hour; -0 and fractions bind as integers", () => {
    const q = usageSql("provider", 60_000.5, 0, -0);
    expect(q.params.slice(0, 4)).toEqual([0, HOUR, HOUR, 0]);
    expect(Object.is(q.params[0], 0)).toBe(true); // not -0, which binds as REAL
    expect(usageSql("provider", HOUR, 0, 1800_000.7).params[0]).toBe(1_800_000);
  });
});

describe("folds", () => {
  test("confidence: partial counts as redacted, unknown only in the total, sampled at the read cap", () => {
    const c = confidenceOf([
      { completeness: "full", n: 5 },
      { completeness: "partial", n: 2 },
      { completeness: "redacted", n: 1 },
      { completeness: "metadata_only", n: 3 },
      { completeness: null, n: 4 },
    ]);
    expect(c).toEqual({ full: 5, metadata: 3, redacted: 3, total: 15, sampled: false });
    expect(confidenceOf([{ completeness: "full", n: CONFIDENCE_ROWS }]).sampled).toBe(true);
  });

  test("answered-by: per (provider, model), in row order, at most 8; a missing provider keys as empty", () => {
    const rows = Array.from({ length: 10 }, (_, i) => ({ provider: "openai", model: "gpt-4o", response_model: `gpt-4o-${i}` }));
    rows.push({ provider: "", model: "local", response_model: "local-q4" });
    const m = foldAnswers(rows);
    expect(m.get(answerKey("openai", "gpt-4o"))).toEqual(rows.slice(0, 8).map((r) => r.response_model));
    expect(m.get(answerKey(null, "local"))).toEqual(["local-q4"]);
  });

  test("window request counts: whole hours from the rollup, the part before the first whole hour from events", () => {
    const inside = requestsSql(5 * HOUR + 60_000);
    expect(inside.rollup.sql).toContain("event_rollup_hour");
    expect(inside.rollup.params).toContain(6 * HOUR);
    expect(inside.partial?.params).toEqual([5 * HOUR + 60_000, 6 * HOUR]);
    expect(requestsSql(5 * HOUR).partial).toBeUndefined(); // on the hour: nothing before it
    expect(requestsSql(undefined).partial).toBeUndefined();
  });

  test("request counts fold per provider and per app, most first then by name; nulls only in the other list", () => {
    const f = foldRequests([
      { p: "openai", a: "python3", n: 2 },
      { p: "anthropic", a: "node", n: 3 },
      { p: "openai", a: null, n: 1 },
      { p: null, a: "cursor", n: 3 },
      { p: "anthropic", a: "python3", n: 0 },
    ]);
    expect(f.providers).toEqual([{ provider: "anthropic", requests: 3 }, { provider: "openai", requests: 3 }]);
    expect(f.apps).toEqual([{ process_name: "cursor", requests: 3 }, { process_name: "node", requests: 3 }, { process_name: "python3", requests: 2 }]);
  });

  test("the first whole hour of a window", () => {
    expect(firstWholeHour(undefined)).toBe(0);
    expect(firstWholeHour(5 * HOUR)).toBe(5 * HOUR);
    expect(firstWholeHour(5 * HOUR + 1)).toBe(6 * HOUR);
  });
});
